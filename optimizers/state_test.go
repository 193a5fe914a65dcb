package optimizers

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// TestSMIFilterIf: variables the predicate rejects pass their gradient through and get no history.
func TestSMIFilterIf(t *testing.T) {
	onlyMatrices := func(v *context.Variable) bool { return v.Shape().Rank() >= 2 }
	p := newLinearProblem(t, nil, SMI(plainSGD()).SetConfig(safetyConfig).FilterIf(onlyMatrices),
		[]float32{0, 0, 0, 0}, [][]float32{{0, 0, 0, 0}, {0, 0, 0, 0}})
	p.step(t, []float32{1, -2, 3, 4}, [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}})
	require.Equal(t, []float64{-1, 2, -3, -4}, p.value(t, 0), "vector not filtered")
	require.Nil(t, historyOf(t, p.ctx, p.vars[0]))
	require.NotNil(t, historyOf(t, p.ctx, p.vars[1]), "matrix filtered")
}

// TestSMIFloat64: float64 variables are filtered in float64, with a float64 history.
func TestSMIFloat64(t *testing.T) {
	dims := []int{3, 7}
	p := newLinearProblem(t, nil, SMI(plainSGD()).SetConfig(safetyConfig),
		tensors.FromShape(shapes.Make(dtypes.Float64, dims...)))
	ref := newRefSMI(safetyConfig, dims...)
	rng := rand.New(rand.NewPCG(9, 10))
	for step := range 3 {
		flat := make([]float64, 21)
		for k := range flat {
			flat[k] = rng.NormFloat64()
		}
		before := p.value(t, 0)
		p.step(t, tensorFromFlat(flat, dims...))
		delta := deltas(before, p.value(t, 0))
		assertClose(t, closestResult(ref.step(flat, step), delta).blended, delta, 1e-9, "step ", step)
	}
	require.Equal(t, dtypes.Float64, p.ctx.GetVariableByScopeAndName("/smi/history/model", "w0").DType())
}

// TestClear: Clear removes SMI's state and the base optimizer's, and nothing else.
func TestClear(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  gomlxopt.Interface
		scope string
	}{
		{"adam", gomlxopt.Adam().Done(), "/AdamOptimizer"},
		{"sgd-momentum", must(SGDMomentum().Done()), "/" + SGDMomentumScope},
		{"lion", must(Lion().Done()), "/" + LionScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := SMI(tc.base).TotalSteps(5)
			p := newLinearProblem(t, nil, opt, []float32{1, 2, 3})
			_, _, ok := Telemetry(p.ctx)
			require.False(t, ok, "no telemetry before the first step")
			p.step(t, []float32{1, 1, 1})
			_, _, ok = Telemetry(p.ctx)
			require.True(t, ok)
			inScope := func(prefix string) int {
				n := 0
				for v := range p.ctx.IterVariables() {
					if strings.HasPrefix(v.Scope(), prefix) {
						n++
					}
				}
				return n
			}
			require.Positive(t, inScope("/smi"))
			require.Positive(t, inScope(tc.scope))
			require.NoError(t, opt.Clear(p.ctx))
			require.Zero(t, inScope("/smi"))
			require.Zero(t, inScope(tc.scope))
			require.NotNil(t, p.ctx.GetVariableByScopeAndName("/model", "w0"), "model variables stay")
			_, _, ok = Telemetry(p.ctx)
			require.False(t, ok)
		})
	}
}
