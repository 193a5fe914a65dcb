#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs, for a GPU machine without Go: the trainer, smibench,
# smidevice and
# the test binaries of internal/backend, spectral, optimizers and internal/gpt, stripped and
# xz-compressed into DIR (default .gpu/bin, which .gitignore ignores), with a copy of
# tiny Shakespeare ($SMI_DATA, else the trainer's cache) for a machine without the internet.
# Then, on the GPU machine: SMI_GPU_BIN=DIR scripts/gpu-check.sh OUT_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.gpu/bin}
mkdir -p "$dir"
cd "$root"
flags=(-trimpath -ldflags='-s -w')
go build "${flags[@]}" -o "$dir/shakespeare" ./examples/shakespeare
go build "${flags[@]}" -o "$dir/smibench" ./benchmarks/cmd/smibench
go build "${flags[@]}" -o "$dir/smidevice" ./internal/backend/cmd/smidevice
go test -c "${flags[@]}" -o "$dir/backend.test" ./internal/backend
go test -c "${flags[@]}" -o "$dir/spectral.test" ./spectral
go test -c "${flags[@]}" -o "$dir/optimizers.test" ./optimizers
go test -c "${flags[@]}" -o "$dir/gpt.test" ./internal/gpt
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
