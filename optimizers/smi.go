package optimizers

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

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

// Context hyperparameters read by SMIConfig.FromContext. For GoMLX's "-set" flags (commandline.ParseContextSettings)
// the parameter must exist in the context first: see DefaultParams.
const (
	ParamQuantile     = "smi_quantile"      // float64 in [0, 1)
	ParamBeta         = "smi_beta"          // float64 in [0, 1)
	ParamSchedule     = "smi_schedule"      // "constant", "linear" or "cosine"
	ParamAlphaStart   = "smi_alpha_start"   // float64 in [0, 1]
	ParamAlphaEnd     = "smi_alpha_end"     // float64 in [0, 1]
	ParamTotalSteps   = "smi_total_steps"   // int > 0
	ParamHalfSpectrum = "smi_half_spectrum" // bool
	ParamExclude      = "smi_exclude"       // comma-separated regular expressions
	ParamClipNorm     = "smi_clip_norm"     // float64 >= 0, 0 = off
)

// SMIConfig configures SMI around a base optimizer. It is itself a gomlxopt.Interface and a
// train.OptimizeWithGradients, so SMI(base) can be used as is; Done validates the options first and returns an
// error instead of the panic an invalid configuration raises when the graph is built.
type SMIConfig struct {
	base     gomlxopt.Interface
	cfg      spectral.Config
	exclude  []string
	filterIf func(v *context.Variable) bool
	clipNorm float64
	err      error // First error met while reading the context in FromContext.
}

// SMI wraps base (any optimizer implementing train.OptimizeWithGradients: GoMLX's SGD, Adam, AdamW, Adamax and
// RMSProp, and this package's SGDMomentum and Lion) with Spectral Momentum Integration. The defaults are the
// paper's guidance for AdamW (PaperDefaults("adamw")): quantile 0.25, beta 0.99, cosine alpha 0.1 -> 0.5, full
// spectrum, every variable of rank >= 1 filtered, no clipping. TotalSteps has no default and must be set.
func SMI(base gomlxopt.Interface) *SMIConfig {
	cfg, _ := PaperDefaults("adamw")
	return &SMIConfig{base: base, cfg: cfg}
}

// Quantile sets q in [0, 1): the fraction of frequencies dropped (1-q is kept; 0 keeps all). Default 0.25.
func (c *SMIConfig) Quantile(q float64) *SMIConfig {
	c.cfg.Quantile = q
	return c
}

// Beta sets the decay in [0, 1) of the moving average of spectral magnitudes. Default 0.99.
func (c *SMIConfig) Beta(b float64) *SMIConfig {
	c.cfg.Beta = b
	return c
}

// Schedule sets how alpha moves from alphaStart (step 0) to alphaEnd (step TotalSteps and after), both in
// [0, 1]: spectral.ScheduleConstant (alphaStart throughout), ScheduleLinear or ScheduleCosine. Default cosine
// 0.1 -> 0.5.
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

// ClipGlobalNorm clips the gradients by their global L2 norm (see ClipByGlobalNorm) before SMI filters them,
// as nanoGPT and the paper do at 1.0. 0 (default) turns clipping off.
func (c *SMIConfig) ClipGlobalNorm(maxNorm float64) *SMIConfig {
	c.clipNorm = maxNorm
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
// of those present; patterns in ParamExclude are added to those given to Exclude. A value of the wrong type
// is reported by Done (or panics when the graph is built).
func (c *SMIConfig) FromContext(ctx *context.Context) *SMIConfig {
	r := paramReader{ctx: ctx}
	c.cfg.Quantile = r.float(ParamQuantile, c.cfg.Quantile)
	c.cfg.Beta = r.float(ParamBeta, c.cfg.Beta)
	c.cfg.Schedule = spectral.Schedule(r.string(ParamSchedule, string(c.cfg.Schedule)))
	c.cfg.AlphaStart = r.float(ParamAlphaStart, c.cfg.AlphaStart)
	c.cfg.AlphaEnd = r.float(ParamAlphaEnd, c.cfg.AlphaEnd)
	c.cfg.TotalSteps = r.int(ParamTotalSteps, c.cfg.TotalSteps)
	c.cfg.HalfSpectrum = r.bool(ParamHalfSpectrum, c.cfg.HalfSpectrum)
	c.exclude = append(c.exclude, r.list(ParamExclude)...)
	c.clipNorm = r.float(ParamClipNorm, c.clipNorm)
	if c.err == nil {
		c.err = r.err
	}
	return c
}

// DefaultParams returns the smi_* context hyperparameters holding cfg's values (no exclusions, no clipping), to
// register them in a context before parsing "-set" flags:
//
//	ctx.SetParams(optimizers.DefaultParams(cfg))
//	err := commandline.ParseContextSettings(ctx, *settings) // e.g. "smi_quantile=0.5;smi_schedule=linear"
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
		ParamClipNorm:     0.0,
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
	withGrads, ok := c.base.(train.OptimizeWithGradients)
	if !ok {
		return nil, fmt.Errorf("optimizers.SMI: the base optimizer %T does not implement train.OptimizeWithGradients, "+
			"so it cannot take SMI's gradients (GoMLX's sgd, adam, adamw, adamax and rmsprop and this package's "+
			"SGDMomentum and Lion do)", c.base)
	}
	if c.cfg.TotalSteps == 0 {
		return nil, fmt.Errorf("optimizers.SMI: total steps not set: call TotalSteps(n) or set %q "+
			"(the global step at which alpha reaches its end value, usually the number of training steps)",
			ParamTotalSteps)
	}
	if err := c.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("optimizers.SMI: %w", err)
	}
	if !(c.clipNorm >= 0) || math.IsInf(c.clipNorm, 0) {
		return nil, fmt.Errorf("optimizers.SMI: clip norm must be finite and >= 0 (0 = off), got %g", c.clipNorm)
	}
	o := &smiOptimizer{base: c.base, withGrads: withGrads, cfg: c.cfg, filterIf: c.filterIf, clipNorm: c.clipNorm}
	for _, p := range c.exclude {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("optimizers.SMI: exclude pattern %q is not a valid regular expression: %w", p, err)
		}
		o.exclude = append(o.exclude, re)
	}
	return o, nil
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

// batchMaxElements is the largest variable (in elements) that SMI stacks with others of its shape.
// On the 2-core development VM (one run each, with other work running), batching made the `cpu` GPT
// preset's filter (variables of at most 65536 elements) 8.1 ms instead of 9.3 ms alone, and the
// `paper` preset's (up to 589824) 232 ms instead of 204 ms:
//
//	SMI_SPECTRAL_MEASURE=1 SMI_SPECTRAL_MODEL=paper go test ./spectral -run TestModelFilterTiming -v
const batchMaxElements = 1 << 16

type smiOptimizer struct {
	base      gomlxopt.Interface
	withGrads train.OptimizeWithGradients
	cfg       spectral.Config
	exclude   []*regexp.Regexp
	filterIf  func(v *context.Variable) bool
	clipNorm  float64
}

// UpdateGraph implements gomlxopt.Interface.
func (o *smiOptimizer) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	updateFromLoss(ctx, "optimizers.SMI", loss, o)
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients: optional clipping, then per variable the
// spectral filter and blend, then the base optimizer's update with the blended gradients.
func (o *smiOptimizer) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType) {
	var g *Graph
	for _, grad := range grads {
		if grad != nil {
			g = grad.Graph()
			break
		}
	}
	if g == nil {
		panicf("optimizers.SMI: no gradients, are there any trainable variables?")
	}
	vars := trainableVariables(ctx, g, len(grads), "optimizers.SMI")
	if o.clipNorm > 0 {
		grads = ClipGradientsByGlobalNorm(grads, o.clipNorm)
	}

	// The schedule's t is the global step before the base optimizer increments it: 0 at the first step.
	step := gomlxopt.GetGlobalStepVar(ctx).ValueGraph(g)
	alphas := map[dtypes.DType]*Node{dtypes.Float32: spectral.Alpha(step, o.cfg, dtypes.Float32)}
	alphaFor := func(dtype dtypes.DType) *Node {
		if dtype != dtypes.Float64 {
			dtype = dtypes.Float32
		}
		if alphas[dtype] == nil {
			alphas[dtype] = spectral.Alpha(step, o.cfg, dtype)
		}
		return alphas[dtype]
	}

	smiCtx := ctx.In(SMIScope)
	historyCtx := smiCtx.In(historyScope)
	out := make([]*Node, len(grads))
	// Small variables with the same matrix view and compute dtype are filtered together by one
	// FilterBatch: the filter's many small operations then cost their fixed price once per group
	// instead of once per variable. Large ones are filtered one by one: stacking them only adds
	// copies, and XLA CPU runs their independent filters concurrently (see batchMaxElements). Each
	// variable keeps its own history variable.
	type member struct {
		index   int
		hVar    *context.Variable
		history *Node
	}
	type groupKey struct {
		n, d  int
		dtype dtypes.DType
		alone int // The variable's index if it is filtered alone, else -1.
	}
	groups := map[groupKey][]member{}
	var order []groupKey
	for i, v := range vars {
		grad := grads[i]
		if grad == nil {
			// No gradient: the base optimizer sees zeros (what GoMLX's Gradient returns for a variable the loss
			// does not reach); the history is left as is.
			out[i] = Zeros(g, v.Shape())
			continue
		}
		out[i] = grad
		hShape, ok := spectral.HistoryShape(grad.Shape())
		if !ok || !o.selected(v) {
			continue
		}
		upgradeFullHistory(historyCtx, v, hShape)
		hVar := stateVariable(historyCtx, v, "", hShape)
		n, d, _ := spectral.MatrixView(grad.Shape())
		key := groupKey{n, d, hShape.DType, -1}
		if n*d > batchMaxElements {
			key.alone = i
		}
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], member{index: i, hVar: hVar, history: hVar.ValueGraph(g)})
	}

	keptSum, energySum := ScalarZero(g, dtypes.Float64), ScalarZero(g, dtypes.Float64)
	for _, key := range order {
		members := groups[key]
		gs := make([]*Node, len(members))
		hs := make([]*Node, len(members))
		for j, m := range members {
			gs[j] = Reshape(ConvertDType(grads[m.index], key.dtype), 1, key.n, key.d)
			hs[j] = InsertAxes(m.history, 0)
		}
		filtered, newHistory, kept, energy := spectral.FilterBatch(Concatenate(gs, 0), Concatenate(hs, 0),
			o.cfg.Quantile, o.cfg.Beta, o.cfg.HalfSpectrum)
		for j, m := range members {
			grad := grads[m.index]
			f := ConvertDType(Reshape(Slice(filtered, AxisElem(j)), grad.Shape().Dimensions...), grad.DType())
			h := Reshape(Slice(newHistory, AxisElem(j)), m.history.Shape().Dimensions...)
			e := Reshape(Slice(energy, AxisElem(j)))
			k := ConvertDType(Reshape(Slice(kept, AxisElem(j))), dtypes.Float64)

			// A NaN or Inf would stay in the history for good: such a step leaves the history alone and passes
			// the gradient through unfiltered, for the base optimizer (and GoMLX's clip_nan) to deal with. The
			// energy, a sum over the spectrum, is non-finite exactly when the spectrum is.
			finite := IsFinite(e)
			m.hVar.SetValueGraph(Where(finite, h, m.history))
			out[m.index] = Where(finite, spectral.Blend(grad, f, alphaFor(grad.DType())), grad)

			// By Parseval, kept*||g||^2 = ||G~||^2: the weighted mean below is the fraction of the squared norm
			// of all filtered gradients that the masks kept.
			zero := ScalarZero(g, dtypes.Float64)
			energySum = Add(energySum, Where(finite, e, zero))
			keptSum = Add(keptSum, Where(finite, Mul(k, e), zero))
		}
	}
	keptEnergy := Where(GreaterThan(energySum, ScalarZero(g, dtypes.Float64)), Div(keptSum, energySum),
		ScalarOne(g, dtypes.Float64))
	telemetryVariable(smiCtx, TelemetryAlphaName).SetValueGraph(alphas[dtypes.Float32])
	telemetryVariable(smiCtx, TelemetryKeptEnergyName).SetValueGraph(ConvertDType(keptEnergy, dtypes.Float32))

	o.withGrads.UpdateGraphWithGradients(ctx, out, lossDType)
}

// selected applies FilterIf and Exclude.
func (o *smiOptimizer) selected(v *context.Variable) bool {
	if o.filterIf != nil && !o.filterIf(v) {
		return false
	}
	name := v.ScopeAndName()
	for _, re := range o.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// Clear implements gomlxopt.Interface: it deletes SMI's state and the base optimizer's.
func (o *smiOptimizer) Clear(ctx *context.Context) error {
	return clearSMI(ctx, o.base)
}

func clearSMI(ctx *context.Context, base gomlxopt.Interface) error {
	if err := ctx.In(SMIScope).DeleteVariablesInScope(); err != nil {
		return err
	}
	if base == nil {
		return nil
	}
	return base.Clear(ctx)
}

func telemetryVariable(smiCtx *context.Context, name string) *context.Variable {
	return smiCtx.Checked(false).VariableWithValue(name, float32(0)).SetTrainable(false)
}

// Telemetry returns the alpha and the kept-energy fraction of the last step executed with SMI on ctx (the
// context given to the trainer), read from SMI's telemetry variables; ok is false before the first step.
//
// keptEnergy is the fraction of the gradients' energy that the frequency masks kept, over all filtered
// variables together: sum_i k_i*||g_i||^2 / sum_i ||g_i||^2, where k_i = sum|F_i*M_i|^2 / sum|F_i|^2 is
// variable i's kept fraction of spectral energy (by Parseval, k_i*||g_i||^2 = ||G~_i||^2, so this is
// sum_i ||G~_i||^2 / sum_i ||g_i||^2). It is 1 when all filtered gradients are zero, or none is filtered.
// Gradients are taken after clipping, before blending; variables skipped for non-finite gradients are left
// out. It is about 1-q for white-noise gradients and nearer 1 the more the gradients' energy is concentrated
// in few frequencies.
func Telemetry(ctx *context.Context) (alpha, keptEnergy float64, ok bool) {
	smiCtx := ctx.In(SMIScope)
	read := func(name string) (float64, bool) {
		v := smiCtx.GetVariableByScopeAndName(smiCtx.Scope(), name)
		if v == nil || !v.HasValue() {
			return 0, false
		}
		t, err := v.Value()
		if err != nil || t.Size() != 1 {
			return 0, false
		}
		var x float64
		var found bool
		t.ConstFlatData(func(flat any) {
			if f, isF32 := flat.([]float32); isF32 && len(f) == 1 {
				x, found = float64(f[0]), true
			}
		})
		return x, found
	}
	alpha, okA := read(TelemetryAlphaName)
	keptEnergy, okK := read(TelemetryKeptEnergyName)
	return alpha, keptEnergy, okA && okK
}

// paramReader reads context hyperparameters, keeping the first type error instead of panicking.
type paramReader struct {
	ctx *context.Context
	who string // Prefix of error messages; "optimizers.SMI" if empty.
	err error
}

func (r *paramReader) get(key string) (any, bool) {
	v, found := r.ctx.GetParam(key)
	return v, found && v != nil
}

func (r *paramReader) fail(key string, v any, want string) {
	if r.err == nil {
		who := r.who
		if who == "" {
			who = "optimizers.SMI"
		}
		r.err = fmt.Errorf("%s: context hyperparameter %q must be %s, got %T %v", who, key, want, v, v)
	}
}

func (r *paramReader) float(key string, def float64) float64 {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	}
	r.fail(key, v, "a number")
	return def
}

func (r *paramReader) int(key string, def int) int {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case int32:
		return int(x)
	case float64: // Params restored from a checkpoint's JSON may come back as float64.
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	}
	r.fail(key, v, "an integer")
	return def
}

func (r *paramReader) bool(key string, def bool) bool {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if x, isBool := v.(bool); isBool {
		return x
	}
	r.fail(key, v, "a bool")
	return def
}

func (r *paramReader) string(key string, def string) string {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if x, isString := v.(string); isString {
		return x
	}
	r.fail(key, v, "a string")
	return def
}

// list reads comma-separated patterns from a string, or a list of strings; empty entries are dropped.
func (r *paramReader) list(key string) []string {
	v, ok := r.get(key)
	if !ok {
		return nil
	}
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []string:
		items = x
	case []any: // From a checkpoint's JSON.
		for _, e := range x {
			s, isString := e.(string)
			if !isString {
				r.fail(key, v, "a comma-separated string or a list of strings")
				return nil
			}
			items = append(items, s)
		}
	default:
		r.fail(key, v, "a comma-separated string or a list of strings")
		return nil
	}
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
