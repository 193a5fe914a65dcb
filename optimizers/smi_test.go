package optimizers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"

	"github.com/smi-gomlx/smi/spectral"
)

// randomGrad returns a float32 tensor value of the given dims with N(0, scale^2) entries, and its values as
// float64, flattened.
func randomGrad(rng *rand.Rand, scale float64, dims ...int) (any, []float64) {
	size := 1
	for _, x := range dims {
		size *= x
	}
	flat := make([]float32, size)
	flat64 := make([]float64, size)
	for i := range flat {
		flat[i] = float32(scale * rng.NormFloat64())
		flat64[i] = float64(flat[i])
	}
	return tensorFromFlat(flat, dims...), flat64
}

// historyOf returns the spectral history of variable v, flattened, or nil if SMI has not created it.
func historyOf(t testing.TB, ctx *context.Context, v *context.Variable) []float64 {
	h := ctx.GetVariableByScopeAndName("/"+SMIScope+"/history"+v.Scope(), v.Name())
	if h == nil {
		return nil
	}
	return flatFloat64(t, h.MustValue())
}

func sumSquares(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return s
}

// TestSMIEndToEnd checks the whole step against the host reference: with w -= g (GoMLX SGD, learning rate 1,
// no decay) as the base, each variable's change over a step is minus SMI's blended gradient. Variables of rank
// 1, 2 and 3 are filtered; a scalar and an excluded variable must pass their gradient through unchanged. The
// schedule runs past TotalSteps to check it holds at alphaEnd. Also checks the histories and the telemetry.
// Tolerance: 1e-4 (absolute for |x| <= 1, else relative), float32 graph against float64 reference on N(0,1)
// gradients.
func TestSMIEndToEnd(t *testing.T) {
	shapes := [][]int{{6, 8}, {10}, {2, 3, 5}, {}, {4, 4}}
	const excluded, scalar = 4, 3
	for _, cfg := range []spectral.Config{
		{Quantile: 0.5, Beta: 0.9, Schedule: spectral.ScheduleLinear, AlphaStart: 0.2, AlphaEnd: 0.8, TotalSteps: 4},
		{Quantile: 0.25, Beta: 0.99, Schedule: spectral.ScheduleCosine, AlphaStart: 0.1, AlphaEnd: 0.5, TotalSteps: 3},
		{Quantile: 0.7, Beta: 0.5, Schedule: spectral.ScheduleConstant, AlphaStart: 1, TotalSteps: 1, HalfSpectrum: true},
	} {
		t.Run(fmt.Sprintf("%s_q%g_half%v", cfg.Schedule, cfg.Quantile, cfg.HalfSpectrum), func(t *testing.T) {
			opt := SMI(plainSGD()).SetConfig(cfg).Exclude(`/w4$`)
			var inits []any
			refs := make([]*refSMI, len(shapes))
			for i, dims := range shapes {
				zero, _ := randomGrad(rand.New(rand.NewPCG(0, 0)), 0, dims...)
				inits = append(inits, zero)
				if len(dims) > 0 {
					refs[i] = newRefSMI(cfg, dims...)
				}
			}
			p := newLinearProblem(t, nil, opt, inits...)
			rng := rand.New(rand.NewPCG(1, uint64(cfg.TotalSteps)))
			tieSteps := 0
			for step := 0; step < 6; step++ {
				grads := make([]any, len(shapes))
				grads64 := make([][]float64, len(shapes))
				before := make([][]float64, len(shapes))
				for i, dims := range shapes {
					grads[i], grads64[i] = randomGrad(rng, 1, dims...)
					before[i] = p.value(t, i)
				}
				p.step(t, grads...)
				keptSum, energySum := 0.0, 0.0
				for i := range shapes {
					after := p.value(t, i)
					delta := make([]float64, len(after))
					for k := range after {
						delta[k] = before[i][k] - after[k]
					}
					want := grads64[i]
					if i != excluded && i != scalar {
						results := refs[i].step(grads64[i], step)
						if len(results) > 1 {
							tieSteps++
						}
						res := closestResult(results, delta)
						want = res.blended
						e := sumSquares(grads64[i])
						keptSum += res.kept * e
						energySum += e
					}
					assertClose(t, want, delta, 1e-4, fmt.Sprintf("step %d, variable %d %v", step, i, shapes[i]))
					if i == excluded || i == scalar {
						require.Nil(t, historyOf(t, p.ctx, p.vars[i]), "no history for unfiltered variable %d", i)
					} else {
						assertClose(t, refs[i].stored(), historyOf(t, p.ctx, p.vars[i]), 1e-4, "history ", i)
					}
				}
				alpha, kept, ok := Telemetry(p.ctx)
				require.True(t, ok)
				require.InDelta(t, refAlpha(cfg, step), alpha, 1e-6, "alpha at step %d", step)
				require.InDelta(t, keptSum/energySum, kept, 1e-5, "kept energy at step %d", step)
			}
			require.Equal(t, int64(6), gomlxopt.GetGlobalStep(p.ctx), "one global step per training step")
			t.Logf("%d of %d variable-steps had bins at a tie with the threshold", tieSteps, 6*3)
		})
	}
}

// closestResult picks, among the reference's admissible outcomes (they differ only at ties), the one nearest
// to got in max norm over got's finite elements.
func closestResult(results []refResult, got []float64) refResult {
	best, bestErr := results[0], math.Inf(1)
	for _, r := range results {
		e := 0.0
		for k := range got {
			if math.IsNaN(got[k]) || math.IsInf(got[k], 0) {
				continue
			}
			e = math.Max(e, math.Abs(r.blended[k]-got[k]))
		}
		if e < bestErr {
			best, bestErr = r, e
		}
	}
	return best
}
