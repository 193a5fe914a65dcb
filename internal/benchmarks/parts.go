package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// The cases of the step-parts benchmark. Ours: the GPT's loss (forward), the loss and every
// trainable variable's gradient (forward+backward; the gradients reduced to their global norm,
// which clipping computes anyway, so none is left out), and whole training steps as in
// MeasureSteps. PyTorch's: nanoGPT's model and AdamW at the same size, in a separate process.
const (
	PartForward      = "forward"
	PartBackward     = "forward+backward"
	PartStep         = OptAdamW + " step"
	PartSMIStep      = OptSMIAdamW + " step"
	PartGoMLXGrads   = OptAdamW + " step, GoMLX's own product gradients"
	PartTorchForward = "PyTorch forward"
	PartTorchBack    = "PyTorch forward+backward"
	PartTorchStep    = "PyTorch AdamW step"
)

// PartsResult is the training step split into parts, for one preset.
type PartsResult struct {
	Preset  string
	Config  gpt.Config
	Results []Result
	Torch   *TorchInfo // nil: PyTorch's side was not measured
	// Products: the dense layers' matrix products timed alone (nil: not measured).
	Products *ProductsResult
}

// Time of a case.
func (r PartsResult) Time(name string) (Result, bool) {
	i := slices.IndexFunc(r.Results, func(res Result) bool { return res.Name == name })
	if i < 0 {
		return Result{}, false
	}
	return r.Results[i], true
}

// lossExec compiles the GPT's training loss on a fixed batch; with gradients it also computes
// the gradient of every trainable variable and returns their global norm.
func lossExec(b backends.Backend, cfg gpt.Config, gradients bool) (func() error, error) {
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(1); err != nil {
		return nil, err
	}
	exec, err := context.NewExec(b, ctx, func(ctx *context.Context, tokens, targets *Node) []*Node {
		ctx.SetTraining(tokens.Graph(), true)
		loss := gpt.Loss(gpt.Logits(ctx, cfg, tokens), targets)
		if !gradients {
			return []*Node{loss}
		}
		var sum *Node
		for _, g := range ctx.BuildTrainableVariablesGradientsGraph(loss) {
			s := ReduceAllSum(Square(g))
			if sum == nil {
				sum = s
			} else {
				sum = Add(sum, s)
			}
		}
		return []*Node{loss, Sqrt(sum)}
	})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tokens, targets := randomTokens(rng, cfg), randomTokens(rng, cfg)
	return func() error { return finalizeMetrics(exec.Exec(tokens, targets)) }, nil
}

// MeasureParts times the cases of the step-parts benchmark interleaved. gomlxGrads adds the
// AdamW step compiled with GoMLX's own product gradients (package dotgrad disabled while it
// compiles); torch, when not nil, adds PyTorch's cases.
func MeasureParts(b backends.Backend, preset string, cfg gpt.Config, gomlxGrads bool, torch *Torch, opt Options, progress func(string)) (PartsResult, error) {
	res := PartsResult{Preset: preset, Config: cfg}
	var cases []Case
	for _, grads := range []bool{false, true} {
		run, err := lossExec(b, cfg, grads)
		if err != nil {
			return res, fmt.Errorf("parts %s: %w", preset, err)
		}
		name := PartForward
		if grads {
			name = PartBackward
		}
		cases = append(cases, Case{Name: name, Run: run})
	}
	var trainers []*Trainer
	defer func() {
		for _, t := range trainers {
			t.Finalize()
		}
	}()
	for _, name := range []string{OptAdamW, OptSMIAdamW} {
		t, err := NewTrainer(b, cfg, name, 1)
		if err != nil {
			return res, fmt.Errorf("parts %s %s: %w", preset, name, err)
		}
		trainers = append(trainers, t)
		cases = append(cases, Case{Name: name + " step", Run: t.Step})
	}
	if gomlxGrads {
		if progress != nil {
			progress(fmt.Sprintf("parts %s: compiling the step with GoMLX's own product gradients", preset))
		}
		t, err := NewTrainer(b, cfg, OptAdamW, 1)
		if err != nil {
			return res, err
		}
		trainers = append(trainers, t)
		dotgrad.Disable()
		err = t.Step() // compiles with GoMLX's gradients; later calls reuse the executable
		dotgrad.Enable()
		if err != nil {
			return res, fmt.Errorf("parts %s: %s: %w", preset, PartGoMLXGrads, err)
		}
		cases = append(cases, Case{Name: PartGoMLXGrads, Run: t.Step})
	}
	if torch != nil {
		res.Torch = &torch.Info
		for _, c := range []struct{ name, request string }{
			{PartTorchForward, "forward"}, {PartTorchBack, "backward"}, {PartTorchStep, "step"},
		} {
			cases = append(cases, Case{Name: c.name, Timed: func() (time.Duration, error) { return torch.Call(c.request) }})
		}
	}
	if progress != nil {
		progress(fmt.Sprintf("parts %s: timing %d cases", preset, len(cases)))
	}
	results, err := Interleave(cases, opt)
	if err != nil {
		return res, err
	}
	res.Results = results
	return res, nil
}

// Diff summarises the paired per-round differences b - a of two results taken in the same
// rounds, with the distribution-free interval of PairedRatio.
type Diff struct {
	Median, Lo, Hi time.Duration
	N              int
}

// PairedDiff returns b - a round by round.
func PairedDiff(a, b Result) Diff {
	n := min(len(a.Samples), len(b.Samples))
	if n == 0 {
		return Diff{}
	}
	ds := make([]float64, n)
	for i := range n {
		ds[i] = float64(b.Samples[i] - a.Samples[i])
	}
	slices.Sort(ds)
	lo, hi := medianCIRanks(n)
	return Diff{Median: time.Duration(quantileSorted(ds, 0.5)), Lo: time.Duration(ds[lo]), Hi: time.Duration(ds[hi]), N: n}
}

// StepPart is one part of the training step: its time (a paired difference of two cases, or a
// case itself) for ours and, when measured, PyTorch's.
type StepPart struct {
	Name        string
	Ours, Torch Diff
}

// StepParts splits the step: forward; backward = forward+backward - forward; optimizer (global-
// norm clip and AdamW) = AdamW step - forward+backward; SMI = SMI(AdamW) step - AdamW step;
// and the whole AdamW step.
func StepParts(r PartsResult) []StepPart {
	get := func(name string) Result { res, _ := r.Time(name); return res }
	whole := func(res Result) Diff {
		return PairedDiff(Result{Samples: make([]time.Duration, len(res.Samples))}, res)
	}
	parts := []StepPart{
		{Name: "forward", Ours: whole(get(PartForward)), Torch: whole(get(PartTorchForward))},
		{Name: "backward", Ours: PairedDiff(get(PartForward), get(PartBackward)), Torch: PairedDiff(get(PartTorchForward), get(PartTorchBack))},
		{Name: "optimizer", Ours: PairedDiff(get(PartBackward), get(PartStep)), Torch: PairedDiff(get(PartTorchBack), get(PartTorchStep))},
		{Name: "SMI", Ours: PairedDiff(get(PartStep), get(PartSMIStep))},
		{Name: "step", Ours: whole(get(PartStep)), Torch: whole(get(PartTorchStep))},
	}
	return parts
}
