package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestCompareRowsInterpolation checks that compare counting's shared passes (several sources of
// different row lengths, hence a different rank and interpolation weight per row) give each row's
// quantile bit for bit as scatter counting gives it for that source alone. The q values put the
// weight on both sides of 1/2, where float32(1-f) differs from float32(1) - float32(f): an
// interpolation rounded the second way fails here in the last bit (e.g. q = 0.8123).
func TestCompareRowsInterpolation(t *testing.T) {
	b := testBackend(t)
	type source struct {
		rows, size   int
		multiplicity bool
	}
	sources := []source{{3, 997, false}, {2, 1031, true}, {1, 4099, false}, {4, 61, true}}
	rng := rand.New(rand.NewPCG(71, 72))
	for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for _, q := range []float64{0.1, 0.25, 0.37, 0.5, 0.6, 0.8123, 0.9, 0.999} {
			t.Run(fmt.Sprintf("%s_q%v", dtype, q), func(t *testing.T) {
				var inputs []any
				mults := make([][]int, len(sources))
				for i, s := range sources {
					v := make([]float64, s.rows*s.size)
					for j := range v {
						v[j] = math.Exp(3*rng.NormFloat64()) * (1 + rng.Float64())
					}
					inputs = append(inputs, valuesTensor(v, dtype, s.rows, s.size))
					if s.multiplicity {
						mults[i] = make([]int, s.size)
						for j := range mults[i] {
							mults[i][j] = 1 + j%2
						}
					}
				}
				exec := MustNewExec(b, func(in []*Node) []*Node {
					var rows []compareRows
					for i := range sources {
						rows = append(rows, compareRows{x: in[i], multiplicity: mults[i]})
					}
					shared := quantileRowsCompare(rows, q)
					var outs []*Node
					for i := range sources {
						outs = append(outs, shared[i], quantileRows(in[i], q, selectScatter, mults[i]))
					}
					return outs
				})
				outs := exec.MustExec(inputs...)
				for i := range sources {
					exactBits(t, outs[2*i], outs[2*i+1], i)
				}
			})
		}
	}
}

// exactBits fails unless the two float tensors hold the same bits.
func exactBits(t *testing.T, a, b *tensors.Tensor, source int) {
	t.Helper()
	switch av := a.Value().(type) {
	case []float32:
		bv := b.Value().([]float32)
		for j := range av {
			if math.Float32bits(av[j]) != math.Float32bits(bv[j]) {
				t.Errorf("source %d row %d: compare %v (%#x), scatter %v (%#x)", source, j, av[j], math.Float32bits(av[j]), bv[j], math.Float32bits(bv[j]))
			}
		}
	case []float64:
		bv := b.Value().([]float64)
		for j := range av {
			if math.Float64bits(av[j]) != math.Float64bits(bv[j]) {
				t.Errorf("source %d row %d: compare %v, scatter %v", source, j, av[j], bv[j])
			}
		}
	default:
		t.Fatalf("unexpected value type %T", av)
	}
}
