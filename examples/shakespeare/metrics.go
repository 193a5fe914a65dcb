package main

import (
	"math"
	"runtime"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// newMetrics is the metrics of the run o trained (ctx, cfg) with the record h.
func newMetrics(b backends.Backend, o *trainOptions, ctx *context.Context, cfg gpt.Config, h *history, thresholds []float64) *results.Metrics {
	r, _ := results.LookupRun(o.Run)
	m := &results.Metrics{
		Preset: o.Preset, Run: o.Run, RunName: r.Name, Seed: o.Seed, Config: cfg, SMI: smiSettings(ctx),
		Params: cfg.NumParams(true), Backend: backend.Description(b), Machine: results.ThisMachine(),
		GoVersion: runtime.Version(), FinishedUTC: results.NowUTC(),
		TrainSeconds: h.TrainSeconds, TrainStarts: h.TrainStarts, Smoothing: results.SmoothingDoc,
		EvalSeconds: h.EvalSeconds, CheckpointSeconds: h.CheckpointSeconds, CheckpointWriteSeconds: h.CheckpointWriteSeconds,
		IterLoss: h.IterLoss, Evals: h.Evals, SMITelemetry: h.Telemetry, Deterministic: h.Deterministic,
	}
	switch {
	case m.SMI != nil && !r.SMI:
		m.RunName = "free-form SMI"
	case m.SMI == nil && r.SMI:
		m.RunName = "AdamW alone (" + r.Name + " with optimizer=adamw)"
	}
	last := h.Evals[len(h.Evals)-1]
	m.FinalTrainLoss, m.FinalValLoss = last.Train, last.Val
	m.BestValLoss = math.Inf(1)
	for _, e := range h.Evals {
		if e.Val < m.BestValLoss {
			m.BestValLoss, m.BestValIter = e.Val, e.Iter
		}
	}
	m.TrainTokensPerSec = float64(cfg.BatchSize*cfg.BlockSize*cfg.MaxIters) / h.TrainSeconds
	m.ItersToThreshold = results.ItersToThresholds(h.IterLoss, thresholds)
	variance, window := results.FinalVariance(h.IterLoss)
	m.FinalLossVariance, m.VarianceWindow = results.Optional(variance), window
	m.Undefined = results.UndefinedMetrics(len(h.IterLoss), window)
	return m
}
