# The README's two commands are `make run` and `make test`; both do all set-up first.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=mod

.PHONY: setup run test bench

# Go modules and the XLA CPU plugin (from PyPI, cached: a second run downloads nothing).
setup:
	@$(GO) mod download
	@scripts/install-xla-cpu.sh

run: setup
	@$(GO) test -count=1 -run 'TestSmokeXLA' -v ./internal/backend | grep -E 'backend:|PASS|FAIL|ok'

test: setup
	@$(GO) test -count=1 -run 'TestSmokeXLA' -v ./internal/backend | grep -E 'backend:' || true
	$(GO) test -count=1 -timeout 20m ./...

# Regenerates docs/BENCHMARKS.md and its plots (docs/benchmarks/) on this machine: about 20-30
# minutes on 2 CPU cores. Go benchmarks for benchstat: go test -run '^$$' -bench . ./benchmarks
bench: setup
	$(GO) run ./benchmarks/cmd/smibench -out docs/BENCHMARKS.md
