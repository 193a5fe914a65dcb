package main

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
	"github.com/smi-gomlx/smi/spectral"
)

// Run is one of the configurations of the paper's experiment (docs/ALGORITHM.md).
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
	{Name: "AdamW alone"},
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

// paramSMI turns SMI on or off; the smi_* hyperparameters are the optimizers package's.
const paramSMI = "smi"

// setRunParams writes the run's settings as hyperparameters, so "-set" can change any of them
// (and turn SMI on for free-form settings with "smi=true"). Run 0 carries the guideline
// defaults (section 3.6, AdamW) with SMI off. smi_total_steps 0 stands for max_iters.
func setRunParams(ctx *context.Context, r Run) {
	cfg, _ := smiopt.PaperDefaults("adamw")
	if r.SMI {
		cfg.Quantile, cfg.Beta, cfg.Schedule = r.Quantile, r.Beta, spectral.Schedule(r.Schedule)
		cfg.AlphaStart, cfg.AlphaEnd = r.AlphaStart, r.AlphaEnd
	}
	cfg.TotalSteps = 0
	ctx.SetParams(smiopt.DefaultParams(cfg))
	ctx.SetParam(paramSMI, r.SMI)
}

// smiSettings returns the SMI hyperparameters in ctx, for the metrics file; nil when SMI is off.
func smiSettings(ctx *context.Context) map[string]any {
	if !context.GetParamOr(ctx, paramSMI, false) {
		return nil
	}
	out := map[string]any{}
	ctx.EnumerateParams(func(_, key string, value any) {
		if strings.HasPrefix(key, "smi_") {
			out[key] = value
		}
	})
	return out
}

// newOptimizer builds the run's optimizer with gpt's recipe: global-norm clipping of the raw
// gradients (as nanoGPT), then SMI's filter when enabled, then AdamW.
func newOptimizer(ctx *context.Context, cfg gpt.Config) (gomlxopt.Interface, error) {
	var configure func(*smiopt.SMIConfig) *smiopt.SMIConfig
	if context.GetParamOr(ctx, paramSMI, false) {
		configure = func(c *smiopt.SMIConfig) *smiopt.SMIConfig { return c.FromContext(ctx) }
	}
	opt, err := gpt.Optimizer(cfg, gpt.AdamW(cfg), configure)
	if err != nil {
		return nil, fmt.Errorf("SMI settings: %v", err)
	}
	return opt, nil
}
