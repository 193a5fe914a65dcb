package optimizers

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

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

// upgradeFullHistory converts v's spectral history saved by an earlier version of this package,
// which stored the full-spectrum history on the whole n x d grid, to the real-FFT bins stored now
// (want: n x (d/2+1)). The full history is the same at k and -k, so its first d/2+1 columns hold
// all of it and the conversion is exact: a checkpoint from before the change resumes unchanged.
// Histories already of shape want, and variables that do not exist, are left alone.
func upgradeFullHistory(scopeCtx *context.Context, v *context.Variable, want shapes.Shape) {
	path := scopeCtx.Scope()
	if v.Scope() != context.RootScope {
		path += v.Scope()
	}
	h := scopeCtx.GetVariableByScopeAndName(path, v.Name()) // Loads it from a checkpoint if one is attached.
	if h == nil || h.Shape().Equal(want) {
		return
	}
	n, bins := want.Dim(0), want.Dim(1)
	old := h.Shape()
	if old.DType != want.DType || old.Rank() != 2 || old.Dim(0) != n || old.Dim(1)/2+1 != bins {
		panicf("SMI: the spectral history %s/%s has shape %s, want %s for variable %s/%s (a checkpoint of another model?)",
			path, v.Name(), old, want, v.Scope(), v.Name())
	}
	value, err := h.Value()
	if err != nil {
		panicf("SMI: reading the spectral history %s/%s: %v", path, v.Name(), err)
	}
	var upgraded *tensors.Tensor
	switch want.DType {
	case dtypes.Float64:
		upgraded = tensors.FromFlatDataAndDimensions(firstColumns(tensors.MustCopyFlatData[float64](value), n, old.Dim(1), bins), n, bins)
	default:
		upgraded = tensors.FromFlatDataAndDimensions(firstColumns(tensors.MustCopyFlatData[float32](value), n, old.Dim(1), bins), n, bins)
	}
	if err := h.SetValue(upgraded); err != nil {
		panicf("SMI: converting the spectral history %s/%s: %v", path, v.Name(), err)
	}
}

// firstColumns returns the first cols columns of the row-major n x d matrix x.
func firstColumns[T any](x []T, n, d, cols int) []T {
	out := make([]T, 0, n*cols)
	for i := range n {
		out = append(out, x[i*d:i*d+cols]...)
	}
	return out
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
