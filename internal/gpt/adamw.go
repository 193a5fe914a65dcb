package gpt

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// AdamW is PyTorch's AdamW as nanoGPT configures it: decoupled weight decay only on parameters
// with two or more axes (matrices and embeddings, not LayerNorm gains), eps 1e-8, and nanoGPT's
// learning-rate schedule (linear warm-up, cosine decay to MinLR). GoMLX's own Adam decays every
// variable, hence this small optimizer. It also takes precomputed gradients
// (train.OptimizeWithGradients), so SMI and gradient clipping can wrap it.
func AdamW(cfg Config) optimizers.Interface { return &adamW{cfg: cfg} }

type adamW struct{ cfg Config }

const adamScope = "AdamW"

// LearningRateAt is nanoGPT's get_lr(it) for the 0-based iteration it.
func (c Config) LearningRateAt(it int) float64 {
	switch {
	case it < c.WarmupIters:
		return c.LearningRate * float64(it+1) / float64(c.WarmupIters+1)
	case it > c.LRDecayIters:
		return c.MinLR
	}
	ratio := 0.0
	if c.LRDecayIters > c.WarmupIters {
		ratio = float64(it-c.WarmupIters) / float64(c.LRDecayIters-c.WarmupIters)
	}
	return c.MinLR + 0.5*(1+math.Cos(math.Pi*ratio))*(c.LearningRate-c.MinLR)
}

// learningRateGraph is LearningRateAt in the graph, for the 0-based iteration it (float32).
func learningRateGraph(c Config, it *Node) *Node {
	g := it.Graph()
	warm := MulScalar(AddScalar(it, 1), c.LearningRate/float64(c.WarmupIters+1))
	span := math.Max(float64(c.LRDecayIters-c.WarmupIters), 1)
	ratio := ClipScalar(DivScalar(AddScalar(it, -float64(c.WarmupIters)), span), 0, 1)
	cosine := AddScalar(MulScalar(OnePlus(Cos(MulScalar(ratio, math.Pi))), 0.5*(c.LearningRate-c.MinLR)), c.MinLR)
	return Where(LessThan(it, Scalar(g, it.DType(), c.WarmupIters)), warm, cosine)
}

func (o *adamW) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	o.UpdateGraphWithGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss), loss.DType())
}

// UpdateGraphWithGradients applies one AdamW step given the gradients of the trainable
// variables, in ctx.IterVariables order (GoMLX's convention, which gradient filters keep).
func (o *adamW) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, _ dtypes.DType) {
	c := o.cfg
	g := grads[0].Graph()
	step := optimizers.IncrementGlobalStepGraph(ctx, g, dtypes.Float32) // 1 on the first update
	lr := learningRateGraph(c, AddScalar(step, -1))
	optimizers.LearningRateVar(ctx, dtypes.Float32, c.LearningRate).SetValueGraph(lr) // for logging
	// Bias corrections 1 - beta^t.
	bc1 := OneMinus(Pow(Scalar(g, dtypes.Float32, c.Beta1), step))
	bc2 := OneMinus(Pow(Scalar(g, dtypes.Float32, c.Beta2), step))

	i := 0
	for v := range ctx.IterVariables() {
		if !v.Trainable || !v.InUseByGraph(g) {
			continue
		}
		if i >= len(grads) {
			panic(fmt.Errorf("gpt.AdamW: more trainable variables than the %d gradients given", len(grads)))
		}
		grad := grads[i]
		i++
		mScope := ctx.Checked(false).InAbsPath(context.ScopeSeparator + adamScope + v.Scope())
		m1Var := mScope.WithInitializer(initializers.Zero).VariableWithShape(v.Name()+"_m", v.Shape()).SetTrainable(false)
		m2Var := mScope.WithInitializer(initializers.Zero).VariableWithShape(v.Name()+"_v", v.Shape()).SetTrainable(false)
		m1 := Add(MulScalar(m1Var.ValueGraph(g), c.Beta1), MulScalar(grad, 1-c.Beta1))
		m2 := Add(MulScalar(m2Var.ValueGraph(g), c.Beta2), MulScalar(Square(grad), 1-c.Beta2))
		m1Var.SetValueGraph(m1)
		m2Var.SetValueGraph(m2)

		w := v.ValueGraph(g)
		if c.WeightDecay > 0 && v.Shape().Rank() >= 2 {
			w = Mul(w, OneMinus(MulScalar(lr, c.WeightDecay))) // decoupled, as torch.optim.AdamW
		}
		denom := AddScalar(Sqrt(Div(m2, bc2)), 1e-8)
		v.SetValueGraph(Sub(w, Div(Mul(lr, Div(m1, bc1)), denom)))
	}
	if i != len(grads) {
		panic(fmt.Errorf("gpt.AdamW: %d gradients for %d trainable variables", len(grads), i))
	}
}

func (o *adamW) Clear(ctx *context.Context) error {
	return ctx.InAbsPath(context.ScopeSeparator + adamScope).DeleteVariablesInScope()
}
