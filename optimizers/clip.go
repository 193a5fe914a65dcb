package optimizers

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// clipEpsilon is PyTorch's clip_grad_norm_ epsilon, so clipping matches nanoGPT's.
const clipEpsilon = 1e-6

// ClipByGlobalNorm wraps base so that the gradients of all trainable variables are scaled together, before
// base sees them, by min(1, maxNorm/(norm+1e-6)), where norm is the L2 norm of all gradients concatenated
// (PyTorch's torch.nn.utils.clip_grad_norm_, as nanoGPT and the paper use at 1.0). maxNorm 0 returns base
// unchanged; a negative, NaN or infinite maxNorm panics when the graph is built. A nil base panics at
// once, with a message that says so (there is nothing to wrap).
//
// Non-finite gradients: a variable whose gradient holds a NaN or Inf is left out of the norm and passed on
// unscaled, so one bad variable does not turn every other gradient into NaN (PyTorch would).
//
// Non-float variables: the gradients of integer and boolean trainable variables are left out of the norm
// and passed on unscaled, as SMI leaves them unfiltered (what becomes of them is the base's business:
// SGDMomentum and Lion leave such variables unchanged). Complex gradients count with their modulus. On
// the path for bases without OptimizeWithGradients (see below) the base differentiates the scaled loss
// itself, so there only the norm leaves them out.
//
// When base implements train.OptimizeWithGradients (GoMLX's SGD and Adam family, SGDMomentum, Lion, SMI), so
// does the result, and gradient accumulation works. Otherwise the wrapper scales the loss by the clipping
// factor (held constant for differentiation), which gives base the clipped gradients at the cost of
// differentiating twice.
func ClipByGlobalNorm(base gomlxopt.Interface, maxNorm float64) gomlxopt.Interface {
	if base == nil {
		panicf("optimizers.ClipByGlobalNorm: the base optimizer is nil: wrap an optimizer, e.g. ClipByGlobalNorm(optimizers.Adam().Done(), 1)")
	}
	if maxNorm == 0 {
		return base
	}
	if withGrads, ok := base.(train.OptimizeWithGradients); ok {
		return &clipWithGradients{clipByLoss{base: base, maxNorm: maxNorm}, withGrads}
	}
	return &clipByLoss{base: base, maxNorm: maxNorm}
}

type clipByLoss struct {
	base    gomlxopt.Interface
	maxNorm float64
}

// UpdateGraph implements gomlxopt.Interface.
func (c *clipByLoss) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	if !loss.Shape().IsScalar() {
		panicf("optimizers.ClipByGlobalNorm requires a scalar loss, got shape %s", loss.Shape())
	}
	grads := ctx.BuildTrainableVariablesGradientsGraph(loss)
	if countClippable(grads) == 0 {
		c.base.UpdateGraph(ctx, g, loss)
		return
	}
	scale := clipScale(grads, c.maxNorm)
	c.base.UpdateGraph(ctx, g, Mul(loss, StopGradient(ConvertDType(scale, loss.DType()))))
}

// Clear implements gomlxopt.Interface.
func (c *clipByLoss) Clear(ctx *context.Context) error { return c.base.Clear(ctx) }

type clipWithGradients struct {
	clipByLoss
	withGrads train.OptimizeWithGradients
}

// UpdateGraph implements gomlxopt.Interface.
func (c *clipWithGradients) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	updateFromLoss(ctx, "optimizers.ClipByGlobalNorm", loss, c)
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients.
func (c *clipWithGradients) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType) {
	c.withGrads.UpdateGraphWithGradients(ctx, ClipGradientsByGlobalNorm(grads, c.maxNorm), lossDType)
}

// ClipGradientsByGlobalNorm is the graph function behind ClipByGlobalNorm: it returns grads scaled by
// min(1, maxNorm/(norm+1e-6)), with the same rules for non-finite and non-float gradients. nil gradients
// stay nil.
func ClipGradientsByGlobalNorm(grads []*Node, maxNorm float64) []*Node {
	if !(maxNorm > 0) || math.IsInf(maxNorm, 0) {
		panicf("optimizers.ClipByGlobalNorm: maxNorm must be finite and > 0, got %g", maxNorm)
	}
	if countClippable(grads) == 0 {
		return grads
	}
	scale := clipScale(grads, maxNorm)
	out := make([]*Node, len(grads))
	for i, grad := range grads {
		if !clippable(grad) {
			out[i] = grad
			continue
		}
		scaled := Mul(grad, ConvertDType(scale, grad.DType()))
		out[i] = Where(allFinite(grad), scaled, grad)
	}
	return out
}

// clipScale returns min(1, maxNorm/(norm+eps)) as a scalar of the accumulation dtype (float64 if any gradient
// is float64, else float32), with the norm taken over the finite float and complex gradients only. At
// least one gradient must be clippable.
func clipScale(grads []*Node, maxNorm float64) *Node {
	accDType := dtypes.Float32
	var g *Graph
	for _, grad := range grads {
		if !clippable(grad) {
			continue
		}
		g = grad.Graph()
		if grad.DType() == dtypes.Float64 || grad.DType() == dtypes.Complex128 {
			accDType = dtypes.Float64
		}
	}
	sumSq := ScalarZero(g, accDType)
	for _, grad := range grads {
		if !clippable(grad) {
			continue
		}
		x := grad
		if x.DType().IsComplex() {
			x = Abs(x)
		}
		sq := ReduceAllSum(Square(ConvertDType(x, accDType)))
		sumSq = Add(sumSq, Where(allFinite(grad), sq, ZerosLike(sq)))
	}
	norm := Sqrt(sumSq)
	return MinScalar(Div(Scalar(g, accDType, maxNorm), AddScalar(norm, clipEpsilon)), 1)
}

// clippable reports whether grad takes part in the clipping: not nil, and float or complex.
func clippable(grad *Node) bool {
	return grad != nil && (grad.DType().IsFloat() || grad.DType().IsComplex())
}

func countClippable(grads []*Node) int {
	n := 0
	for _, grad := range grads {
		if clippable(grad) {
			n++
		}
	}
	return n
}

// allFinite is a boolean scalar: whether x holds no NaN or Inf (for complex x, in either part).
func allFinite(x *Node) *Node {
	if x.DType().IsComplex() {
		return LogicalAnd(LogicalAll(IsFinite(Real(x))), LogicalAll(IsFinite(Imag(x))))
	}
	return LogicalAll(IsFinite(x))
}
