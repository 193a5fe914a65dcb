# The README's two commands are `make run` and `make test`; both do all set-up first.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=mod

.PHONY: setup data run test bench

# Go modules and the XLA CPU plugin (from PyPI, cached: a second run downloads nothing).
setup:
	@$(GO) mod download
	@scripts/install-xla-cpu.sh

# tiny Shakespeare: the project's shared copy when present, else the trainer's per-user cache,
# where `data` downloads and verifies it.
SHAKESPEARE_DATA := $(if $(wildcard ../shared/data/tinyshakespeare.txt),-data ../shared/data/tinyshakespeare.txt,)

data:
	@$(GO) run ./examples/shakespeare data $(SHAKESPEARE_DATA)

# Trains the Shakespeare GPT (cpu preset) with SMI (the paper's run 5) on XLA CPU; a second run
# resumes or, when complete, rewrites its metrics. Results go to results/shakespeare/.
run: setup data
	@$(GO) run ./examples/shakespeare train -preset cpu -run 5 $(SHAKESPEARE_DATA)

test: setup
	@$(GO) test -count=1 -run 'TestSmokeXLA' -v ./internal/backend | grep -E 'backend:' || true
	$(GO) test -count=1 -timeout 20m ./...

# Regenerates docs/BENCHMARKS.md and its plots (docs/benchmarks/) on this machine: about 15
# minutes on 2 idle CPU cores. Go benchmarks for benchstat: go test -run '^$$' -bench . ./benchmarks
bench: setup
	$(GO) run ./benchmarks/cmd/smibench -out docs/BENCHMARKS.md
