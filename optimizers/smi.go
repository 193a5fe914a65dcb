package optimizers

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/spectral"
)

const (
	// SMIScope is the scope, under the context given to the optimizer, of SMI's state: the spectral history of
	// each filtered variable (under SMIScope/history, mirroring the variable's own scope and name) and the
	// telemetry scalars.
	SMIScope = "smi"

	// TelemetryAlphaName is the float32 scalar variable (in SMIScope) with the alpha of the last step.
	TelemetryAlphaName = "alpha"

	// TelemetryKeptEnergyName is the float32 scalar variable (in SMIScope) with the fraction of gradient
	// energy the masks kept in the last step (see Telemetry).
	TelemetryKeptEnergyName = "kept_energy"

	historyScope = "history"
)

// Context hyperparameters read by SMIConfig.FromContext (and ParamBase by FromContext). For GoMLX's "-set" flags
// (commandline.ParseContextSettings) the parameter must exist in the context first: see SetDefaultParams.
const (
	ParamQuantile     = "smi_quantile"      // float64 in [0, 1)
	ParamBeta         = "smi_beta"          // float64 in [0, 1)
	ParamSchedule     = "smi_schedule"      // "constant", "linear" or "cosine"
	ParamAlphaStart   = "smi_alpha_start"   // float64 in [0, 1]
	ParamAlphaEnd     = "smi_alpha_end"     // float64 in [0, 1]
	ParamTotalSteps   = "smi_total_steps"   // int > 0; 0: not set (then ParamTrainSteps)
	ParamHalfSpectrum = "smi_half_spectrum" // bool
	ParamExclude      = "smi_exclude"       // comma-separated regular expressions
	ParamCounting     = "smi_counting"      // "", "scatter" or "compare" (see SMIConfig.Counting)
	ParamBatchLimit   = "smi_batch_limit"   // int >= 0 (see SMIConfig.BatchLimit)
)

// SMIConfig configures SMI around a base optimizer. It is itself a gomlxopt.Interface and a
// train.OptimizeWithGradients, so SMI(base) can be used as is; Done validates the options first and returns an
// error instead of the panic an invalid configuration raises when the graph is built.
type SMIConfig struct {
	base       gomlxopt.Interface
	cfg        spectral.Config
	exclude    []string
	filterIf   func(v *context.Variable) bool
	counting   spectral.Counting
	batchLimit int
	err        error // First error met while reading the context in FromContext.
}

// SMI wraps base (any optimizer implementing train.OptimizeWithGradients: GoMLX's SGD, Adam, AdamW, Adamax and
// RMSProp, and this package's SGDMomentum and Lion; not SMI itself, alone or clipped by ClipByGlobalNorm,
// since both layers would share SMI's state) with Spectral Momentum Integration. The spectral settings
// start as PaperDefaults(DefaultBase), the paper's guidance for AdamW, whatever the base (SetConfig with
// PaperDefaults(base) gives another base's row), and every variable of rank >= 1 is filtered.
// TotalSteps has no default and must be set. To clip the gradients before SMI filters them, as nanoGPT and the
// paper do at 1.0, wrap the result: ClipByGlobalNorm(opt, 1).
func SMI(base gomlxopt.Interface) *SMIConfig {
	return &SMIConfig{base: base, cfg: smiDefaults()}
}

// Quantile sets q in [0, 1): the fraction of frequencies dropped (1-q is kept; 0 keeps all). Default: see
// PaperDefaults (SMI's defaults are its DefaultBase row).
func (c *SMIConfig) Quantile(q float64) *SMIConfig {
	c.cfg.Quantile = q
	return c
}

// Beta sets the decay in [0, 1) of the moving average of spectral magnitudes. Default: see PaperDefaults.
func (c *SMIConfig) Beta(b float64) *SMIConfig {
	c.cfg.Beta = b
	return c
}

// Schedule sets how alpha moves from alphaStart (step 0) to alphaEnd (step TotalSteps and after), both in
// [0, 1]: spectral.ScheduleConstant (alphaStart throughout), ScheduleLinear or ScheduleCosine. Default: see
// PaperDefaults.
func (c *SMIConfig) Schedule(s spectral.Schedule, alphaStart, alphaEnd float64) *SMIConfig {
	c.cfg.Schedule, c.cfg.AlphaStart, c.cfg.AlphaEnd = s, alphaStart, alphaEnd
	return c
}

// TotalSteps sets T > 0, the global step at which the schedule reaches alphaEnd. Usually the number of
// training steps. No default.
func (c *SMIConfig) TotalSteps(n int) *SMIConfig {
	c.cfg.TotalSteps = n
	return c
}

// HalfSpectrum selects the half-spectrum variant, an extension that is not the paper's method: the quantile
// counts each real-FFT bin once instead of with its multiplicity in the full spectrum, so its kept set can
// differ slightly (see package spectral); memory and cost are the same. Default
// false.
func (c *SMIConfig) HalfSpectrum(on bool) *SMIConfig {
	c.cfg.HalfSpectrum = on
	return c
}

// Exclude adds regular expressions (Go syntax) matched against each variable's scope and name, as in
// "/model/dense_0/biases": a variable matching any of them is left unfiltered (its gradient goes to the base
// optimizer as is). Default: none.
func (c *SMIConfig) Exclude(patterns ...string) *SMIConfig {
	c.exclude = append(c.exclude, patterns...)
	return c
}

// FilterIf sets a predicate: only variables for which it returns true (and that no Exclude pattern matches)
// are filtered. Default nil: every variable of rank >= 1, as in the paper. Rank-0 variables, complex ones and
// empty ones are never filtered.
func (c *SMIConfig) FilterIf(pred func(v *context.Variable) bool) *SMIConfig {
	c.filterIf = pred
	return c
}

// Counting chooses how the exact quantile counts (spectral.CountingScatter or CountingCompare); the results
// are the same bit for bit, only the speed differs by backend. Default spectral.CountingAuto: scatter on
// CPUs, compare on GPUs and TPUs (spectral.CountingFor).
func (c *SMIConfig) Counting(counting spectral.Counting) *SMIConfig {
	c.counting = counting
	return c
}

// BatchLimit sets the largest variable, in elements, that is filtered in one batch with the other
// variables of its matrix shape (larger ones are filtered one by one); results do not depend on it. Default 0:
// chosen by backend, DefaultBatchLimit.
func (c *SMIConfig) BatchLimit(maxElements int) *SMIConfig {
	c.batchLimit = maxElements
	return c
}

// SetConfig replaces all the spectral settings at once, e.g. with PaperDefaults(base).
func (c *SMIConfig) SetConfig(cfg spectral.Config) *SMIConfig {
	c.cfg = cfg
	return c
}

// Config returns the spectral settings as they stand.
func (c *SMIConfig) Config() spectral.Config { return c.cfg }

// FromContext reads the smi_* hyperparameters (ParamQuantile, ...) set in ctx, overriding the current values
// of those present; patterns in ParamExclude are added to those given to Exclude. ParamTotalSteps 0 counts
// as not set; when total steps are still not set after it, ParamTrainSteps ("train_steps", the length of
// the training in GoMLX's example trainers) is taken if ctx has it. A value of the wrong type is reported
// by Done (or panics when the graph is built). ParamBase is not read here: SMI(base) has its base (see the
// package function FromContext).
func (c *SMIConfig) FromContext(ctx *context.Context) *SMIConfig {
	r := paramReader{ctx: ctx, who: "optimizers.SMI"}
	c.cfg.Quantile = r.float(ParamQuantile, c.cfg.Quantile)
	c.cfg.Beta = r.float(ParamBeta, c.cfg.Beta)
	c.cfg.Schedule = spectral.Schedule(r.string(ParamSchedule, string(c.cfg.Schedule)))
	c.cfg.AlphaStart = r.float(ParamAlphaStart, c.cfg.AlphaStart)
	c.cfg.AlphaEnd = r.float(ParamAlphaEnd, c.cfg.AlphaEnd)
	if n := r.int(ParamTotalSteps, 0); n != 0 { // 0 (SetDefaultParams' default): not set
		c.cfg.TotalSteps = n
	}
	if c.cfg.TotalSteps == 0 {
		c.cfg.TotalSteps = r.int(ParamTrainSteps, 0)
	}
	c.cfg.HalfSpectrum = r.bool(ParamHalfSpectrum, c.cfg.HalfSpectrum)
	c.exclude = append(c.exclude, r.list(ParamExclude)...)
	c.counting = spectral.Counting(r.string(ParamCounting, string(c.counting)))
	c.batchLimit = r.int(ParamBatchLimit, c.batchLimit)
	if c.err == nil {
		c.err = r.err
	}
	return c
}

// DefaultParams returns the smi_* context hyperparameters holding cfg's values (no exclusions), to
// register them in a context before parsing "-set" flags (SetDefaultParams does it with SMI's defaults
// and ParamBase):
//
//	ctx.SetParams(optimizers.DefaultParams(cfg))
//	_, err := commandline.ParseContextSettings(ctx, *settings) // e.g. "smi_quantile=0.5;smi_schedule=linear"
func DefaultParams(cfg spectral.Config) map[string]any {
	return map[string]any{
		ParamQuantile:     cfg.Quantile,
		ParamBeta:         cfg.Beta,
		ParamSchedule:     string(cfg.Schedule),
		ParamAlphaStart:   cfg.AlphaStart,
		ParamAlphaEnd:     cfg.AlphaEnd,
		ParamTotalSteps:   cfg.TotalSteps,
		ParamHalfSpectrum: cfg.HalfSpectrum,
		ParamExclude:      "",
		ParamCounting:     string(spectral.CountingAuto),
		ParamBatchLimit:   0,
	}
}

// Done validates the configuration and returns the optimizer, or an error naming the first invalid option.
// The returned optimizer also implements train.OptimizeWithGradients.
func (c *SMIConfig) Done() (gomlxopt.Interface, error) {
	return c.build()
}

// Validate reports the first invalid option, or nil.
func (c *SMIConfig) Validate() error {
	_, err := c.build()
	return err
}

func (c *SMIConfig) build() (*smiOptimizer, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.base == nil {
		return nil, errors.New("optimizers.SMI: the base optimizer is nil")
	}
	if isSMI(c.base) {
		// Both layers would keep their histories and telemetry in the same variables of SMIScope.
		return nil, fmt.Errorf("optimizers.SMI: the base optimizer %T is SMI: SMI cannot be its own base; "+
			"name the optimizer it wraps (e.g. SMI(adamw), not SMI(SMI(adamw)))", c.base)
	}
	withGrads, ok := c.base.(train.OptimizeWithGradients)
	if !ok {
		return nil, fmt.Errorf("optimizers.SMI: the base optimizer %T does not implement train.OptimizeWithGradients, "+
			"so it cannot take SMI's gradients (GoMLX's sgd, adam, adamw, adamax and rmsprop and this package's "+
			"SGDMomentum and Lion do)", c.base)
	}
	if c.cfg.TotalSteps == 0 {
		return nil, fmt.Errorf("optimizers.SMI: total steps not set: call TotalSteps(n), or set %q "+
			"(the global step at which alpha reaches its end value, usually the number of training steps; "+
			"e.g. -set %s=5000) or %q in a context the configuration reads (FromContext(ctx))",
			ParamTotalSteps, ParamTotalSteps, ParamTrainSteps)
	}
	if err := c.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("optimizers.SMI: %w", err)
	}
	if err := c.counting.Validate(); err != nil {
		return nil, fmt.Errorf("optimizers.SMI: %w", err)
	}
	if c.batchLimit < 0 {
		return nil, fmt.Errorf("optimizers.SMI: batch limit must be >= 0 (0: chosen by backend), got %d", c.batchLimit)
	}
	o := &smiOptimizer{base: c.base, withGrads: withGrads, cfg: c.cfg, filterIf: c.filterIf,
		counting: c.counting, batchLimit: c.batchLimit}
	for _, p := range c.exclude {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("optimizers.SMI: exclude pattern %q is not a valid regular expression: %w", p, err)
		}
		o.exclude = append(o.exclude, re)
	}
	return o, nil
}

// isSMI reports whether opt is SMI, as an SMIConfig or built, directly or inside this package's
// ClipByGlobalNorm.
func isSMI(opt gomlxopt.Interface) bool {
	for {
		switch o := opt.(type) {
		case *SMIConfig, *smiOptimizer:
			return true
		case *clipWithGradients:
			opt = o.base
		case *clipByLoss:
			opt = o.base
		default:
			return false
		}
	}
}

func (c *SMIConfig) mustBuild() *smiOptimizer {
	o, err := c.build()
	if err != nil {
		panic(err)
	}
	return o
}

// UpdateGraph implements gomlxopt.Interface; it panics if the configuration is invalid.
func (c *SMIConfig) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	c.mustBuild().UpdateGraph(ctx, g, loss)
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients; it panics if the configuration is invalid.
func (c *SMIConfig) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType) {
	c.mustBuild().UpdateGraphWithGradients(ctx, grads, lossDType)
}

// Clear implements gomlxopt.Interface: it deletes SMI's state and the base optimizer's.
func (c *SMIConfig) Clear(ctx *context.Context) error {
	return clearSMI(ctx, c.base)
}
