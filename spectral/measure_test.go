package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

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

// TestFilterTiming logs the compile and run times of Filter (q = 0.25) on the GPT's largest
// matrices, full and half spectrum. Logged, not asserted: the machine may be shared.
//
//	SMI_SPECTRAL_MEASURE=1 go test ./spectral -run 'TestFilterTiming|TestQuantileTiming' -v
func TestFilterTiming(t *testing.T) {
	measurementsOnly(t)
	b := testBackend(t)
	host, _ := os.Hostname()
	rng := rand.New(rand.NewPCG(41, 42))
	for _, dims := range [][]int{{384, 1536}, {1536, 384}, {65, 384}} {
		for _, half := range []bool{false, true} {
			values := make([]float32, dims[0]*dims[1])
			for i := range values {
				values[i] = float32(rng.NormFloat64())
			}
			input := tensors.FromFlatDataAndDimensions(values, dims...)
			hs, _ := HistoryShape(input.Shape())
			exec := MustNewExec(b, func(g, h *Node) []*Node {
				f, nh, k := Filter(g, h, 0.25, 0.99, half)
				return []*Node{f, nh, k}
			})
			start := time.Now()
			outs := exec.MustExec(input, tensors.FromShape(hs))
			first := time.Since(start)
			const reps = 20
			start = time.Now()
			for range reps {
				outs = exec.MustExec(input, outs[1])
			}
			t.Logf("Filter %v half=%v: compile+first run %v, run %v (mean of %d); %s on %s (%d CPUs)",
				dims, half, first.Round(time.Millisecond), (time.Since(start) / reps).Round(10*time.Microsecond), reps, b.Description(), host, runtime.NumCPU())
		}
	}
}

// TestModelFilterTiming logs where the filter's time goes for a whole GPT preset's variables
// (their shapes below; SMI_SPECTRAL_MODEL = tiny, cpu (default) or paper), compiled as one graph
// the way optimizers.SMI builds it: each variable alone through Filter, or same-shape variables
// through one FilterBatch; and, batched, without the quantile (q = 0) and the forward and
// inverse FFTs alone. Medians of interleaved rounds; logged, not asserted.
//
//	SMI_SPECTRAL_MEASURE=1 SMI_SPECTRAL_MODEL=cpu go test ./spectral -run TestModelFilterTiming -v
func TestModelFilterTiming(t *testing.T) {
	measurementsOnly(t)
	b := testBackend(t)
	type shape struct{ n, d, count int }
	presets := map[string]struct {
		shapes       []shape
		rounds, reps int
	}{
		"tiny":  {[]shape{{65, 32, 1}, {32, 32, 3}, {1, 32, 5}, {32, 96, 2}, {32, 128, 2}, {128, 32, 2}}, 15, 50},
		"cpu":   {[]shape{{65, 128, 1}, {64, 128, 1}, {1, 128, 9}, {128, 384, 4}, {128, 128, 4}, {128, 512, 4}, {512, 128, 4}}, 9, 10},
		"paper": {[]shape{{65, 384, 1}, {256, 384, 1}, {1, 384, 13}, {384, 1152, 6}, {384, 384, 6}, {384, 1536, 6}, {1536, 384, 6}}, 7, 2},
	}
	name := os.Getenv("SMI_SPECTRAL_MODEL")
	if name == "" {
		name = "cpu"
	}
	preset, ok := presets[name]
	if !ok {
		t.Fatalf("SMI_SPECTRAL_MODEL=%q: want tiny, cpu or paper", name)
	}
	model, rounds, reps := preset.shapes, preset.rounds, preset.reps
	numVars := 0
	for _, m := range model {
		numVars += m.count
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, half := range []bool{false, true} {
		var inputs []any
		for _, m := range model {
			for range m.count {
				v := make([]float32, m.n*m.d)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				hs, _ := HistoryShape(shapes.Make(dtypes.Float32, m.n, m.d))
				inputs = append(inputs, tensors.FromFlatDataAndDimensions(v, m.n, m.d), tensors.FromShape(hs))
			}
		}
		build := func(q float64, batched, fftOnly bool) *Exec {
			return MustNewExec(b, func(in []*Node) []*Node {
				var outs []*Node
				alpha := Scalar(in[0].Graph(), dtypes.Float32, 0.3)
				i := 0
				for _, m := range model {
					var gs, hs []*Node
					for range m.count {
						if !batched {
							f, h, k := Filter(in[i], in[i+1], q, 0.99, half)
							outs = append(outs, Blend(in[i], f, alpha), h, k)
						}
						gs, hs = append(gs, InsertAxes(in[i], 0)), append(hs, InsertAxes(in[i+1], 0))
						i += 2
					}
					if !batched {
						continue
					}
					if fftOnly {
						outs = append(outs, InverseRealFFT(RealFFT(Concatenate(gs, 0), m.n, m.d), m.n, m.d))
						continue
					}
					f, h, k, e := FilterBatch(Concatenate(gs, 0), Concatenate(hs, 0), q, 0.99, half)
					for j := range m.count {
						outs = append(outs, Blend(gs[j], Slice(f, AxisElem(j)), alpha))
					}
					outs = append(outs, h, k, e)
				}
				return outs
			})
		}
		names := []string{"each variable alone, q=0.25", "batched, q=0.25", "batched, q=0 (no quantile)", "batched, FFT and inverse only"}
		execs := []*Exec{build(0.25, false, false), build(0.25, true, false), build(0, true, false), build(0, true, true)}
		times := make([][]float64, len(execs))
		for round := range rounds + 1 {
			for k, e := range execs {
				start := time.Now()
				for range reps {
					for _, o := range e.MustExec(inputs...) {
						o.FinalizeAll()
					}
				}
				if round > 0 { // Round 0 compiles and warms up.
					times[k] = append(times[k], time.Since(start).Seconds()/float64(reps))
				}
			}
		}
		for k, variant := range names {
			sorted := append([]float64(nil), times[k]...)
			for i := range sorted {
				for j := i + 1; j < len(sorted); j++ {
					if sorted[j] < sorted[i] {
						sorted[i], sorted[j] = sorted[j], sorted[i]
					}
				}
			}
			t.Logf("%s preset's %d variables, half=%v, %s: %.2f ms (median of %d rounds of %d)", name, numVars, half, variant, 1e3*sorted[rounds/2], rounds, reps)
		}
	}
}
