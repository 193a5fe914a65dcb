package optimizers

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// elementwiseBuilders are SGDMomentum's and Lion's builders, for the tests of what they share.
var elementwiseBuilders = []struct {
	name            string
	withLR          func(lr float64) (gomlxopt.Interface, error)
	fromContext     func(ctx *context.Context) (gomlxopt.Interface, error)
	withoutSettings func() (gomlxopt.Interface, error)
}{
	{"optimizers.SGDMomentum",
		func(lr float64) (gomlxopt.Interface, error) { return SGDMomentum().LearningRate(lr).Done() },
		func(ctx *context.Context) (gomlxopt.Interface, error) { return SGDMomentum().FromContext(ctx).Done() },
		func() (gomlxopt.Interface, error) { return SGDMomentum().Done() }},
	{"optimizers.Lion",
		func(lr float64) (gomlxopt.Interface, error) { return Lion().LearningRate(lr).Done() },
		func(ctx *context.Context) (gomlxopt.Interface, error) { return Lion().FromContext(ctx).Done() },
		func() (gomlxopt.Interface, error) { return Lion().Done() }},
}

// TestElementwiseLearningRateSetter: a learning rate given to the builder must be finite and > 0; a
// negative one is not taken for "not set".
func TestElementwiseLearningRateSetter(t *testing.T) {
	for _, b := range elementwiseBuilders {
		for _, lr := range []float64{-0.5, 0, math.NaN(), math.Inf(1), math.Inf(-1)} {
			_, err := b.withLR(lr)
			require.ErrorContains(t, err, b.name+": learning rate must be finite and > 0, got ", "lr %g", lr)
		}
		_, err := b.withLR(1e-3)
		require.NoError(t, err)
	}
}

// TestElementwiseLearningRateFromContext: the context's "learning_rate", when present, must be a number,
// finite and > 0: FromContext's Done reports it, and an optimizer built without FromContext refuses it
// when the graph is built, instead of training with it.
func TestElementwiseLearningRateFromContext(t *testing.T) {
	for _, b := range elementwiseBuilders {
		for _, lr := range []any{-1.0, math.NaN(), math.Inf(1), 0.0, -2, "fast", true} {
			ctx := context.New()
			ctx.SetParam(gomlxopt.ParamLearningRate, lr)
			_, err := b.fromContext(ctx)
			want := b.name + `: context hyperparameter "learning_rate" must be a number, finite and > 0, got `
			require.ErrorContains(t, err, want, "learning_rate %v", lr)

			opt, err := b.withoutSettings()
			require.NoError(t, err)
			p := newLinearProblem(t, ctx, opt, []float32{1, 2})
			_, err = p.exec.Exec([]float32{1, 1})
			require.ErrorContains(t, err, want, "learning_rate %v at graph building", lr)
		}
		for _, lr := range []any{0.5, float32(0.5), 2, uint8(1)} {
			ctx := context.New()
			ctx.SetParam(gomlxopt.ParamLearningRate, lr)
			_, err := b.fromContext(ctx)
			require.NoError(t, err, "learning_rate %T %v", lr, lr)
		}
	}
}

// TestElementwiseSkipsNonFloat: an integer trainable variable next to a float one is left unchanged (a
// step cast back to int32 would truncate), while the float one is trained.
func TestElementwiseSkipsNonFloat(t *testing.T) {
	for _, b := range elementwiseBuilders {
		opt, err := b.withLR(0.5)
		require.NoError(t, err)
		p := newLinearProblem(t, nil, opt, []int32{0, 1, 2}, []float32{1, 1, 1})
		for range 2 {
			p.step(t, []int32{1, 1, 1}, []float32{1, 1, 1})
		}
		require.Equal(t, []int32{0, 1, 2}, p.vars[0].MustValue().Value(), b.name)
		got := p.value(t, 1)
		require.Less(t, got[0], 1.0, "%s: the float variable is trained", b.name)
		for v := range p.ctx.IterVariables() {
			require.NotEqual(t, "w0_momentum", v.Name(), "%s: no state for the integer variable", b.name)
		}
	}
}
