package main

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
	"github.com/smi-gomlx/smi/spectral"
)

// The run's optimizer is chosen as in GoMLX's trainers, by the "optimizer" hyperparameter
// (gomlxopt.ParamOptimizer), and built by the optimizers package's FromContextWith: "adamw" for
// AdamW alone, "smi" for SMI around the base that smi_base names. This trainer's AdamW is nanoGPT's
// (gpt.AdamW: the preset's learning-rate schedule, betas and weight decay), so "adamw" is the one
// base it takes: other bases (lion, sgd-momentum, GoMLX's) are for GoMLX programs of one's own.
const trainerBase = "adamw"

// legacyParamSMI is the boolean that chose SMI before "optimizer" did: checkpoints saved then
// hold it (see migrateParams).
const legacyParamSMI = "smi"

// setRunParams writes the run's settings as hyperparameters, so "-set" can change any of them
// (and turn SMI on for free-form settings with "optimizer=smi"). Run 0 carries the guideline
// defaults (section 3.6, AdamW) with SMI off. smi_total_steps 0 stands for max_iters.
func setRunParams(ctx *context.Context, r results.Run) {
	cfg, _ := smiopt.PaperDefaults(trainerBase)
	name := trainerBase
	if r.SMI {
		cfg.Quantile, cfg.Beta, cfg.Schedule = r.Quantile, r.Beta, spectral.Schedule(r.Schedule)
		cfg.AlphaStart, cfg.AlphaEnd = r.AlphaStart, r.AlphaEnd
		name = smiopt.OptimizerName
	}
	cfg.TotalSteps = 0
	ctx.SetParams(smiopt.DefaultParams(cfg))
	ctx.SetParam(gomlxopt.ParamOptimizer, name)
	smiopt.SetDefaultParams(ctx) // smi_base; the rest are set above
}

// smiOn reports whether ctx's optimizer is SMI.
func smiOn(ctx *context.Context) bool {
	return context.GetParamOr(ctx, gomlxopt.ParamOptimizer, "") == smiopt.OptimizerName
}

// migrateParams brings the hyperparameters of a checkpoint an older version saved to today's: before
// "optimizer" and smi_base (the optimizers package's, as in GoMLX), a boolean "smi" chose SMI around
// AdamW, and before paramData the text was tiny Shakespeare. The old "smi" stays (a context cannot
// delete a hyperparameter); a resumed run does not load it (see trainRun).
func migrateParams(saved *context.Context) {
	if _, ok := saved.GetParam(paramData); !ok {
		saved.SetParam(paramData, data.SHA256) // the trainer took tiny Shakespeare alone then
	}
	if _, ok := saved.GetParam(gomlxopt.ParamOptimizer); ok {
		return
	}
	on, ok := saved.GetParam(legacyParamSMI)
	if !ok {
		return
	}
	name := trainerBase
	if b, _ := on.(bool); b {
		name = smiopt.OptimizerName
	}
	saved.SetParam(gomlxopt.ParamOptimizer, name)
	if _, ok := saved.GetParam(smiopt.ParamBase); !ok {
		saved.SetParam(smiopt.ParamBase, trainerBase)
	}
}

// smiSettings returns the SMI hyperparameters in ctx, for the metrics file; nil when SMI is off.
// smi_base is left out: it is always adamw here, and metrics files from before it existed are
// compared with these (study) and grouped with them (report).
func smiSettings(ctx *context.Context) map[string]any {
	if !smiOn(ctx) {
		return nil
	}
	out := map[string]any{}
	ctx.EnumerateParams(func(_, key string, value any) {
		if strings.HasPrefix(key, "smi_") && key != smiopt.ParamBase {
			out[key] = value
		}
	})
	return out
}

// newOptimizer builds the run's optimizer with gpt's recipe: global-norm clipping of the raw
// gradients (as nanoGPT), then the optimizer that "optimizer" names: nanoGPT's AdamW, or SMI's
// filter then AdamW.
func newOptimizer(ctx *context.Context, cfg gpt.Config) (gomlxopt.Interface, error) {
	name := context.GetParamOr(ctx, gomlxopt.ParamOptimizer, "")
	base := context.GetParamOr(ctx, smiopt.ParamBase, "")
	if name != trainerBase && name != smiopt.OptimizerName || base != trainerBase {
		return nil, fmt.Errorf("optimizer=%s, %s=%s: this trainer trains with nanoGPT's AdamW (the preset's "+
			"learning-rate schedule, betas and weight decay), alone (optimizer=%s) or inside SMI (optimizer=%s, %s=%s); "+
			"other bases are for GoMLX programs of your own (go doc ./optimizers)",
			name, smiopt.ParamBase, base, trainerBase, smiopt.OptimizerName, smiopt.ParamBase, trainerBase)
	}
	own := map[string]func(*context.Context) gomlxopt.Interface{
		trainerBase: func(*context.Context) gomlxopt.Interface { return gpt.AdamW(cfg) },
	}
	opt, err := smiopt.FromContextWith(ctx, own)
	if err != nil {
		return nil, fmt.Errorf("SMI settings: %v", err)
	}
	return gpt.Optimizer(cfg, opt, nil)
}
