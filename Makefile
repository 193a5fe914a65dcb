# The README's two commands are `make run` and `make test`; both do all set-up first.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=mod

.PHONY: setup setup-cuda data run run-gpu test check race bench bench-plugins gpu-program gpu-report reference study

# Go modules and the XLA CPU plugin (from PyPI, cached: a second run downloads nothing).
# PLUGIN=NAME also installs another CPU plugin from PyPI (lammps-jax-pjrt-cpu, fastatomstruct-xla-cpu),
# pinned like the default; the programs use it only with SMI_PJRT_PLUGIN=NAME (docs/SETUP.md).
setup:
	@$(GO) mod download
	@scripts/install-xla-cpu.sh xla-cpu-pjrt
	@$(if $(PLUGIN),scripts/install-xla-cpu.sh $(PLUGIN),true)

# Go modules and a CUDA PJRT plugin with the NVIDIA libraries (JAX's wheels from PyPI, pinned and
# cached), for -device cuda; nothing to do when python3 already has JAX's CUDA plugin. Needs an
# NVIDIA GPU and its driver (SMI_CUDA_DRY_RUN=1 shows what it would install). See docs/SETUP.md.
setup-cuda:
	@$(GO) mod download
	@scripts/install-xla-cuda.sh

# tiny Shakespeare: SMI_DATA when set (make SMI_DATA=FILE, or in the environment); else a copy
# in a shared/data folder beside the repository, when there is one; else the trainer's per-user
# cache, where `data` downloads and verifies it. Exported (as an absolute path) for the tests,
# which read the same file: $SMI_DATA, else the per-user cache.
override SMI_DATA := $(abspath $(or $(SMI_DATA),$(wildcard ../shared/data/tinyshakespeare.txt)))
export SMI_DATA
SHAKESPEARE_DATA := $(if $(SMI_DATA),-data $(SMI_DATA),)

# The file the trainer reads (its default is the per-user cache, as os.UserCacheDir).
DATA_FILE := $(or $(SMI_DATA),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/smi-gomlx/tinyshakespeare.txt)

data:
	@$(GO) run ./examples/shakespeare data $(SHAKESPEARE_DATA)

# Trains the Shakespeare GPT (cpu preset) with SMI (the paper's run 5) on XLA CPU; a second run
# resumes or, when complete, rewrites its metrics. Results go to results/shakespeare/.
run: setup data
	@$(GO) run ./examples/shakespeare train -preset cpu -run 5 $(SHAKESPEARE_DATA)

# The same on an NVIDIA GPU, at the paper's size (the paper preset, run 5), with no environment to set.
run-gpu: setup-cuda data
	@$(GO) run ./examples/shakespeare train -preset paper -run 5 -device cuda $(SHAKESPEARE_DATA)

test: setup data
	@$(GO) test -count=1 -run 'TestSmokeXLA' -v ./internal/backend | grep -E 'backend:' || true
	$(GO) test -count=1 -timeout 20m ./...

# The quick loop while editing: go vet, the gofmt check and every package's fast tests (-short:
# spectral's short set, and none of the Shakespeare trainer's end-to-end runs or the benchmarks'
# timings). Needs the XLA CPU plugin from an earlier `make setup` and the data of `make data`
# (SMI_DATA), no network.
check:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt -w needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -short -count=1 ./...

# The race detector over every package's fast tests (as make check). go-xla's buffer pool
# synchronizes by pinning goroutines to their processor, which the race detector cannot see; its
# build tag race_mu gives the pool a mutex the detector understands. Without the tag, -race reports
# races inside go-xla's pool (internal/pool) that are not there.
race: setup data
	$(GO) test -race -tags race_mu -short -count=1 -timeout 30m ./...

# The paper's experiment: runs 0-5 x seeds on PRESET (default cpu: 5 seeds, 30 runs of 2,000 iterations;
# paper: the paper's 2 seeds, a GPU's work), one run at a time, resumable (rerun after any
# interruption); analyses and times it, publishes small result files under docs/reproduction/,
# and writes docs/REPRODUCTION.md from every study published there. A piece of the study:
# RUNS and SEEDS pick any subset (make study PRESET=paper RUNS=0,5 SEEDS=1337), published in a
# folder of its own; REPORT_ONLY=1 trains nothing and only rewrites the report from the
# published files. DEVICE=cuda trains on an NVIDIA GPU (it runs make setup-cuda first). STUDY_FLAGS adds
# flags, e.g. STUDY_FLAGS=-quiet for a log.
PRESET ?= cpu
study: setup data $(if $(filter cuda gpu,$(DEVICE)),setup-cuda)
	$(GO) run ./examples/shakespeare study -preset $(PRESET) $(if $(DEVICE),-device $(DEVICE)) $(if $(filter command line environment override,$(origin RUNS)),-runs $(RUNS)) $(if $(filter command line environment override,$(origin SEEDS)),-seeds $(SEEDS)) $(if $(REPORT_ONLY),-report_only) $(SHAKESPEARE_DATA) $(STUDY_FLAGS)

# Regenerates docs/BENCHMARKS.md and its plots (docs/benchmarks/) on this machine: a quarter to
# half an hour on 2 idle CPU cores (the file records how long its run took). Section 1b times nanoGPT's PyTorch step beside ours when
# `make reference` has installed PyTorch (REF_VENV); without it that column is left out.
# The report's command is benchmarks/cmd/smibench; package benchmarks (go doc ./benchmarks) times SMI
# on your own shapes and model. Go benchmarks for benchstat (small sizes; SMI_BENCH_LARGE=1 for the
# report's): go test -run '^$$' -bench . ./benchmarks/...
bench: setup
	$(GO) run ./benchmarks/cmd/smibench -out docs/BENCHMARKS.md $(if $(wildcard $(REF_VENV)/bin/python),-pytorch $(REF_VENV)/bin/python,)

# Compiles the paper preset's training steps (AdamW, and SMI(AdamW) under each filter strategy) for
# an NVIDIA H100 on this machine, with no GPU, and counts what each launches: the section "What XLA
# compiles for a GPU" of docs/BENCHMARKS-GPU.md (then make gpu-report re-renders the file). The
# compiler is JAX's CUDA PJRT plugin with nvcc's ptxas and NVVM's libdevice (the wheels make
# setup-cuda pins, checked by sha256), driven by jaxlib's compile-only client, in a virtual
# environment of their own (GPU_PROGRAM_VENV, 1.3 GB on disk). About 5 minutes on 2 CPU cores.
GPU_PROGRAM_VENV ?= $(HOME)/.cache/smi-gomlx/gpu-program-venv
GPU_PROGRAM_JSON ?= docs/benchmarks/gpu-program/paper-h100.json
gpu-program: setup
	@test "$$(uname -sm)" = "Linux x86_64" || { echo "make gpu-program: JAX's CUDA plugin wheels exist for Linux x86_64 only, and this is $$(uname -sm)"; exit 1; }
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "make gpu-program: jaxlib 0.10.2 needs Python 3.11 or newer, and python3 is $$(python3 -V 2>&1)"; exit 1; }
	@test -x $(GPU_PROGRAM_VENV)/bin/python || python3 -m venv $(GPU_PROGRAM_VENV)
	@grep -E '^(jax-cuda13-pjrt|nvidia-cuda-nvcc|nvidia-nvvm)==' scripts/install-xla-cuda.sh | awk '{print $$1 " --hash=sha256:" $$3}' > $(GPU_PROGRAM_VENV)/requirements.txt
	@$(GPU_PROGRAM_VENV)/bin/pip install -q --no-deps --require-hashes -r $(GPU_PROGRAM_VENV)/requirements.txt
	@$(GPU_PROGRAM_VENV)/bin/pip install -q jax==0.10.2 jaxlib==0.10.2
	@mkdir -p $(dir $(GPU_PROGRAM_JSON))
	$(GO) run ./benchmarks/cmd/smibench -sections gpu-programs -presets paper -strategies auto,compare-64k,scatter-all,scatter-64k,q0-all \
		-programs-python $(GPU_PROGRAM_VENV)/bin/python -json $(GPU_PROGRAM_JSON)
	@$(MAKE) --no-print-directory gpu-report

# Renders docs/BENCHMARKS-GPU.md from the measured and counted files GPU_REPORTS lists, one section
# each, in order (measures nothing): after a GPU session, add its strategies.json (copied to
# docs/benchmarks/gpu/<date>-<gpu>/, see scripts/gpu-check.sh) to the front of the list.
GPU_REPORTS ?= docs/benchmarks/gpu/2026-12-04-h200/strategies.json,docs/benchmarks/strategies-cpu/strategies.json,docs/benchmarks/strategies-cpu-d3670ab/strategies.json,$(GPU_PROGRAM_JSON)
gpu-report:
	$(GO) run ./benchmarks/cmd/smibench -render-strategies $(GPU_REPORTS) -out docs/BENCHMARKS-GPU.md

# Regenerates docs/plugins/<PLUGIN_PRESETS>.md (e.g. cpu.md): the training steps (AdamW and SMI(AdamW)) and the
# model's FFTs under each XLA CPU plugin of PLUGINS (each installed first, as make setup PLUGIN=NAME
# does), side by side in one run, as ratios to the first (the default plugin), and their losses;
# NAME+--xla_flag=value adds XLA flags to one. cpu: about 5 minutes on 2 CPU cores. paper (seconds
# per step), about 10 minutes:
#   make bench-plugins PLUGIN_PRESETS=paper PLUGINS=xla-cpu-pjrt,lammps-jax-pjrt-cpu,fastatomstruct-xla-cpu
PLUGINS ?= xla-cpu-pjrt,lammps-jax-pjrt-cpu,fastatomstruct-xla-cpu,xla-cpu-pjrt+--xla_cpu_multi_thread_eigen=false,xla-cpu-pjrt+--xla_cpu_max_isa=AVX2,lammps-jax-pjrt-cpu+--xla_cpu_max_isa=AVX2,fastatomstruct-xla-cpu+--xla_cpu_max_isa=AVX2
PLUGIN_PRESETS ?= cpu
comma := ,
bench-plugins: setup
	@for p in $$(echo '$(PLUGINS)' | tr ',' '\n' | cut -d+ -f1 | sort -u); do scripts/install-xla-cpu.sh $$p || exit 1; done
	@mkdir -p docs/plugins
	$(GO) run ./benchmarks/cmd/smibench -sections plugins -plugins '$(PLUGINS)' -presets $(PLUGIN_PRESETS) -paper-rounds 2 -plugins-out docs/plugins/$(subst $(comma),-,$(PLUGIN_PRESETS)).md

# Regenerates docs/NANOGPT_BASELINE.md: our cpu preset (run 0) against nanoGPT's CPU recipe in
# PyTorch, seed by seed (about 3 minutes per seed on 2 CPU cores). PyTorch comes from PyPI into
# its own virtual environment (a large download: PyPI's Linux wheel carries CUDA libraries).
# Also rewrites the PyTorch fixture of internal/gpt's TestMatchesPyTorch.
REF_VENV ?= $(HOME)/.cache/smi-gomlx/reference-venv
SEEDS ?= 1337,1,2,3,4
reference: setup data
	@test -x $(REF_VENV)/bin/python || python3 -m venv $(REF_VENV)
	@$(REF_VENV)/bin/python -c 'import torch, numpy, scipy' 2>/dev/null || $(REF_VENV)/bin/pip install -q torch numpy scipy
	$(REF_VENV)/bin/python scripts/reference/nanogpt_reference.py $(DATA_FILE) internal/gpt/testdata/nanogpt_reference.json
	$(REF_VENV)/bin/python scripts/reference/compare_cpu_recipe.py --seeds $(SEEDS) --data $(DATA_FILE)
