package optimizers

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// TestSGDMomentumHandComputed checks PyTorch's SGD rule on values worked out by hand (lr 0.1, mu 0.9,
// w0 = [1, -2], gradients [1, 1] then [1, -1]):
//
//	classical: b1 = [1, 1], w1 = [0.9, -2.1]; b2 = 0.9*b1 + g2 = [1.9, -0.1], w2 = w1 - 0.1*b2 = [0.71, -2.09]
//	Nesterov:  d1 = g1 + 0.9*b1 = [1.9, 1.9], w1 = [0.81, -2.19];
//	           d2 = g2 + 0.9*b2 = [2.71, -1.09], w2 = [0.539, -2.081]
//	wd 0.5:    d1 = g1 + 0.5*w0 = [1.5, 0], b1 = d1, w1 = [0.85, -2];
//	           d2 = g2 + 0.5*w1 = [1.425, -2], b2 = 0.9*b1 + d2 = [2.775, -2], w2 = [0.5725, -1.8]
func TestSGDMomentumHandComputed(t *testing.T) {
	grads := [][]float32{{1, 1}, {1, -1}}
	for _, tc := range []struct {
		name string
		opt  *SGDMomentumConfig
		want [][]float64
	}{
		{"classical", SGDMomentum().LearningRate(0.1), [][]float64{{0.9, -2.1}, {0.71, -2.09}}},
		{"nesterov", SGDMomentum().LearningRate(0.1).Nesterov(true), [][]float64{{0.81, -2.19}, {0.539, -2.081}}},
		{"weight decay", SGDMomentum().LearningRate(0.1).WeightDecay(0.5), [][]float64{{0.85, -2}, {0.5725, -1.8}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newLinearProblem(t, nil, must(tc.opt.Done()), []float32{1, -2})
			for i, g := range grads {
				p.step(t, g)
				assertClose(t, tc.want[i], p.value(t, 0), 1e-6, "step ", i+1)
			}
			require.Equal(t, int64(len(grads)), gomlxopt.GetGlobalStep(p.ctx), "global step incremented once per step")
		})
	}
}

// TestSGDMomentumLearningRateVariable checks that the rate comes from GoMLX's learning-rate variable: first
// from the "learning_rate" hyperparameter, then from whatever a schedule writes into the variable.
func TestSGDMomentumLearningRateVariable(t *testing.T) {
	ctx := context.New()
	ctx.SetParams(map[string]any{gomlxopt.ParamLearningRate: 0.1, ParamSGDMomentum: 0.5})
	p := newLinearProblem(t, ctx, must(SGDMomentum().FromContext(ctx).Done()), []float64{1})
	p.step(t, []float64{1})                             // b = 1, w = 1 - 0.1
	assertClose(t, []float64{0.9}, p.value(t, 0), 1e-7) // Computed in the loss dtype, float32.
	require.NoError(t, gomlxopt.LearningRateVar(ctx, dtypes.Float32, 0).SetValue(tensorOf(float32(0.01))))
	p.step(t, []float64{1}) // b = 0.5 + 1, w = 0.9 - 0.01*1.5
	assertClose(t, []float64{0.885}, p.value(t, 0), 1e-7)
}

func TestSGDMomentumValidate(t *testing.T) {
	require.NoError(t, SGDMomentum().Validate())
	require.ErrorContains(t, SGDMomentum().Momentum(1).Validate(), "momentum must be in [0, 1)")
	require.ErrorContains(t, SGDMomentum().Momentum(-0.1).Validate(), "momentum must be in [0, 1)")
	require.ErrorContains(t, SGDMomentum().WeightDecay(-1).Validate(), "weight decay")
	ctx := context.New()
	ctx.SetParam(ParamSGDNesterov, "yes")
	require.ErrorContains(t, SGDMomentum().FromContext(ctx).Validate(),
		`optimizers.SGDMomentum: context hyperparameter "sgd_nesterov" must be a bool, got string yes`)
	_, err := SGDMomentum().Momentum(1).Done()
	require.ErrorContains(t, err, "optimizers.SGDMomentum: momentum must be in [0, 1)", "Done returns Validate's error")
}
