package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

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

// newOptimizer builds a named configuration with the recipe examples/shakespeare trains with
// (gpt.Optimizer): gradients clipped at the preset's global norm, SMI (if any) with the paper's
// guideline settings for that base, then the base optimizer.
func newOptimizer(name string, cfg gpt.Config) (gomlxopt.Interface, error) {
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
		return strategy.configure(c.SetConfig(sc).HalfSpectrum(half))
	})
}

// Trainer is one model + optimizer ready to step on a fixed random batch.
type Trainer struct {
	Name    string
	Ctx     *context.Context
	trainer *train.Trainer
	inputs  []*tensors.Tensor
	labels  []*tensors.Tensor
}

// NewTrainer builds the GPT of cfg with the named optimizer, through GoMLX's train.Trainer as
// examples/shakespeare uses it. The batch is random tokens: the step's cost does not depend on
// the data.
func NewTrainer(b backends.Backend, cfg gpt.Config, optName string, seed uint64) (*Trainer, error) {
	// GoMLX v0.26's own product gradients are many times slower on XLA CPU (package dotgrad);
	// without this the base step, not SMI, would be what is measured.
	dotgrad.Enable()
	opt, err := newOptimizer(optName, cfg)
	if err != nil {
		return nil, err
	}
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(int64(seed)); err != nil {
		return nil, err
	}
	modelFn := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{gpt.Logits(ctx, cfg, inputs[0])}
	}
	lossFn := func(labels, predictions []*Node) *Node { return gpt.Loss(predictions[0], labels[0]) }
	rng := rand.New(rand.NewPCG(seed, 1))
	batch := func() *tensors.Tensor { return randomTokens(rng, cfg) }
	return &Trainer{
		Name:    optName,
		Ctx:     ctx,
		trainer: train.NewTrainer(b, ctx, modelFn, lossFn, opt, nil, nil),
		inputs:  []*tensors.Tensor{batch()},
		labels:  []*tensors.Tensor{batch()},
	}, nil
}

// Step runs one training step (forward, backward, optimizer update) and waits for it.
func (t *Trainer) Step() error {
	return finalizeMetrics(t.trainer.TrainStep(nil, t.inputs, t.labels))
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

// finalizeMetrics waits for (and frees) a training step's metrics, which is what makes the
// step's time measurable: the step is done once its results are on the host.
func finalizeMetrics(metrics []*tensors.Tensor, err error) error {
	if err != nil {
		return err
	}
	for _, m := range metrics {
		if err := m.FinalizeAll(); err != nil {
			return err
		}
	}
	return nil
}

// Finalize frees the trainer's executables and variables.
func (t *Trainer) Finalize() {
	t.trainer.ResetComputationGraphs()
	t.Ctx.Finalize()
}

// StateBytes counts the context's variables after a step: trainable parameters and optimizer
// state (every non-trainable variable: moments, spectral histories, step counters, telemetry).
// byScope splits the state by its top-level scope.
func (t *Trainer) StateBytes() (params, state int64, byScope map[string]int64) {
	byScope = map[string]int64{}
	for v := range t.Ctx.IterVariables() {
		n := int64(v.Shape().Memory())
		if v.Trainable {
			params += n
			continue
		}
		state += n
		top := strings.SplitN(strings.TrimPrefix(v.Scope(), context.ScopeSeparator), context.ScopeSeparator, 2)[0]
		byScope[top] += n
	}
	return params, state, byScope
}

// StepResult is the step benchmark of one preset.
type StepResult struct {
	Preset string
	Config gpt.Config
	Params int64 // trainable parameters (elements)
	// Shapes of the trainable variables (all filtered: the GPT has no scalars).
	Shapes  []ModelShape
	Results []Result
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
func (r StepResult) Time(opt string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == opt {
			return res, true
		}
	}
	return Result{}, false
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

// MeasureSteps builds one trainer per configuration for the preset, counts their state after
// warm-up and times their steps interleaved.
func MeasureSteps(b backends.Backend, preset string, cfg gpt.Config, opts []string, opt Options, progress func(string)) (StepResult, error) {
	res := StepResult{Preset: preset, Config: cfg}
	var trainers []*Trainer
	defer func() {
		for _, t := range trainers {
			t.Finalize()
		}
	}()
	var cases []Case
	for _, name := range opts {
		if progress != nil {
			progress(fmt.Sprintf("step %s: %s", preset, name))
		}
		t, err := NewTrainer(b, cfg, name, 1)
		if err != nil {
			return res, fmt.Errorf("%s %s: %w", preset, name, err)
		}
		trainers = append(trainers, t)
		cases = append(cases, Case{Name: name, Run: t.Step})
		// The first step compiles: timed on its own, so a report can tell compilation (seconds on
		// a GPU) from stepping.
		start := time.Now()
		if err := t.Step(); err != nil {
			return res, fmt.Errorf("%s %s: first step: %w", preset, name, err)
		}
		if progress != nil {
			progress(fmt.Sprintf("step %s: %s: first step (compilation included) %s", preset, name, HumanDuration(time.Since(start))))
		}
	}
	results, err := Interleave(cases, opt)
	if err != nil {
		return res, err
	}
	res.Results = results
	res.Shapes = trainableShapes(trainers[0].Ctx)
	for _, t := range trainers {
		p, s, scopes := t.StateBytes()
		res.Params = p / 4
		res.Memory = append(res.Memory, MemoryResult{Opt: t.Name, ParamBytes: p, StateBytes: s, StateScopes: scopes})
	}
	return res, nil
}

func trainableShapes(ctx *context.Context) []ModelShape {
	var out []ModelShape
	index := map[string]int{}
	for v := range ctx.IterVariables() {
		if !v.Trainable {
			continue
		}
		dims := v.Shape().Dimensions
		key := fmt.Sprint(dims)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, ModelShape{Dims: slices.Clone(dims)})
		}
		out[i].Count++
		out[i].Names = append(out[i].Names, v.ScopeAndName())
	}
	return out
}

// ModelShape is one distinct variable shape of a model and how many variables have it.
type ModelShape struct {
	Dims  []int
	Count int
	Names []string
}

// ModelShapes lists the variable shapes of the GPT for cfg, by building (not running) its
// graph, so any size can be listed without allocating its weights.
func ModelShapes(b backends.Backend, cfg gpt.Config) (shapesOut []ModelShape, params int64, err error) {
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
	shapesOut = trainableShapes(ctx)
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
