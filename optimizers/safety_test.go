package optimizers

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"
	"github.com/x448/float16"

	"github.com/smi-gomlx/smi/spectral"
)

var safetyConfig = spectral.Config{Quantile: 0.5, Beta: 0.9, Schedule: spectral.ScheduleLinear, AlphaStart: 0.3,
	AlphaEnd: 0.9, TotalSteps: 3}

// deltas returns before - after, element-wise.
func deltas(before, after []float64) []float64 {
	d := make([]float64, len(after))
	for k := range after {
		d[k] = before[k] - after[k]
	}
	return d
}

// TestSMINonFiniteGradient: a gradient with a NaN or an Inf leaves its variable's history unchanged and goes
// to the base optimizer unfiltered for that step; other variables are filtered as usual, and the poisoned
// variable is filtered again at the next finite step, from the history it had before.
func TestSMINonFiniteGradient(t *testing.T) {
	dims := []int{4, 6}
	p := newLinearProblem(t, nil, SMI(plainSGD()).SetConfig(safetyConfig),
		tensors.FromShape(shapes.Make(dtypes.Float32, dims...)), tensors.FromShape(shapes.Make(dtypes.Float32, dims...)),
		tensors.FromShape(shapes.Make(dtypes.Float32, dims...)))
	refs := []*refSMI{newRefSMI(safetyConfig, dims...), newRefSMI(safetyConfig, dims...), newRefSMI(safetyConfig, dims...)}
	rng := rand.New(rand.NewPCG(3, 4))
	for step := 0; step < 3; step++ {
		var grads []any
		var grads64 [][]float64
		var before, histories [][]float64
		for i := range 3 {
			gr, g64 := randomGrad(rng, 1, dims...)
			if step == 1 && i > 0 {
				bad := []float32{float32(math.NaN()), float32(math.Inf(-1))}[i-1]
				flat, err := tensors.CopyFlatData[float32](gr.(*tensors.Tensor))
				require.NoError(t, err)
				flat[5] = bad
				g64[5] = float64(bad)
				gr = tensorFromFlat(flat, dims...)
			}
			grads, grads64 = append(grads, gr), append(grads64, g64)
			before = append(before, p.value(t, i))
			histories = append(histories, historyOf(t, p.ctx, p.vars[i]))
		}
		p.step(t, grads...)
		_, kept, ok := Telemetry(p.ctx)
		require.True(t, ok)
		for i := range 3 {
			delta := deltas(before[i], p.value(t, i))
			if step == 1 && i > 0 {
				require.Equal(t, histories[i], historyOf(t, p.ctx, p.vars[i]), "history of variable %d unchanged", i)
				for k := range delta {
					if k != 5 {
						require.InDelta(t, grads64[i][k], delta[k], 1e-6, "variable %d passed through unfiltered", i)
					}
				}
				continue
			}
			res := closestResult(refs[i].step(grads64[i], step), delta)
			if step == 2 && i > 0 {
				// Element 5 became non-finite at step 1; compare the others.
				res.blended[5], delta[5] = 0, 0
			}
			assertClose(t, res.blended, delta, 1e-4, "step ", step, " variable ", i)
			if step == 1 {
				require.InDelta(t, res.kept, kept, 1e-5, "telemetry counts only the finite variable")
			}
		}
	}
}

// TestSMINilAndZeroGradients: a variable without gradient (nil, possible through UpdateGraphWithGradients) is
// handed to the base optimizer as a zero gradient and gets no history; an all-zero gradient goes through as
// zeros with a zero history and a kept-energy of 1.
func TestSMINilAndZeroGradients(t *testing.T) {
	ctx := context.New()
	w0 := ctx.In("model").VariableWithValue("w0", []float32{1, 2, 3})
	w1 := ctx.In("model").VariableWithValue("w1", [][]float32{{1, 2}, {3, 4}})
	opt, err := SMI(plainSGD()).SetConfig(safetyConfig).Done()
	require.NoError(t, err)
	smi := opt.(interface {
		UpdateGraphWithGradients(*context.Context, []*Node, dtypes.DType)
	})
	exec := context.MustNewExec(testBackend(t), ctx, func(ctx *context.Context, g *Graph) *Node {
		loss := ReduceAllSum(Mul(w0.ValueGraph(g), w0.ValueGraph(g)))
		loss = Add(loss, ReduceAllSum(w1.ValueGraph(g)))
		grads := ctx.BuildTrainableVariablesGradientsGraph(loss)
		grads[0] = nil
		grads[1] = ZerosLike(grads[1])
		smi.UpdateGraphWithGradients(ctx, grads, loss.DType())
		return loss
	})
	for range 2 {
		_, err := exec.Exec()
		require.NoError(t, err)
	}
	require.Equal(t, []float64{1, 2, 3}, flatFloat64(t, w0.MustValue()))
	require.Equal(t, []float64{1, 2, 3, 4}, flatFloat64(t, w1.MustValue()))
	require.Nil(t, historyOf(t, ctx, w0))
	require.Equal(t, []float64{0, 0, 0, 0}, historyOf(t, ctx, w1))
	_, kept, ok := Telemetry(ctx)
	require.True(t, ok)
	require.Equal(t, 1.0, kept)
}

// TestSMIHalfPrecision: bfloat16 and float16 variables are filtered (in float32, by package spectral) and
// updated in their own dtype. Reference: the float64 reference on the gradient rounded to the variable's
// dtype; tolerance 4 units in the last place of each format (2^-6 for bfloat16, 2^-9 for float16).
func TestSMIHalfPrecision(t *testing.T) {
	dims := []int{5, 8}
	for _, tc := range []struct {
		dtype dtypes.DType
		round func(float32) float64
		tol   float64
	}{
		{dtypes.BFloat16, func(x float32) float64 { return float64(bfloat16.FromFloat32(x).Float32()) }, 1.0 / 64},
		{dtypes.Float16, func(x float32) float64 { return float64(float16.Fromfloat32(x).Float32()) }, 1.0 / 512},
	} {
		t.Run(tc.dtype.String(), func(t *testing.T) {
			p := newLinearProblem(t, nil, SMI(plainSGD()).SetConfig(safetyConfig),
				tensors.FromShape(shapes.Make(tc.dtype, dims...)))
			ref := newRefSMI(safetyConfig, dims...)
			rng := rand.New(rand.NewPCG(5, 6))
			for step := range 3 {
				gr, _ := randomGrad(rng, 1, dims...)
				flat, err := tensors.CopyFlatData[float32](gr.(*tensors.Tensor))
				require.NoError(t, err)
				g64 := make([]float64, len(flat))
				for k, x := range flat {
					g64[k] = tc.round(x)
				}
				before := p.value(t, 0)
				p.step(t, gr)
				res := closestResult(ref.step(g64, step), deltas(before, p.value(t, 0)))
				// The variable itself is rounded to the dtype after each step: compare positions, not deltas.
				want := make([]float64, len(before))
				for k := range want {
					want[k] = before[k] - res.blended[k]
				}
				assertClose(t, want, p.value(t, 0), tc.tol, "step ", step)
			}
			require.Equal(t, dtypes.Float32, p.ctx.GetVariableByScopeAndName("/smi/history/model", "w0").DType(),
				"history kept in float32")
		})
	}
}
