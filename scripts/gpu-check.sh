#!/usr/bin/env bash
# Checks and times this project on a machine with an NVIDIA GPU, and writes a report
# (OUT_DIR/gpu-report.md, with every log beside it):
#   smoke       which CUDA plugin is found and loaded (smidevice), and the backend smoke test (FFT
#               against gonum) on it
#   tests       the internal/backend, spectral (-short), optimizers and internal/gpt tests on CUDA
#   tests-rest  (only when GPU_CHECK_STEPS names it) the tests of every other package on CUDA, from
#               the binaries GPU_BUILD_SET=rest scripts/gpu-build.sh builds (a bundle of its own,
#               .gpu/rest); GPU_CHECK_PACKAGES=examples.shakespeare,... picks some. The trainer's
#               tests (examples.shakespeare) run last: on CPU they take about 5 minutes alone
#   strategies  smibench -sections strategies: AdamW against SMI(AdamW) under each filter strategy
#   steps       smibench -sections steps for the cpu and paper presets (AdamW pairs)
#   runs        a study piece: the paper preset's runs 0 (AdamW) and 5 (SMI) in full (5,000
#               iterations), analysed and timed, published in docs/reproduction/paper/ for the report
#   compile     (only when GPU_CHECK_STEPS names it) what XLA's autotuning costs the first steps and
#               gives the steady ones: AdamW and SMI(AdamW) on paper, in three processes: with an
#               empty autotune cache, again with the cache the first filled, and with autotuning off
#               (--xla_gpu_autotune_level=0); about 3 minutes (GPU_CHECK_COMPILE_PRESET, default paper)
#
# Without a GPU, `make gpu-program` compiles every strategy's paper step with XLA's GPU compiler
# for an H100 and counts its kernels: run it before a lease to know that the GPU takes the programs.
#
# Usage: scripts/gpu-check.sh [OUT_DIR]          (default results/gpu-check; -h prints this)
# Environment:
#   GPU_CHECK_DEADLINE  seconds the whole check may take (default: none): each step's limit is cut
#                     to what is left, and a step with under 30 s left is skipped, so the check
#                     ends, and its bundle is written, before a caller's own time limit
#   GPU_CHECK_BUNDLE  also pack OUT_DIR into this .tar.xz file, again after every step (so a
#                     check killed from outside still leaves the steps before), for machines that
#                     return only a few files
#   GPU_CHECK_STUDY_FLAGS  more flags for the study piece (e.g. -no_speed)
#   GPU_CHECK_STEPS   comma-separated subset of the steps above (default: all, in that order)
#   GPU_CHECK_SEEDS   seeds of the paper runs (default 1337)
#   GPU_CHECK_RUNS    runs of the paper preset (default 0,5)
#   GPU_CHECK_BUDGET  smibench's timing budget per preset for strategies (default 60s)
#   GPU_CHECK_STRATEGIES  the strategies' IDs (default all; smibench -help lists them)
#   GPU_CHECK_PACKAGES  the test binaries tests-rest runs, by name without .test (default all)
#   GPU_CHECK_SHORT   0 runs the spectral tests in full in the step tests (default 1: -short)
#   SMI_GPU_BIN       a folder of prebuilt binaries (scripts/gpu-build.sh; *.xz are unpacked) for a
#                     machine without Go; without it, Go builds them here.
#   SMI_DATA          tiny Shakespeare (default: the copy in SMI_GPU_BIN that gpu-build.sh makes,
#                     else the trainer's own choice)
#   GPU_CHECK_XLA_CACHE  0 leaves XLA_FLAGS as it is; by default, on CUDA, the programs that the
#                     checks on one machine compile share XLA's autotuning results, in a folder of
#                     TMPDIR (XLA's persisted autotuning, --xla_gpu_per_fusion_autotune_cache_dir, which
#                     jax-cuda13-pjrt 0.11.2 has): the model's products and fusions recur in every
#                     program, and each first step's compilation autotunes them again without it
# Every step has a time limit and a failure does not stop the next step; the report says which
# failed, and the exit status is 1 when any failed or timed out (2 for a bad argument or setting). The CUDA plugin is found and configured by the programs themselves (docs/SETUP.md).
#
# On a lent machine with 15 minutes of device time, start included (the 2026-12-04 H200 lease
# took, per step: smoke 15 s; tests 140 s; each strategy's first step, compilation, 22-32 s, then
# the timing budget; a paper run about 30 s of compilation, then 5,000 steps and 21 evaluations),
# two calls fit, built here first with scripts/gpu-build.sh and the folder .gpu carried:
#   GPU_CHECK_STEPS=smoke,strategies,tests GPU_CHECK_STRATEGIES=compare-all,q0-all \
#     GPU_CHECK_BUDGET=45s GPU_CHECK_DEADLINE=360 GPU_CHECK_BUNDLE=$OUT/check.tar.xz \
#     SMI_GPU_BIN=.gpu/bin scripts/gpu-check.sh /tmp/gpu-check
#   GPU_CHECK_STEPS=runs GPU_CHECK_RUNS=5,0 GPU_CHECK_STUDY_FLAGS=-no_speed GPU_CHECK_DEADLINE=LEFT \
#     GPU_CHECK_BUNDLE=$OUT/runs.tar.xz SMI_GPU_BIN=.gpu/bin scripts/gpu-check.sh /tmp/gpu-runs
# with LEFT the device seconds status reports left, less 60 (timeout_s LEFT + 40, at most 600):
# run 5 first, then run 0 (AdamW) if the time allows. Each run is published as it finishes; one cut
# off is lost (a bare machine keeps no checkpoint), so what is missing goes in the next lease.
# The bundle holds every log, the report, strategies.json and the study piece's published folder
# (reproduction/: copy it into docs/reproduction/paper/).
# `go test ./...` on the GPU takes a lease of its own (on CPU the suite is about 5 minutes per
# package set, and a GPU compiles each test's programs anew): build both sets here
# (scripts/gpu-build.sh, and GPU_BUILD_SET=rest scripts/gpu-build.sh), then one call per set, each
# carrying its folder alone:
#   GPU_CHECK_STEPS=smoke,tests GPU_CHECK_SHORT=0 GPU_CHECK_DEADLINE=540 \
#     GPU_CHECK_BUNDLE=$OUT/tests.tar.xz SMI_GPU_BIN=.gpu/bin scripts/gpu-check.sh /tmp/gpu-tests
#   GPU_CHECK_STEPS=tests-rest GPU_CHECK_DEADLINE=540 GPU_CHECK_BUNDLE=$OUT/rest.tar.xz \
#     SMI_GPU_BIN=.gpu/rest scripts/gpu-check.sh /tmp/gpu-rest
set -uo pipefail
# One block, read whole before it runs: a checkout changed while a check runs (a pull, an edit)
# does not change the check under way.
{

root=$(cd "$(dirname "$0")/.." && pwd)
usage_error() { echo "gpu-check: $*" >&2; exit 2; }
case ${1:-} in
  -h | -help | --help) sed -n '2,/^set -uo pipefail/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  -*) usage_error "unknown option $1: the only argument is OUT_DIR (-h for help)" ;;
esac
(($# <= 1)) || usage_error "one argument at most, OUT_DIR; got $#: $*"
out=${1:-$root/results/gpu-check}
mkdir -p -- "$out" || usage_error "cannot make OUT_DIR $out"
out=$(cd -- "$out" && pwd) || usage_error "cannot enter OUT_DIR $out"
all_steps=smoke,tests,tests-rest,strategies,steps,runs,compile
steps=${GPU_CHECK_STEPS:-smoke,tests,strategies,steps,runs}
steps=${steps// /}
for s in ${steps//,/ }; do
  [[ ",$all_steps," == *",$s,"* ]] || usage_error "GPU_CHECK_STEPS: unknown step '$s': choose from $all_steps"
done
seeds=${GPU_CHECK_SEEDS:-1337}
runs=${GPU_CHECK_RUNS:-0,5}
budget=${GPU_CHECK_BUDGET:-60s}
deadline=${GPU_CHECK_DEADLINE:-0}
[[ $deadline =~ ^[0-9]+$ ]] || usage_error "GPU_CHECK_DEADLINE must be a whole number of seconds (0: none), got '$deadline'"
deadline=$((10#$deadline))
[[ -z ${SMI_GPU_BIN:-} || -d $SMI_GPU_BIN ]] || usage_error "SMI_GPU_BIN=$SMI_GPU_BIN is not a folder (scripts/gpu-build.sh makes one)"
failures=0 # steps that failed or timed out: the exit status is 1 when there are any
bundle=${GPU_CHECK_BUNDLE:-}
[[ -n $bundle ]] && { mkdir -p "$(dirname "$bundle")"; bundle=$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle"); }
began=$(date +%s)
export SMI_DEVICE=${SMI_DEVICE:-cuda}
report=$out/gpu-report.md
user_xla_flags=${XLA_FLAGS:-}
if [[ ${GPU_CHECK_XLA_CACHE:-1} != 0 && $SMI_DEVICE == cuda ]]; then
  autotune=${TMPDIR:-/tmp}/smi-gpu-check-autotune
  mkdir -p "$autotune"
  export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_gpu_per_fusion_autotune_cache_dir=$autotune"
fi

has_step() { [[ ",$steps," == *",$1,"* ]]; }
# pack writes the bundle (when asked for) from what OUT_DIR holds now.
pack() {
  [[ -n $bundle ]] || return 0
  # Without the study folder (its checkpoints are over 100 MB on the paper preset): its published
  # files are copied in after the study step.
  tar -C "$(dirname "$out")" -cJf "$bundle.part" --exclude="$(basename "$bundle")*" \
    --exclude="$(basename "$out")/study" "$(basename "$out")" && mv "$bundle.part" "$bundle"
}
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/gpu-check.log"; }

# Binaries: prebuilt, or built here.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
if [[ -n "${SMI_GPU_BIN:-}" ]]; then
  for f in "$SMI_GPU_BIN"/*; do
    case $f in
      *.xz) xz -dc "$f" >"$bin/$(basename "${f%.xz}")" ;;
      *) cp "$f" "$bin/" ;;
    esac
  done
  chmod +x "$bin"/* 2>/dev/null
elif command -v go >/dev/null; then
  log "building with $(go version)"
  (cd "$root" && "$root/scripts/gpu-build.sh" "$bin" >/dev/null) || { log "build failed"; exit 1; }
  for f in "$bin"/*.xz; do xz -d "$f"; done
  chmod +x "$bin"/*
else
  echo "gpu-check: no Go here and SMI_GPU_BIN is not set (see scripts/gpu-build.sh)" >&2
  exit 2
fi
data_flag=()
if [[ -n "${SMI_DATA:-}" ]]; then
  data_flag=(-data "$SMI_DATA")
elif [[ -n "${SMI_GPU_BIN:-}" && -f $SMI_GPU_BIN/tinyshakespeare.txt ]]; then
  export SMI_DATA # the tests read it too
  SMI_DATA="$(cd "$SMI_GPU_BIN" && pwd)/tinyshakespeare.txt"
  data_flag=(-data "$SMI_DATA")
fi

# results holds the report's rows: step | status | seconds | note.
results=()
# run_step NAME LIMIT_SECONDS DIR LOG CMD...: runs CMD in DIR with a time limit, logs it, records a row.
run_step() {
  local name=$1 limit=$2 dir=$3 logfile=$4
  shift 4
  if ((deadline > 0)); then
    local left=$((deadline - ($(date +%s) - began)))
    if ((left < 30)); then
      log "$name: skipped (${left} s left of the ${deadline} s deadline)"
      results+=("| $name | skipped (deadline) | 0 | |")
      return
    fi
    ((limit > left - 10)) && limit=$((left - 10))
  fi
  local start end status
  log "$name: $*"
  start=$(date +%s.%N)
  (cd "$dir" && timeout --signal=INT --kill-after=20 "$limit" "$@") >"$out/$logfile" 2>&1
  status=$?
  end=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')
  local verdict=passed
  if ((status == 124 || status == 130)); then verdict="timed out (${limit} s)"; elif ((status != 0)); then verdict="failed (exit $status)"; fi
  [[ $verdict == passed ]] || failures=$((failures + 1))
  log "$name: $verdict in $secs s"
  results+=("| $name | $verdict | $secs | [$logfile]($logfile) |")
  pack
}

{
  echo "# GPU check"
  echo
  echo "Generated by \`scripts/gpu-check.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), code $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo '```'
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3; else echo "no nvidia-smi on PATH"; fi
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) ($(nproc) cores)"
  echo "XLA_FLAGS before the programs add theirs: ${XLA_FLAGS:-(none)}"
  echo '```'
  echo
} >"$report"

if has_step smoke; then
  run_step "device discovery" 120 "$root" device.log "$bin/smidevice" -device "$SMI_DEVICE" -check
  run_step smoke 120 "$root/internal/backend" smoke.log "$bin/backend.test" -test.run 'TestSmokeXLA' -test.v -test.count=1
fi
if has_step tests; then
  run_step "internal/backend tests" 120 "$root/internal/backend" test-backend.log "$bin/backend.test" -test.count=1
  if [[ ${GPU_CHECK_SHORT:-1} == 0 ]]; then
    run_step "spectral tests" 540 "$root/spectral" test-spectral.log "$bin/spectral.test" -test.count=1 -test.timeout=20m
  else
    run_step "spectral tests (-short)" 400 "$root/spectral" test-spectral.log "$bin/spectral.test" -test.short -test.count=1
  fi
  run_step "optimizers tests" 300 "$root/optimizers" test-optimizers.log "$bin/optimizers.test" -test.count=1
  run_step "internal/gpt tests" 200 "$root/internal/gpt" test-gpt.log "$bin/gpt.test" -test.count=1 -test.v
fi
if has_step tests-rest; then
  # Every test binary of the rest set, named by its package's folder with / as .; the trainer's
  # tests, the longest, last.
  rest=()
  for f in "$bin"/*.test; do
    name=$(basename "$f" .test)
    case $name in backend | spectral | optimizers | gpt | '*') continue ;; esac
    [[ -z ${GPU_CHECK_PACKAGES:-} || ",$GPU_CHECK_PACKAGES," == *",$name,"* ]] || continue
    [[ $name == examples.shakespeare ]] && continue
    rest+=("$name")
  done
  [[ -f $bin/examples.shakespeare.test && ( -z ${GPU_CHECK_PACKAGES:-} || ",$GPU_CHECK_PACKAGES," == *",examples.shakespeare,"* ) ]] &&
    rest+=(examples.shakespeare)
  ((${#rest[@]})) || log "tests-rest: no test binaries of the rest set in ${SMI_GPU_BIN:-the build} (GPU_BUILD_SET=rest scripts/gpu-build.sh)"
  for name in "${rest[@]}"; do
    dir=$root/${name//.//}
    if [[ ! -d $dir ]]; then
      log "tests-rest: $name.test has no folder $dir"
      results+=("| $name tests | failed (no folder) | 0 | |")
      failures=$((failures + 1))
      continue
    fi
    limit=300
    [[ $name == examples.shakespeare ]] && limit=580
    run_step "$name tests" "$limit" "$dir" "test-$name.log" "$bin/$name.test" -test.count=1 -test.timeout=20m
  done
fi
if has_step strategies; then
  run_step "smibench strategies (paper)" 600 "$root" strategies.log "$bin/smibench" -sections strategies -presets paper \
    -strategies "${GPU_CHECK_STRATEGIES:-}" -budget "$budget" -json "$out/strategies.json"
  [[ -f $out/strategies.json ]] && "$bin/smibench" -render-strategies "$out/strategies.json" -out "$out/BENCHMARKS-GPU.md" >/dev/null
fi
if has_step steps; then
  run_step "smibench steps (cpu, paper)" 420 "$root" steps.log "$bin/smibench" -sections steps -presets cpu,paper -bases AdamW
fi
if has_step compile; then
  # Three processes, each timing AdamW and SMI(AdamW) (the GPU's default strategy): its
  # first steps are compilation, its ratio the steady steps'. The user's XLA_FLAGS, plus:
  tuned=$(mktemp -d)
  for variant in "cold:--xla_gpu_per_fusion_autotune_cache_dir=$tuned" "warm:--xla_gpu_per_fusion_autotune_cache_dir=$tuned" \
    "off:--xla_gpu_autotune_level=0"; do
    run_step "compile, autotune ${variant%%:*}" 200 "$root" "compile-${variant%%:*}.log" env XLA_FLAGS="${user_xla_flags:+$user_xla_flags }${variant#*:}" \
      "$bin/smibench" -sections strategies -presets "${GPU_CHECK_COMPILE_PRESET:-paper}" -strategies auto -budget 15s
  done
  rm -rf "$tuned"
fi
if has_step runs; then
  # shellcheck disable=SC2086 # GPU_CHECK_STUDY_FLAGS is a list of flags
  run_step "paper study piece: runs $runs, seeds $seeds" 1800 "$root" study.log "$bin/shakespeare" study -device "$SMI_DEVICE" \
    -preset paper -runs "$runs" -seeds "$seeds" -quiet -dir "$out/study" "${data_flag[@]}" ${GPU_CHECK_STUDY_FLAGS:-}
  # The piece's small published files (the report is made from them), into the bundle; the
  # study folder's checkpoints stay out of it.
  [[ -d $root/docs/reproduction/paper ]] && rm -rf "$out/reproduction" && cp -r "$root/docs/reproduction/paper" "$out/reproduction" && pack
fi

{
  echo "| step | result | seconds | log |"
  echo "|---|---|---|---|"
  printf '%s\n' "${results[@]}"
  echo
  echo "## Figures"
  echo
  echo '```'
  grep -h -E 'backend:|platform:|strategies paper|step (cpu|paper): SMI|first step' "$out"/device.log "$out"/smoke.log "$out"/strategies.log "$out"/steps.log 2>/dev/null
  for v in cold warm off; do
    f=$out/compile-$v.log
    [[ -f $f ]] && { echo "${f##*/}:"; grep -h -E 'first step|strategies ' "$f"; }
  done
  # Per test log: its verdict lines, then up to 20 lines the tests wrote (failures, the PyTorch
  # comparison's differences), without TestMatchesPyTorch's per-step losses, so one verbose log
  # cannot push another's failures out of the report.
  for f in "$out"/test-*.log; do
    [[ -f $f ]] || continue
    echo "${f##*/}:"
    grep -E '^(--- FAIL|FAIL|ok|PASS)' "$f"
    grep -E '_test.go:[0-9]+:' "$f" | grep -v -E 'step +[0-9]+: loss' | head -20
  done
  [[ -f $out/study.log ]] && grep -E '^\[|val loss|Study|rror' "$out/study.log"
  echo '```'
} >>"$report"
log "report: $report"
[[ -f $out/BENCHMARKS-GPU.md ]] && log "GPU strategy report: $out/BENCHMARKS-GPU.md (copy strategies.json to docs/benchmarks/gpu/<date>-<gpu>/, add it to the front of the Makefile's GPU_REPORTS and run make gpu-report to render docs/BENCHMARKS-GPU.md)"
has_step runs && log "study piece: docs/reproduction/paper/ (copied to $out/reproduction; commit it; make study REPORT_ONLY=1 rewrites docs/REPRODUCTION.md)"
pack
[[ -n $bundle ]] && log "bundle: $bundle"
((failures == 0)) || { log "$failures step(s) failed or timed out: see the report"; exit 1; }
exit 0
}
