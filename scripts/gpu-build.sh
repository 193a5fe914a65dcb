#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs, for a GPU machine without Go, stripped and xz-compressed
# into DIR, with a copy of tiny Shakespeare ($SMI_DATA, else the trainer's cache) for a machine
# without the internet. Two sets, each small enough to carry to a lent machine on its own (at most
# 64 MiB; the script fails when a set outgrows it, and says its size):
#   GPU_BUILD_SET=check (default; DIR .gpu/bin): the trainer, smibench, smidevice and
#     the test binaries of internal/backend, spectral, optimizers and internal/gpt: gpu-check.sh's
#     steps smoke, tests, strategies, steps, compile and runs
#   GPU_BUILD_SET=rest (DIR .gpu/rest): the test binaries of every other package with
#     tests, each named by its folder with / as . (examples.shakespeare.test): the step tests-rest,
#     which with the step tests makes `go test ./...` on the GPU
# .gitignore ignores .gpu. Then, on the GPU machine: SMI_GPU_BIN=DIR scripts/gpu-check.sh OUT_DIR
# Usage: [GPU_BUILD_SET=check|rest] scripts/gpu-build.sh [DIR]   (-h prints this)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
  -h | -help | --help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  -*) echo "gpu-build: unknown option $1: the only argument is DIR (-h for help)" >&2; exit 2 ;;
esac
(($# <= 1)) || { echo "gpu-build: one argument at most, DIR; got $#: $*" >&2; exit 2; }
set=${GPU_BUILD_SET:-check}
case $set in
  check) dir=${1:-$root/.gpu/bin} ;;
  rest) dir=${1:-$root/.gpu/rest} ;;
  *) echo "gpu-build: GPU_BUILD_SET=$set: want check or rest" >&2; exit 2 ;;
esac
mkdir -p -- "$dir"
dir=$(cd -- "$dir" && pwd) # the builds run from the repository's root
cd "$root"
flags=(-trimpath -ldflags='-s -w')
# The check set's test binaries, by folder, and the names gpu-check.sh runs them by.
declare -A check_tests=([internal/backend]=backend [spectral]=spectral [optimizers]=optimizers [internal/gpt]=gpt)
if [[ $set == check ]]; then
  go build "${flags[@]}" -o "$dir/shakespeare" ./examples/shakespeare
  go build "${flags[@]}" -o "$dir/smibench" ./benchmarks/cmd/smibench
  go build "${flags[@]}" -o "$dir/smidevice" ./internal/backend/cmd/smidevice
  for pkg in "${!check_tests[@]}"; do
    go test -c "${flags[@]}" -o "$dir/${check_tests[$pkg]}.test" "./$pkg"
  done
else
  for pkg in $(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./...); do
    pkg=${pkg#"$root"/}
    [[ -n ${check_tests[$pkg]:-} ]] && continue
    go test -c "${flags[@]}" -o "$dir/${pkg//\//.}.test" "./$pkg"
  done
fi
for f in "$dir"/*; do
  [[ $f == *.xz || $f == */tinyshakespeare.txt ]] && continue
  xz -T0 -6 -f "$f"
done
data=${SMI_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/smi-gomlx/tinyshakespeare.txt}
if [[ -f $data ]]; then
  install -m 644 "$data" "$dir/tinyshakespeare.txt"
else
  echo "gpu-build: no tiny Shakespeare at $data (set SMI_DATA): the GPU machine will need its own" >&2
fi
ls -la "$dir"
# The device tool carries at most 64 MiB of ignored paths to a lent machine.
size=$(du -sb "$dir" | cut -f1)
limit=$((64 << 20))
echo "gpu-build: $dir holds $((size >> 20)) MiB of the $((limit >> 20)) MiB a lent machine is carried"
if ((size > limit)); then
  echo "gpu-build: $dir is over the limit: split the set (check_tests in this script) or carry less" >&2
  exit 1
fi
