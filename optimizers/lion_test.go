package optimizers

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// TestLionHandComputed checks Lion's published rule (Chen et al. 2023, Algorithm 2) on values worked out by
// hand: lr 0.1, beta1 0.9, beta2 0.99, w0 = [1, -2, 0.5].
//
//	g1 = [0.5, -3, 0]:  c = 0.1*g1 = [0.05, -0.3, 0], sign [1, -1, 0], w1 = [0.9, -1.9, 0.5], m1 = 0.01*g1
//	g2 = [-1, 1, 2]:    c = 0.9*m1 + 0.1*g2 = [-0.0955, 0.073, 0.2], w2 = [1, -2, 0.4],
//	                    m2 = 0.99*m1 + 0.01*g2 = [-0.00505, -0.0197, 0.02]
//	g3 = [0.01, 0.01, -3]: c = [-0.003545, -0.01673, -0.282]: the momentum outvotes the small positive
//	                    gradients, w3 = [1.1, -1.9, 0.5]
//	weight decay 0.5, first step: w1 = w0 - 0.1*(sign(c) + 0.5*w0) = [0.85, -1.8, 0.475]
func TestLionHandComputed(t *testing.T) {
	grads := [][]float32{{0.5, -3, 0}, {-1, 1, 2}, {0.01, 0.01, -3}}
	p := newLinearProblem(t, nil, must(Lion().LearningRate(0.1).Done()), []float32{1, -2, 0.5})
	want := [][]float64{{0.9, -1.9, 0.5}, {1, -2, 0.4}, {1.1, -1.9, 0.5}}
	for i, g := range grads {
		p.step(t, g)
		assertClose(t, want[i], p.value(t, 0), 1e-6, "step ", i+1)
	}
	require.Equal(t, int64(3), gomlxopt.GetGlobalStep(p.ctx), "global step incremented once per step")

	p = newLinearProblem(t, nil, must(Lion().LearningRate(0.1).WeightDecay(0.5).Done()), []float32{1, -2, 0.5})
	p.step(t, grads[0])
	assertClose(t, []float64{0.85, -1.8, 0.475}, p.value(t, 0), 1e-6, "weight decay")
}

// TestLionFromContext checks the hyperparameters and the learning-rate variable: with beta1 0 the direction
// is sign(g), so each step moves every element by exactly the current learning rate.
func TestLionFromContext(t *testing.T) {
	ctx := context.New()
	ctx.SetParams(map[string]any{gomlxopt.ParamLearningRate: 0.25, ParamLionBeta1: 0.0, ParamLionBeta2: 0.5})
	p := newLinearProblem(t, ctx, must(Lion().FromContext(ctx).Done()), []float32{0, 0})
	p.step(t, []float32{3, -0.001})
	assertClose(t, []float64{-0.25, 0.25}, p.value(t, 0), 1e-7)
	require.NoError(t, gomlxopt.LearningRateVar(ctx, dtypes.Float32, 0).SetValue(tensorOf(float32(0.5))))
	p.step(t, []float32{3, -0.001})
	assertClose(t, []float64{-0.75, 0.75}, p.value(t, 0), 1e-7)
}

func TestLionValidate(t *testing.T) {
	require.NoError(t, Lion().Validate())
	require.ErrorContains(t, Lion().Betas(1.5, 0.99).Validate(), "beta1 must be in [0, 1]")
	require.ErrorContains(t, Lion().Betas(0.9, -1).Validate(), "beta2 must be in [0, 1]")
	require.ErrorContains(t, Lion().WeightDecay(-0.1).Validate(), "weight decay")
	ctx := context.New()
	ctx.SetParam(ParamLionBeta1, "high")
	require.ErrorContains(t, Lion().FromContext(ctx).Validate(),
		`optimizers.Lion: context hyperparameter "lion_beta1" must be a number, got string high`)
	_, err := Lion().Betas(1.5, 0.99).Done()
	require.ErrorContains(t, err, "optimizers.Lion: beta1 must be in [0, 1]", "Done returns Validate's error")
}
