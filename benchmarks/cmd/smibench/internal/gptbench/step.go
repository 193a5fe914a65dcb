// Package gptbench is smibench's measurements of the project's GPT (internal/gpt) with the public
// benchmarks package: the presets' training steps under named optimizer configurations, the step
// split into parts beside nanoGPT's PyTorch step, the dense layers' products, data-parallel steps,
// the XLA CPU plugin's kernels and the machine. The report in ../report renders them.
package gptbench

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// Optimizer configuration names in the step benchmark.
const (
	OptAdamW       = "AdamW"
	OptSMIAdamW    = "SMI(AdamW)"
	OptSMIAdamWH   = "SMI(AdamW) half"
	OptSGDM        = "SGD-momentum"
	OptSMISGDM     = "SMI(SGD-momentum)"
	OptSMISGDMH    = "SMI(SGD-momentum) half"
	OptLion        = "Lion"
	OptSMILion     = "SMI(Lion)"
	OptSMILionHalf = "SMI(Lion) half"
)

// StepPair is a base optimizer and SMI around it, compared side by side.
type StepPair struct{ Base, SMI string }

// AdamWPairs are the pairs that carry the goals; OtherPairs the remaining base optimizers.
var (
	AdamWPairs = []StepPair{{OptAdamW, OptSMIAdamW}, {OptAdamW, OptSMIAdamWH}}
	OtherPairs = []StepPair{{OptSGDM, OptSMISGDM}, {OptSGDM, OptSMISGDMH}, {OptLion, OptSMILion}, {OptLion, OptSMILionHalf}}
)

// NewOptimizer builds a named configuration with the recipe examples/shakespeare trains with
// (gpt.Optimizer): gradients clipped at the preset's global norm, SMI (if any) with the paper's
// guideline settings for that base, then the base optimizer.
func NewOptimizer(name string, cfg gpt.Config) (gomlxopt.Interface, error) {
	name, strategy, _ := parseStrategy(name)
	half := strings.HasSuffix(name, " half")
	base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "SMI("), " half"), ")")
	var opt gomlxopt.Interface
	var guide string
	var err error
	switch base {
	case OptAdamW:
		opt, guide = gpt.AdamW(cfg), "adamw"
	case OptSGDM:
		opt, err = smiopt.SGDMomentum().LearningRate(0.01).Done()
		guide = "sgd-momentum"
	case OptLion:
		opt, err = smiopt.Lion().LearningRate(1e-4).Done()
		guide = "lion"
	default:
		return nil, fmt.Errorf("unknown optimizer %q", name)
	}
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(name, "SMI(") {
		return gpt.Optimizer(cfg, opt, nil)
	}
	sc, err := smiopt.PaperDefaults(guide)
	if err != nil {
		return nil, err
	}
	sc.TotalSteps = cfg.MaxIters
	return gpt.Optimizer(cfg, opt, func(c *smiopt.SMIConfig) *smiopt.SMIConfig {
		return strategy.Configure(c.SetConfig(sc).HalfSpectrum(half))
	})
}

// Trainer is the GPT of a preset with one named optimizer configuration, ready to step on a fixed
// random batch.
type Trainer struct {
	*benchmarks.Step
	inputs, labels []*tensors.Tensor
}

// Model is the GPT of cfg on a batch of random tokens (the step's cost does not depend on the
// data), with the context seeded by seed.
func Model(cfg gpt.Config, seed uint64) benchmarks.Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	return benchmarks.Model{
		Fn: func(ctx *context.Context, _ any, inputs []*Node) []*Node {
			return []*Node{gpt.Logits(ctx, cfg, inputs[0])}
		},
		Loss:   func(labels, predictions []*Node) *Node { return gpt.Loss(predictions[0], labels[0]) },
		Inputs: []*tensors.Tensor{randomTokens(rng, cfg)},
		Labels: []*tensors.Tensor{randomTokens(rng, cfg)},
		Seed:   int64(seed),
	}
}

// NewTrainer builds the GPT of cfg with the named optimizer, through GoMLX's train.Trainer as
// examples/shakespeare uses it.
func NewTrainer(b backends.Backend, cfg gpt.Config, optName string, seed uint64) (*Trainer, error) {
	// GoMLX v0.26's own product gradients are many times slower on XLA CPU (package dotgrad);
	// without this the base step, not SMI, would be what is measured.
	dotgrad.Enable()
	opt, err := NewOptimizer(optName, cfg)
	if err != nil {
		return nil, err
	}
	m := Model(cfg, seed)
	s, err := benchmarks.NewStep(b, m, optName, opt)
	if err != nil {
		return nil, err
	}
	return &Trainer{Step: s, inputs: m.Inputs, labels: m.Labels}, nil
}

// randomTokens is a [batch, block] batch of random token ids of cfg's vocabulary: a step's
// cost does not depend on the data.
func randomTokens(rng *rand.Rand, cfg gpt.Config) *tensors.Tensor {
	t := tensors.FromShape(shapes.Make(dtypes.Int32, cfg.BatchSize, cfg.BlockSize))
	tensors.MustMutableFlatData(t, func(flat []int32) {
		for i := range flat {
			flat[i] = int32(rng.IntN(cfg.VocabSize))
		}
	})
	return t
}

// StepResult is the step benchmark of one preset.
type StepResult struct {
	Preset string
	Config gpt.Config
	Params int64 // trainable parameters (elements)
	// Shapes of the trainable variables (all filtered: the GPT has no scalars).
	Shapes  []benchmarks.ModelShape
	Results []benchmarks.Result
	Memory  []MemoryResult
}

// MemoryResult is the optimizer state of one configuration, counted from the context.
type MemoryResult struct {
	Opt         string
	ParamBytes  int64
	StateBytes  int64
	StateScopes map[string]int64
}

// Time of a configuration.
func (r StepResult) Time(opt string) (benchmarks.Result, bool) {
	for _, res := range r.Results {
		if res.Name == opt {
			return res, true
		}
	}
	return benchmarks.Result{}, false
}

// Mem of a configuration.
func (r StepResult) Mem(opt string) (MemoryResult, bool) {
	for _, m := range r.Memory {
		if m.Opt == opt {
			return m, true
		}
	}
	return MemoryResult{}, false
}

// MeasureSteps times the preset's training step under each named configuration, interleaved
// (benchmarks.MeasureSteps), and counts their state after the timed steps.
func MeasureSteps(b backends.Backend, preset string, cfg gpt.Config, opts []string, opt benchmarks.Options, progress func(string)) (StepResult, error) {
	res := StepResult{Preset: preset, Config: cfg}
	shapesOut, _, err := ModelShapes(b, cfg)
	if err != nil {
		return res, err
	}
	res.Shapes = shapesOut
	dotgrad.Enable() // see NewTrainer
	var named []benchmarks.Optimizer
	for _, name := range opts {
		o, err := NewOptimizer(name, cfg)
		if err != nil {
			return res, fmt.Errorf("%s %s: %w", preset, name, err)
		}
		named = append(named, benchmarks.Optimizer{Name: name, Opt: o})
	}
	var stepProgress func(string)
	if progress != nil {
		stepProgress = func(s string) { progress(fmt.Sprintf("step %s: %s", preset, s)) }
	}
	timings, err := benchmarks.MeasureSteps(b, Model(cfg, 1), named, opt, stepProgress)
	if err != nil {
		return res, fmt.Errorf("%s: %w", preset, err)
	}
	for _, t := range timings {
		res.Results = append(res.Results, t.Result)
		res.Params = t.Memory.ParamBytes / 4
		res.Memory = append(res.Memory, MemoryResult{Opt: t.Name, ParamBytes: t.Memory.ParamBytes, StateBytes: t.Memory.StateBytes,
			StateScopes: t.Memory.StateScopes})
	}
	return res, nil
}

// ModelShapes lists the variable shapes of the GPT for cfg, by building (not running) its
// graph, so any size can be listed without allocating its weights.
func ModelShapes(b backends.Backend, cfg gpt.Config) (shapesOut []benchmarks.ModelShape, params int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("model shapes: %v", r)
		}
	}()
	ctx := context.New()
	g := NewGraph(b, "shapes")
	defer g.Finalize()
	tokens := Parameter(g, "tokens", shapes.Make(dtypes.Int32, 1, 1))
	ctx.SetTraining(g, true)
	_ = gpt.Logits(ctx, cfg, tokens)
	shapesOut = benchmarks.TrainableShapes(ctx)
	for v := range ctx.IterVariables() {
		params += int64(v.Shape().Size())
	}
	return shapesOut, params, nil
}

// GPT2Small is GPT-2 small's shape (124M parameters with biases; this bias-free GPT has
// about 124M too, the tied head counted once) on the same model code.
func GPT2Small() gpt.Config {
	return gpt.Config{VocabSize: 50257, BlockSize: 1024, NLayer: 12, NHead: 12, NEmbd: 768}
}

// StrategyOpt is the configuration name of SMI(AdamW) computed with strategy s.
func StrategyOpt(s benchmarks.Strategy) string { return OptSMIAdamW + " [" + s.String() + "]" }

// parseStrategy splits a configuration name into the optimizer's and the strategy of a
// StrategyOpt name (ok false when it names none).
func parseStrategy(name string) (opt string, s benchmarks.Strategy, ok bool) {
	for _, st := range benchmarks.Strategies {
		if name == StrategyOpt(st) {
			return OptSMIAdamW, st, true
		}
	}
	return name, benchmarks.Strategy{}, false
}

// MeasureStrategies times AdamW and SMI(AdamW) under each strategy on preset's training step,
// interleaved, on backend b. progress (may be nil) gets a line per configuration built, with the
// time its first step took (compilation included).
func MeasureStrategies(b backends.Backend, preset string, cfg gpt.Config, strategies []benchmarks.Strategy, opt benchmarks.Options,
	progress func(string)) (StepResult, error) {
	opts := []string{OptAdamW}
	for _, s := range strategies {
		opts = append(opts, StrategyOpt(s))
	}
	return MeasureSteps(b, preset, cfg, opts, opt, progress)
}

// StepLoss performs one training step, as Run does, and returns its batch loss (the trainer's
// first metric), for comparing what two backends computed.
func (t *Trainer) StepLoss() (float32, error) {
	metrics, err := t.Trainer.TrainStep(nil, t.inputs, t.labels)
	if err != nil {
		return 0, err
	}
	if len(metrics) == 0 {
		return 0, fmt.Errorf("%s: the step returned no metrics", t.Name)
	}
	loss, ok := metrics[0].Value().(float32)
	if !ok {
		return 0, fmt.Errorf("%s: the step's loss is a %s, not a float32 scalar", t.Name, metrics[0].Shape())
	}
	return loss, benchmarks.Await(metrics, nil)
}
