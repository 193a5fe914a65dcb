package gpt

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// WithGradients is an optimizer that accepts precomputed gradients (GoMLX's train.Trainer
// convention for gradient accumulation); gradient filters and clipping wrap such optimizers.
type WithGradients interface {
	optimizers.Interface
	UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType)
}

// ClipGlobalNorm scales all gradients by min(1, maxNorm/(norm+1e-6)), as
// torch.nn.utils.clip_grad_norm_, before handing them to base.
func ClipGlobalNorm(base WithGradients, maxNorm float64) WithGradients {
	return &clipped{base: base, maxNorm: maxNorm}
}

type clipped struct {
	base    WithGradients
	maxNorm float64
}

func (c *clipped) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	c.UpdateGraphWithGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss), loss.DType())
}

func (c *clipped) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType) {
	if c.maxNorm > 0 {
		sumSq := ReduceAllSum(Square(grads[0]))
		for _, grad := range grads[1:] {
			sumSq = Add(sumSq, ReduceAllSum(Square(grad)))
		}
		scale := Min(OnesLike(sumSq), MulScalar(Inverse(AddScalar(Sqrt(sumSq), 1e-6)), c.maxNorm))
		clippedGrads := make([]*Node, len(grads))
		for i, grad := range grads {
			clippedGrads[i] = Mul(grad, scale)
		}
		grads = clippedGrads
	}
	c.base.UpdateGraphWithGradients(ctx, grads, lossDType)
}

func (c *clipped) Clear(ctx *context.Context) error { return c.base.Clear(ctx) }
