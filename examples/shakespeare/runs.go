package main

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/examples/shakespeare/gpt"
)

// Run is one of the paper's configurations (SMI.md, "The paper's experiment").
type Run struct {
	Name       string
	SMI        bool
	Schedule   string // alpha schedule: "linear" or "cosine"
	AlphaStart float64
	AlphaEnd   float64
	Beta       float64 // EMA decay of the spectral history
	Quantile   float64 // q: the fraction of frequencies masked out
}

var runs = []Run{
	{Name: "baseline (AdamW alone)"},
	{Name: "basic SMI", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.9, Beta: 0.9, Quantile: 0.5},
	{Name: "conservative alpha", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.9, Quantile: 0.5},
	{Name: "higher EMA decay", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.99, Quantile: 0.5},
	{Name: "top 75% frequencies", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.99, Quantile: 0.25},
	{Name: "cosine alpha", SMI: true, Schedule: "cosine", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.99, Quantile: 0.25},
}

func lookupRun(n int) (Run, error) {
	if n < 0 || n >= len(runs) {
		return Run{}, fmt.Errorf("unknown run %d: the paper's runs are 0 (AdamW alone) to %d", n, len(runs)-1)
	}
	return runs[n], nil
}

// SMI hyperparameter names, read by the optimizers package's SMIConfig.FromContext.
const (
	paramSMI        = "smi" // whether to wrap AdamW in SMI at all
	paramQuantile   = "smi_quantile"
	paramBeta       = "smi_beta"
	paramSchedule   = "smi_schedule"
	paramAlphaStart = "smi_alpha_start"
	paramAlphaEnd   = "smi_alpha_end"
	paramTotalSteps = "smi_total_steps" // 0: max_iters
)

// setRunParams writes the run's settings as hyperparameters, so "-set" can change any of them
// (and turn SMI on for free-form settings with "smi=true"). Run 0 carries the guideline
// defaults (section 3.6, AdamW) with SMI off.
func setRunParams(ctx *context.Context, r Run) {
	guideline := runs[5]
	if !r.SMI {
		r.Schedule, r.AlphaStart, r.AlphaEnd, r.Beta, r.Quantile = guideline.Schedule,
			guideline.AlphaStart, guideline.AlphaEnd, guideline.Beta, guideline.Quantile
	}
	ctx.SetParam(paramSMI, r.SMI)
	ctx.SetParam(paramQuantile, r.Quantile)
	ctx.SetParam(paramBeta, r.Beta)
	ctx.SetParam(paramSchedule, r.Schedule)
	ctx.SetParam(paramAlphaStart, r.AlphaStart)
	ctx.SetParam(paramAlphaEnd, r.AlphaEnd)
	ctx.SetParam(paramTotalSteps, 0)
}

// smiSettings returns the SMI hyperparameters in ctx, for the metrics file; nil when SMI is off.
func smiSettings(ctx *context.Context) map[string]any {
	if !context.GetParamOr(ctx, paramSMI, false) {
		return nil
	}
	out := map[string]any{}
	for _, name := range []string{paramQuantile, paramBeta, paramSchedule, paramAlphaStart, paramAlphaEnd, paramTotalSteps} {
		v, _ := ctx.GetParam(name)
		out[name] = v
	}
	return out
}

// newOptimizer builds the run's optimizer: global-norm clipping of the raw gradients (as
// nanoGPT), then SMI's filter when enabled, then AdamW.
func newOptimizer(ctx *context.Context, cfg gpt.Config) (gomlxopt.Interface, error) {
	var opt gpt.WithGradients = gpt.AdamW(cfg)
	if context.GetParamOr(ctx, paramSMI, false) {
		return nil, fmt.Errorf("SMI runs need the optimizers package, which is not available yet")
	}
	return gpt.ClipGlobalNorm(opt, cfg.GradClip), nil
}

// smiTelemetry returns the last step's SMI blend and kept spectral energy, when SMI runs.
func smiTelemetry(ctx *context.Context) (alpha, keptEnergy float64, ok bool) {
	return 0, 0, false
}
