package optimizers

import (
	"regexp"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/spectral"
)

// smiOptimizer is a validated SMIConfig: the optimizer that builds SMI's update graph.
type smiOptimizer struct {
	base      gomlxopt.Interface
	withGrads train.OptimizeWithGradients
	cfg       spectral.Config
	exclude   []*regexp.Regexp
	filterIf  func(v *context.Variable) bool
	counting  spectral.Counting
	// batchLimit is SMIConfig.BatchLimit: 0 means DefaultBatchLimit of the graph's backend.
	batchLimit int
}

// UpdateGraph implements gomlxopt.Interface.
func (o *smiOptimizer) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	updateFromLoss(ctx, "optimizers.SMI", loss, o)
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients: per variable the spectral filter and blend,
// then the base optimizer's update with the blended gradients. Clipping, when wanted, wraps SMI
// (ClipByGlobalNorm(SMI(base), maxNorm)), so SMI filters the clipped gradients.
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
	out, groups := o.groupGradients(smiCtx.In(historyScope), g, vars, grads)
	energy := newEnergyTally(g)
	var results []groupResults
	if len(groups) > 0 {
		results = filterGroups(groups, grads, o.cfg, spectral.WithCounting(o.counting))
	}
	for gi, group := range groups {
		for j, m := range group.members {
			grad := grads[m.index]
			f, h, k, e := results[gi].slice(j, grad, m.history)
			var finite *Node
			out[m.index], finite = safeUpdate(m, grad, f, h, e, alphaFor)
			energy.add(g, finite, k, e)
		}
	}
	storeTelemetry(smiCtx, alphas[dtypes.Float32], energy.keptFraction(g))

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
