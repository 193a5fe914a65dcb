package optimizers

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// This file holds what the optimizers of this package (SMI, SGDMomentum, Lion and the
// ClipByGlobalNorm wrapper) share to build their update graphs.

// updateFromLoss is UpdateGraph for every optimizer here that works from gradients: it checks the
// loss is a scalar, differentiates it, and hands the gradients to opt.
func updateFromLoss(ctx *context.Context, name string, loss *Node, opt train.OptimizeWithGradients) {
	if !loss.Shape().IsScalar() {
		panicf("%s requires a scalar loss, got shape %s", name, loss.Shape())
	}
	opt.UpdateGraphWithGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss), loss.DType())
}

// trainableVariables lists the variables that ctx.BuildTrainableVariablesGradientsGraph differentiates, in the
// same order, so that gradients[i] belongs to the i-th variable returned.
func trainableVariables(ctx *context.Context, g *Graph, numGrads int, who string) []*context.Variable {
	var vars []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	if len(vars) != numGrads {
		panicf("%s: got %d gradients but the graph uses %d trainable variables -- were variables created "+
			"or marked trainable after the gradients were computed?", who, numGrads, len(vars))
	}
	return vars
}

// learningRate returns GoMLX's learning-rate variable's value in g: the value set by schedules, created from
// value (or the context's "learning_rate", or def) on first use.
func learningRate(ctx *context.Context, g *Graph, dtype dtypes.DType, value, def float64) *Node {
	if value < 0 {
		value = context.GetParamOr(ctx, gomlxopt.ParamLearningRate, def)
	}
	return gomlxopt.LearningRateVar(ctx, dtype, value).ValueGraph(g)
}

// applyStep sets v to w - step (w is v's value in the step's dtype), honouring GoMLX's clip_step_by_value and
// clip_nan hyperparameters as GoMLX's Adam does.
func applyStep(ctx *context.Context, v *context.Variable, value, w, step *Node) {
	step = gomlxopt.ClipStepByValue(ctx, step)
	updated := Sub(w, step)
	updated = gomlxopt.ClipNaNsInUpdates(ctx, w, updated)
	v.SetValueGraph(ConvertDType(updated, value.DType()))
}

// panicf reports an error while building a graph, the way GoMLX's graph-building functions do.
func panicf(format string, args ...any) {
	panic(fmt.Errorf(format, args...))
}
