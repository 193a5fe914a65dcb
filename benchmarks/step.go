package benchmarks

import (
	"fmt"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// Model is a user's model and one fixed batch to time its training step on: what GoMLX's
// train.NewTrainer takes, less the optimizer. The step's cost does not depend on the batch's
// values, so random inputs of the real shapes do.
type Model struct {
	// Fn is the model (train.ModelFn); Loss the training loss of its predictions against the
	// labels (train.LossFn, e.g. losses.MeanSquaredError).
	Fn   train.ModelFn
	Loss train.LossFn
	// Inputs and Labels are the batch every step is fed (the spec given to Fn is nil).
	Inputs, Labels []*tensors.Tensor
	// Seed seeds each step's context (its variables' initialisation), so every optimizer starts
	// from the same weights.
	Seed int64
	// Setup, when not nil, prepares each new context before the first step (hyperparameters
	// the model reads from it, say).
	Setup func(ctx *context.Context)
}

// Optimizer is a named optimizer configuration to time on a Model.
type Optimizer struct {
	Name string
	Opt  gomlxopt.Interface
}

// Step is a Model with one optimizer in a context of its own, ready to step.
type Step struct {
	Name string
	// Ctx holds the model's variables and the optimizer's state.
	Ctx *context.Context
	// Trainer is GoMLX's trainer of the step, for what this package does not time (an
	// evaluation, a distributed step).
	Trainer        *train.Trainer
	inputs, labels []*tensors.Tensor
}

// NewStep builds the training step of m with opt through GoMLX's train.Trainer, as a training
// program runs it. Nothing is compiled until the first Run. On GoMLX v0.26 call dotgrad.Enable()
// before, as a training program should: its own matrix-product gradients are many times slower,
// and they, not the optimizer, would be timed.
func NewStep(b backends.Backend, m Model, name string, opt gomlxopt.Interface) (*Step, error) {
	if m.Fn == nil || m.Loss == nil {
		return nil, fmt.Errorf("benchmarks.NewStep %s: the model needs Fn and Loss", name)
	}
	if opt == nil {
		return nil, fmt.Errorf("benchmarks.NewStep %s: no optimizer", name)
	}
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(m.Seed); err != nil {
		return nil, err
	}
	if m.Setup != nil {
		m.Setup(ctx)
	}
	return &Step{
		Name:    name,
		Ctx:     ctx,
		Trainer: train.NewTrainer(b, ctx, m.Fn, m.Loss, opt, nil, nil),
		inputs:  m.Inputs,
		labels:  m.Labels,
	}, nil
}

// Run performs one training step (forward, backward, optimizer update) and waits for it: the
// step is done once its metrics are on the host. The first call compiles.
func (s *Step) Run() error {
	return Await(s.Trainer.TrainStep(nil, s.inputs, s.labels))
}

// Case is the step as a timed case of Interleave.
func (s *Step) Case() Case { return Case{Name: s.Name, Run: s.Run} }

// Memory is the size of a step's variables, counted from its context.
type Memory struct {
	// ParamBytes: the trainable variables. StateBytes: every other variable (the optimizer's
	// moments, SMI's spectral histories, step counters, telemetry), split by top-level scope in
	// StateScopes.
	ParamBytes, StateBytes int64
	StateScopes            map[string]int64
}

// Memory counts the context's variables; after the first Run it includes the optimizer's state.
func (s *Step) Memory() Memory {
	m := Memory{StateScopes: map[string]int64{}}
	for v := range s.Ctx.IterVariables() {
		n := int64(v.Shape().Memory())
		if v.Trainable {
			m.ParamBytes += n
			continue
		}
		m.StateBytes += n
		top := strings.SplitN(strings.TrimPrefix(v.Scope(), context.ScopeSeparator), context.ScopeSeparator, 2)[0]
		m.StateScopes[top] += n
	}
	return m
}

// Finalize frees the step's executables and variables.
func (s *Step) Finalize() {
	s.Trainer.ResetComputationGraphs()
	s.Ctx.Finalize()
}

// StepTiming is one optimizer's training step as MeasureSteps timed it.
type StepTiming struct {
	// Result holds the interleaved samples; its Name is the optimizer's.
	Result
	// FirstStep is the first step alone, XLA's compilation included.
	FirstStep time.Duration
	// Memory is counted after the timed steps.
	Memory Memory
}

// MeasureSteps builds one Step of m per optimizer, runs a first step of each (compilation, timed
// on its own), then times their steps interleaved (see Interleave). progress, when not nil, gets
// a line as each step is built and compiled.
func MeasureSteps(b backends.Backend, m Model, opts []Optimizer, opt Options, progress func(string)) ([]StepTiming, error) {
	var steps []*Step
	defer func() {
		for _, s := range steps {
			s.Finalize()
		}
	}()
	out := make([]StepTiming, len(opts))
	cases := make([]Case, len(opts))
	for i, o := range opts {
		if progress != nil {
			progress(o.Name)
		}
		s, err := NewStep(b, m, o.Name, o.Opt)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
		cases[i] = s.Case()
		start := time.Now()
		if err := s.Run(); err != nil {
			return nil, fmt.Errorf("%s: first step: %w", o.Name, err)
		}
		out[i].FirstStep = time.Since(start)
		if progress != nil {
			progress(fmt.Sprintf("%s: first step (compilation included) %v", o.Name, out[i].FirstStep.Round(time.Millisecond)))
		}
	}
	results, err := Interleave(cases, opt)
	if err != nil {
		return nil, err
	}
	for i, s := range steps {
		out[i].Result = results[i]
		out[i].Memory = s.Memory()
	}
	return out, nil
}

// Comparison is a base optimizer's training step against SMI's around it, timed in the same
// rounds.
type Comparison struct {
	Base, SMI StepTiming
	// Ratio is SMI's step time over the base's, paired by round (1.05 means SMI adds 5%).
	Ratio Ratio
	// Overhead is what SMI adds to the step, paired by round.
	Overhead Diff
}

// CompareSMI times m's training step with base against the step with optimizers.SMI(base),
// interleaved. SMI starts from its defaults (optimizers.PaperDefaults("adamw")) with TotalSteps
// 1000 (the cost does not depend on it); configure, when not nil, sets what else is to be timed,
// e.g. the paper's settings for another base, HalfSpectrum or a Strategy's Configure. The names
// are "base" and "SMI(base)". Both steps use base, which must keep its state in the context, as
// GoMLX's optimizers and this module's do.
func CompareSMI(b backends.Backend, m Model, base gomlxopt.Interface, configure func(*smiopt.SMIConfig) *smiopt.SMIConfig,
	opt Options) (Comparison, error) {
	c := smiopt.SMI(base).TotalSteps(1000)
	if configure != nil {
		c = configure(c)
	}
	smi, err := c.Done()
	if err != nil {
		return Comparison{}, err
	}
	res, err := MeasureSteps(b, m, []Optimizer{{"base", base}, {"SMI(base)", smi}}, opt, nil)
	if err != nil {
		return Comparison{}, err
	}
	return Comparison{Base: res[0], SMI: res[1], Ratio: PairedRatio(res[0].Result, res[1].Result),
		Overhead: PairedDiff(res[0].Result, res[1].Result)}, nil
}

// StepOptions are Options for timing training steps: rounds until budget has passed (at least
// 5), three warm-up steps, each sample at least 200 ms of steps.
func StepOptions(budget time.Duration) Options {
	return Options{Warmup: 3, Rounds: 1000, MinSample: 200 * time.Millisecond, Budget: budget, MinRounds: 5}
}
