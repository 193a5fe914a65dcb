package optimizers

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// plainSGD is w -= g: GoMLX's SGD with learning rate 1 and no decay, so a variable's change is its gradient.
func plainSGD() gomlxopt.Interface {
	return gomlxopt.StochasticGradientDescent().WithDecay(false).WithLearningRate(1)
}

// lossOnly hides UpdateGraphWithGradients, to test the wrapper's path for optimizers without it.
type lossOnly struct{ gomlxopt.Interface }

func (o lossOnly) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	o.Interface.UpdateGraph(ctx, g, loss)
}

// TestClipByGlobalNorm: gradients [3, 4] and [0, 12] have global norm 13.
func TestClipByGlobalNorm(t *testing.T) {
	g0, g1 := []float32{3, 4}, []float32{0, 12}
	scale := 1 / (13 + clipEpsilon)
	for _, tc := range []struct {
		name    string
		base    gomlxopt.Interface
		maxNorm float64
		want0   []float64
		want1   []float64
	}{
		{"clipped", plainSGD(), 1, []float64{-3 * scale, -4 * scale}, []float64{0, -12 * scale}},
		{"clipped by loss", lossOnly{plainSGD()}, 1, []float64{-3 * scale, -4 * scale}, []float64{0, -12 * scale}},
		{"under the limit", plainSGD(), 100, []float64{-3, -4}, []float64{0, -12}},
		{"off", plainSGD(), 0, []float64{-3, -4}, []float64{0, -12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := ClipByGlobalNorm(tc.base, tc.maxNorm)
			_, withGrads := opt.(train.OptimizeWithGradients)
			_, baseWithGrads := tc.base.(train.OptimizeWithGradients)
			require.Equal(t, baseWithGrads, withGrads, "implements OptimizeWithGradients exactly when base does")
			p := newLinearProblem(t, nil, opt, []float32{0, 0}, []float32{0, 0})
			p.step(t, g0, g1)
			assertClose(t, tc.want0, p.value(t, 0), 1e-6)
			assertClose(t, tc.want1, p.value(t, 1), 1e-6)
		})
	}
}

// TestClipByGlobalNormNonFinite: a NaN gradient is left out of the norm and passed on unscaled; the finite
// gradient [3, 4] is clipped by its own norm 5.
func TestClipByGlobalNormNonFinite(t *testing.T) {
	p := newLinearProblem(t, nil, ClipByGlobalNorm(plainSGD(), 1), []float32{0, 0}, []float32{0, 0})
	p.step(t, []float32{3, 4}, []float32{float32(math.NaN()), 1})
	scale := 1 / (5 + clipEpsilon)
	assertClose(t, []float64{-3 * scale, -4 * scale}, p.value(t, 0), 1e-6)
	got := p.value(t, 1)
	require.True(t, math.IsNaN(got[0]), "the NaN reaches the base optimizer, which decides what to do with it")
	require.Equal(t, -1.0, got[1], "the non-finite gradient is not scaled")
}

func TestClipGradientsByGlobalNormInvalid(t *testing.T) {
	for _, maxNorm := range []float64{-1, math.NaN(), math.Inf(1)} {
		err := TryCatchError(func() {
			g := NewGraph(testBackend(t), "clip")
			ClipGradientsByGlobalNorm([]*Node{Const(g, []float32{1})}, maxNorm)
		})
		require.ErrorContains(t, err, "maxNorm must be finite and > 0")
	}
}

func TestClipByGlobalNormNilBase(t *testing.T) {
	err := TryCatchError(func() { ClipByGlobalNorm(nil, 1) })
	require.ErrorContains(t, err, "optimizers.ClipByGlobalNorm: the base optimizer is nil")
}

// TestClipByGlobalNormNonFloat: an integer trainable variable's gradient is left out of the norm and passed
// on unchanged, so the float gradient [3, 4] is clipped by its own norm 5. With GoMLX's SGD at learning rate
// 1 the integer variable moves by its whole gradient 7 (scaled by 1/5 it would move by 1, or 0); a base
// that skips integer variables (SGDMomentum) leaves it alone.
func TestClipByGlobalNormNonFloat(t *testing.T) {
	scale := 1 / (5 + clipEpsilon)
	for _, tc := range []struct {
		name    string
		base    gomlxopt.Interface
		wantInt []int32
	}{
		{"sgd", plainSGD(), []int32{-7, -6, -5}},
		{"sgd-momentum", must(SGDMomentum().LearningRate(1).Momentum(0).Done()), []int32{0, 1, 2}},
		{"sgd by loss", lossOnly{plainSGD()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newLinearProblem(t, nil, ClipByGlobalNorm(tc.base, 1), []int32{0, 1, 2}, []float32{0, 0})
			p.step(t, []int32{7, 7, 7}, []float32{3, 4})
			if tc.wantInt != nil {
				require.Equal(t, tc.wantInt, p.vars[0].MustValue().Value())
			}
			assertClose(t, []float64{-3 * scale, -4 * scale}, p.value(t, 1), 1e-6)
		})
	}
	// Only non-float gradients: nothing to clip, and they pass through.
	g := NewGraph(testBackend(t), "clip")
	grad := Const(g, []int32{7})
	require.Same(t, grad, ClipGradientsByGlobalNorm([]*Node{grad, nil}, 1)[0])
}
