package optimizers

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train"
)

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

// stateVariable returns the non-trainable variable that holds per-variable optimizer state for v, creating it
// with zeros on first use. It lives under scopeCtx's scope followed by v's scope, so names never collide, and
// checkpoints save it with the model.
func stateVariable(scopeCtx *context.Context, v *context.Variable, suffix string, shape shapes.Shape) *context.Variable {
	path := scopeCtx.Scope()
	if v.Scope() != context.RootScope {
		path += v.Scope()
	}
	return scopeCtx.Checked(false).InAbsPath(path).
		WithInitializer(initializers.Zero).
		VariableWithShape(v.Name()+suffix, shape).
		SetTrainable(false)
}

// panicf reports an error while building a graph, the way GoMLX's graph-building functions do.
func panicf(format string, args ...any) {
	panic(fmt.Errorf(format, args...))
}

// allFinite is a boolean scalar: whether x holds no NaN or Inf (for complex x, in either part).
func allFinite(x *Node) *Node {
	if x.DType().IsComplex() {
		return LogicalAnd(LogicalAll(IsFinite(Real(x))), LogicalAll(IsFinite(Imag(x))))
	}
	return LogicalAll(IsFinite(x))
}

// updateFromLoss is UpdateGraph for every optimizer here that works from gradients: it checks the
// loss is a scalar, differentiates it, and hands the gradients to opt.
func updateFromLoss(ctx *context.Context, name string, loss *Node, opt train.OptimizeWithGradients) {
	if !loss.Shape().IsScalar() {
		panicf("%s requires a scalar loss, got shape %s", name, loss.Shape())
	}
	opt.UpdateGraphWithGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss), loss.DType())
}
