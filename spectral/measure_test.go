package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// measurementsOnly skips measurement tests (they log figures for the docs and take half a
// minute) unless SMI_SPECTRAL_MEASURE=1.
func measurementsOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("SMI_SPECTRAL_MEASURE") != "1" {
		t.Skip("measurement: set SMI_SPECTRAL_MEASURE=1 to run")
	}
}

// gptGradients returns gradient-like matrices for a step: a linear layer's gradient is a sum of
// outer products x_b^T delta_b over the batch, so a rank-16 sum of outer products of vectors with
// smooth and noisy parts, plus small i.i.d. noise; the factors drift slowly across steps.
type gptGradients struct {
	rng  *rand.Rand
	n, d int
	u, v [][]float64
}

func newGPTGradients(seed uint64, n, d int) *gptGradients {
	g := &gptGradients{rng: rand.New(rand.NewPCG(seed, 7)), n: n, d: d}
	const rank = 16
	for range rank {
		u, v := make([]float64, n), make([]float64, d)
		f1, f2 := g.rng.Float64()*4, g.rng.Float64()*4
		for i := range u {
			u[i] = math.Sin(2*math.Pi*f1*float64(i)/float64(n)) + g.rng.NormFloat64()
		}
		for j := range v {
			v[j] = math.Cos(2*math.Pi*f2*float64(j)/float64(d)) + g.rng.NormFloat64()
		}
		g.u, g.v = append(g.u, u), append(g.v, v)
	}
	return g
}

func (g *gptGradients) next() []float32 {
	out := make([]float32, g.n*g.d)
	for r := range g.u {
		for i := range g.u[r] {
			g.u[r][i] += 0.3 * g.rng.NormFloat64()
		}
		for i := range g.n {
			for j := range g.d {
				out[i*g.d+j] += float32(g.u[r][i] * g.v[r][j] / 16)
			}
		}
	}
	for i := range out {
		out[i] += float32(0.1 * g.rng.NormFloat64())
	}
	return out
}

// TestHalfSpectrumDifference measures how far the half-spectrum variant departs from the
// paper's full-spectrum filter on gradient-like matrices of the GPT's shapes: after 10 steps of
// history (beta = 0.99), the relative L2 difference ||G~_half - G~_full|| / ||G~_full|| and the
// kept energies, for q = 0.25 and 0.5. The figures are logged (run with -v); the test fails only
// if the variants disagree by more than half the filtered gradient's norm.
//
//	SMI_SPECTRAL_MEASURE=1 go test ./spectral -run TestHalfSpectrumDifference -v
func TestHalfSpectrumDifference(t *testing.T) {
	measurementsOnly(t)
	b := testBackend(t)
	var table strings.Builder
	fmt.Fprintf(&table, "| shape | q | ||G~half - G~full|| / ||G~full|| | ||G~half - G~full|| / ||g|| | kept energy full | kept energy half |\n|---|---|---|---|---|---|\n")
	for _, dims := range [][]int{{65, 384}, {384, 1152}, {384, 1536}, {1536, 384}, {256, 384}, {384}} {
		for _, q := range []float64{0.25, 0.5} {
			n, d, _ := MatrixView(shapes.Make(dtypes.Float32, dims...))
			hShape, _ := HistoryShape(shapes.Make(dtypes.Float32, dims...))
			exec := MustNewExec(b, func(g, hf, hh *Node) []*Node {
				f1, h1, k1 := Filter(g, hf, q, 0.99, false)
				f2, h2, k2 := Filter(g, hh, q, 0.99, true)
				return []*Node{f1, h1, k1, f2, h2, k2}
			})
			gen := newGPTGradients(uint64(n*d), n, d)
			hf, hh := tensors.FromShape(hShape), tensors.FromShape(hShape)
			var outs []*tensors.Tensor
			var g []float32
			for range 10 {
				g = gen.next()
				outs = exec.MustExec(tensors.FromFlatDataAndDimensions(g, dims...), hf, hh)
				hf, hh = outs[1], outs[4]
			}
			a, c := flat64(outs[0]), flat64(outs[3])
			g64 := make([]float64, len(g))
			for i := range g {
				g64[i] = float64(g[i])
			}
			fullNorm, gNorm := norm2(a), norm2(g64)
			for i := range a {
				a[i] -= c[i]
			}
			rel := norm2(a) / fullNorm
			fmt.Fprintf(&table, "| %v | %g | %.3f | %.3f | %.4f | %.4f |\n", dims, q, rel, norm2(a)/gNorm,
				outs[2].Value().(float32), outs[5].Value().(float32))
			if !(rel <= 0.5) {
				t.Errorf("%v q=%g: half and full spectrum differ by %.3f of the filtered norm", dims, q, rel)
			}
		}
	}
	t.Logf("half vs full spectrum, gradient-like matrices, beta=0.99, after 10 steps; %s, %s/%s, %d CPUs:\n%s",
		b.Description(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), table.String())
}
