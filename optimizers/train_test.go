package optimizers

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/datasets"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// regressionData: y = x.w* + 0.01*noise, x in R^8 with N(0,1) entries, 256 examples.
func regressionData(seed uint64) (x [][]float32, y [][]float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	wStar := make([]float64, 8)
	for i := range wStar {
		wStar[i] = rng.NormFloat64()
	}
	for range 256 {
		row := make([]float32, 8)
		target := 0.01 * rng.NormFloat64()
		for i := range row {
			row[i] = float32(rng.NormFloat64())
			target += float64(row[i]) * wStar[i]
		}
		x, y = append(x, row), append(y, []float32{float32(target)})
	}
	return
}

// quadrantsData: points in [-1, 1]^2 labelled by whether x0*x1 > 0 (not linearly separable), 512 examples.
func quadrantsData(seed uint64) (x [][]float32, labels [][]int32) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for range 512 {
		p := []float32{float32(2*rng.Float64() - 1), float32(2*rng.Float64() - 1)}
		label := int32(0)
		if p[0]*p[1] > 0 {
			label = 1
		}
		x, labels = append(x, p), append(labels, []int32{label})
	}
	return
}

func linearModel(ctx *context.Context, _ any, inputs []*Node) []*Node {
	return []*Node{layers.Dense(ctx.In("linear"), inputs[0], true, 1)}
}

func mlpModel(ctx *context.Context, _ any, inputs []*Node) []*Node {
	h := activations.Relu(layers.Dense(ctx.In("hidden"), inputs[0], true, 32))
	return []*Node{layers.Dense(ctx.In("logits"), h, true, 2)}
}

// trainFullBatch trains with GoMLX's Trainer and Loop on the whole data set each step and returns the last
// step's loss.
func trainFullBatch(t *testing.T, ctx *context.Context, opt gomlxopt.Interface, model train.ModelFn,
	loss train.LossFn, x, y any, steps int) float64 {
	t.Helper()
	b := testBackend(t)
	ds, err := datasets.InMemoryFromData(b, "data", []any{x}, []any{y})
	require.NoError(t, err)
	n := ds.NumExamples()
	ds.BatchSize(n, true).Infinite(true)
	trainer := train.NewTrainer(b, ctx, model, loss, opt, nil, nil)
	metrics, err := train.NewLoop(trainer).RunSteps(ds, steps)
	require.NoError(t, err)
	return float64(metrics[0].Value().(float32))
}

// TestSMITrains: a small regression and a small MLP classification reach a target loss with SMI over AdamW,
// SGD with momentum and Lion, each with the paper's SMI settings for that base. The initial losses are about 8
// (regression) and 0.69 (classification).
func TestSMITrains(t *testing.T) {
	const steps = 300
	bases := []struct {
		name string
		opt  func() gomlxopt.Interface
	}{
		{"adamw", func() gomlxopt.Interface { return gomlxopt.Adam().LearningRate(0.02).WeightDecay(1e-4).Done() }},
		{"sgd-momentum", func() gomlxopt.Interface { return must(SGDMomentum().LearningRate(0.05).Done()) }},
		{"lion", func() gomlxopt.Interface { return must(Lion().LearningRate(0.03).Done()) }},
	}
	xr, yr := regressionData(7)
	xc, yc := quadrantsData(8)
	for _, base := range bases {
		t.Run(base.name, func(t *testing.T) {
			cfg, err := PaperDefaults(base.name)
			require.NoError(t, err)
			cfg.TotalSteps = steps

			ctx := context.New()
			ctx.SetRNGStateFromSeed(1)
			opt, err := SMI(base.opt()).SetConfig(cfg).Done()
			require.NoError(t, err)
			loss := trainFullBatch(t, ctx, opt, linearModel, losses.MeanSquaredError, xr, yr, steps)
			t.Logf("regression: final MSE %.5f", loss)
			require.Less(t, loss, 0.01, "regression MSE")
			require.Equal(t, int64(steps), gomlxopt.GetGlobalStep(ctx), "global step counted once per step")

			ctx = context.New()
			ctx.SetRNGStateFromSeed(2)
			opt, err = SMI(base.opt()).SetConfig(cfg).Done()
			require.NoError(t, err)
			loss = trainFullBatch(t, ctx, opt, mlpModel, losses.SparseCategoricalCrossEntropyLogits, xc, yc, steps)
			t.Logf("classification: final cross-entropy %.4f", loss)
			require.Less(t, loss, 0.2, "classification cross-entropy")
			alpha, kept, ok := Telemetry(ctx)
			require.True(t, ok)
			t.Logf("telemetry at the last step: alpha %.4f, kept energy %.4f", alpha, kept)
			require.InDelta(t, cfg.AlphaEnd, alpha, 0.01)
			require.True(t, kept > 0 && kept <= 1)
		})
	}
}

// TestSMIGradientAccumulation: the Trainer accepts SMI for gradient accumulation (it requires
// train.OptimizeWithGradients), and the global step (SMI's schedule step) counts applied updates.
func TestSMIGradientAccumulation(t *testing.T) {
	b := testBackend(t)
	x, y := regressionData(9)
	ds, err := datasets.InMemoryFromData(b, "data", []any{x}, []any{y})
	require.NoError(t, err)
	ds.BatchSize(64, true).Infinite(true)
	ctx := context.New()
	ctx.SetRNGStateFromSeed(3)
	trainer := train.NewTrainer(b, ctx, linearModel, losses.MeanSquaredError,
		SMI(gomlxopt.Adam().LearningRate(0.05).Done()).TotalSteps(50), nil, nil)
	require.NoError(t, trainer.AccumulateGradients(4))
	metrics, err := train.NewLoop(trainer).RunSteps(ds, 200)
	require.NoError(t, err)
	require.Equal(t, int64(50), gomlxopt.GetGlobalStep(ctx))
	require.Less(t, metrics[0].Value().(float32), float32(0.05))
}
