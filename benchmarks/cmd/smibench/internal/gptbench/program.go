package gptbench

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// Program counts what one named configuration's training step gives XLA after the loss (the
// backward pass, the clipping and the optimizer's update), by kind of graph node. XLA fuses
// elementwise nodes into few kernels; on a GPU every FFT and every scatter is a kernel of its own,
// and every reduction about one (XLA may fuse sibling reductions into one kernel, or split a very
// long one in two).
type Program struct {
	Name       string
	Nodes      int // All nodes after the loss.
	FFTs       int
	Scatters   int // ScatterSum, ScatterMax, ScatterMin, ...
	Reductions int // ReduceSum, ReduceMin, ReduceLogicalAnd, ..., ArgMinMax
	Gathers    int
}

// StepProgram builds (does not compile or run) the training step of the GPT of cfg with the named
// configuration (NewOptimizer's names) on b, and counts its nodes after the loss. The counts depend
// on b only through SMI's choices by platform (its defaults: spectral.CountingFor and
// optimizers.DefaultBatchLimit), which a strategy's name fixes.
func StepProgram(b backends.Backend, cfg gpt.Config, optName string) (p Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s program: %v", optName, r)
		}
	}()
	dotgrad.Enable() // As NewTrainer: the backward pass's products are dotgrad's.
	opt, err := NewOptimizer(optName, cfg)
	if err != nil {
		return Program{}, err
	}
	ctx := context.New()
	g := NewGraph(b, "program")
	defer g.Finalize()
	tokens := Parameter(g, "tokens", shapes.Make(dtypes.Int32, cfg.BatchSize, cfg.BlockSize))
	targets := Parameter(g, "targets", shapes.Make(dtypes.Int32, cfg.BatchSize, cfg.BlockSize))
	ctx.SetTraining(g, true)
	loss := gpt.Loss(gpt.Logits(ctx, cfg, tokens), targets)
	before := len(g.Nodes())
	opt.UpdateGraph(ctx, g, loss)
	p.Name = optName
	for _, n := range g.Nodes()[before:] {
		p.Nodes++
		switch kind := n.Type().String(); {
		case n.Type() == NodeTypeFFT:
			p.FFTs++
		case n.Type() == NodeTypeGather:
			p.Gathers++
		case strings.HasPrefix(kind, "Scatter"):
			p.Scatters++
		case strings.HasPrefix(kind, "Reduce") || n.Type() == NodeTypeArgMinMax:
			p.Reductions++
		}
	}
	return p, nil
}
