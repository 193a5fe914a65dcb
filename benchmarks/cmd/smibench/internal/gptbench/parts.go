package gptbench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/benchmarks"
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
	PartMaterialized = OptAdamW + " step, dotgrad's materialized form"
	PartTorchForward = "PyTorch forward"
	PartTorchBack    = "PyTorch forward+backward"
	PartTorchStep    = "PyTorch AdamW step"
)

// PartsResult is the training step split into parts, for one preset.
type PartsResult struct {
	Preset  string
	Config  gpt.Config
	Results []benchmarks.Result
	Torch   *TorchInfo // nil: PyTorch's side was not measured
	// Products: the dense layers' matrix products timed alone (nil: not measured).
	Products *ProductsResult
}

// Time of a case.
func (r PartsResult) Time(name string) (benchmarks.Result, bool) {
	i := slices.IndexFunc(r.Results, func(res benchmarks.Result) bool { return res.Name == name })
	if i < 0 {
		return benchmarks.Result{}, false
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
	return func() error { return benchmarks.Await(exec.Exec(tokens, targets)) }, nil
}

// MeasureParts times the cases of the step-parts benchmark interleaved. gomlxGrads adds the
// AdamW step compiled with GoMLX's own product gradients (package dotgrad disabled while it
// compiles); the AdamW step compiled in dotgrad's Materialized form is always added (unless that
// is the current form); torch, when not nil, adds PyTorch's cases.
func MeasureParts(b backends.Backend, preset string, cfg gpt.Config, gomlxGrads bool, torch *Torch, opt benchmarks.Options, progress func(string)) (PartsResult, error) {
	res := PartsResult{Preset: preset, Config: cfg}
	var cases []benchmarks.Case
	for _, grads := range []bool{false, true} {
		run, err := lossExec(b, cfg, grads)
		if err != nil {
			return res, fmt.Errorf("parts %s: %w", preset, err)
		}
		name := PartForward
		if grads {
			name = PartBackward
		}
		cases = append(cases, benchmarks.Case{Name: name, Run: run})
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
		cases = append(cases, benchmarks.Case{Name: name + " step", Run: t.Run})
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
		err = t.Run() // compiles with GoMLX's gradients; later calls reuse the executable
		dotgrad.Enable()
		if err != nil {
			return res, fmt.Errorf("parts %s: %s: %w", preset, PartGoMLXGrads, err)
		}
		cases = append(cases, benchmarks.Case{Name: PartGoMLXGrads, Run: t.Run})
	}
	if dotgrad.CurrentForm() != dotgrad.Materialized {
		if progress != nil {
			progress(fmt.Sprintf("parts %s: compiling the step with dotgrad's %s form", preset, dotgrad.Materialized))
		}
		t, err := NewTrainer(b, cfg, OptAdamW, 1)
		if err != nil {
			return res, err
		}
		trainers = append(trainers, t)
		if err := withForm(dotgrad.Materialized, t.Run); err != nil { // compiles; later calls reuse it
			return res, fmt.Errorf("parts %s: %s: %w", preset, PartMaterialized, err)
		}
		cases = append(cases, benchmarks.Case{Name: PartMaterialized, Run: t.Run})
	}
	if torch != nil {
		res.Torch = &torch.Info
		for _, c := range []struct{ name, request string }{
			{PartTorchForward, "forward"}, {PartTorchBack, "backward"}, {PartTorchStep, "step"},
		} {
			cases = append(cases, benchmarks.Case{Name: c.name, Timed: func() (time.Duration, error) { return torch.Call(c.request) }})
		}
	}
	if progress != nil {
		progress(fmt.Sprintf("parts %s: timing %d cases", preset, len(cases)))
	}
	results, err := benchmarks.Interleave(cases, opt)
	if err != nil {
		return res, err
	}
	res.Results = results
	return res, nil
}

// StepPart is one part of the training step: its time (a paired difference of two cases, or a
// case itself) for ours and, when measured, PyTorch's.
type StepPart struct {
	Name        string
	Ours, Torch benchmarks.Diff
}

// StepParts splits the step: forward; backward = forward+backward - forward; optimizer (global-
// norm clip and AdamW) = AdamW step - forward+backward; SMI = SMI(AdamW) step - AdamW step;
// and the whole AdamW step.
func StepParts(r PartsResult) []StepPart {
	get := func(name string) benchmarks.Result { res, _ := r.Time(name); return res }
	whole := func(res benchmarks.Result) benchmarks.Diff {
		return benchmarks.PairedDiff(benchmarks.Result{Samples: make([]time.Duration, len(res.Samples))}, res)
	}
	parts := []StepPart{
		{Name: "forward", Ours: whole(get(PartForward)), Torch: whole(get(PartTorchForward))},
		{Name: "backward", Ours: benchmarks.PairedDiff(get(PartForward), get(PartBackward)), Torch: benchmarks.PairedDiff(get(PartTorchForward), get(PartTorchBack))},
		{Name: "optimizer", Ours: benchmarks.PairedDiff(get(PartBackward), get(PartStep)), Torch: benchmarks.PairedDiff(get(PartTorchBack), get(PartTorchStep))},
		{Name: "SMI", Ours: benchmarks.PairedDiff(get(PartStep), get(PartSMIStep))},
		{Name: "step", Ours: whole(get(PartStep)), Torch: whole(get(PartTorchStep))},
	}
	return parts
}
