package benchmarks

import (
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/spectral"
)

// The filter's timings on the GPT's shapes, logged for the docs (run with -v), not asserted: the
// machine may be shared. docs/BENCHMARKS.md (make bench) is the full, generated measurement.

// measurementsOnly skips these timings (they take minutes) unless SMI_BENCH_MEASURE=1.
func measurementsOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("SMI_BENCH_MEASURE") != "1" {
		t.Skip("measurement: set SMI_BENCH_MEASURE=1 to run")
	}
}

// measureBackend returns the XLA CPU backend, or skips.
func measureBackend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	return b
}

// TestFilterTiming logs the compile and run times of Filter (q = 0.25) on the GPT's largest
// matrices, full and half spectrum. Logged, not asserted: the machine may be shared.
//
//	SMI_BENCH_MEASURE=1 go test ./benchmarks -run TestFilterTiming -v
func TestFilterTiming(t *testing.T) {
	measurementsOnly(t)
	b := measureBackend(t)
	host, _ := os.Hostname()
	rng := rand.New(rand.NewPCG(41, 42))
	for _, dims := range [][]int{{384, 1536}, {1536, 384}, {65, 384}} {
		for _, half := range []bool{false, true} {
			values := make([]float32, dims[0]*dims[1])
			for i := range values {
				values[i] = float32(rng.NormFloat64())
			}
			input := tensors.FromFlatDataAndDimensions(values, dims...)
			hs, _ := spectral.HistoryShape(input.Shape())
			exec := MustNewExec(b, func(g, h *Node) []*Node {
				f, nh, k := spectral.Filter(g, h, 0.25, 0.99, half)
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
// (their shapes below; SMI_BENCH_MODEL = tiny, cpu (default) or paper), compiled as one graph
// the way optimizers.SMI builds it: each variable alone through Filter, or same-shape variables
// through one FilterBatch; and, batched, without the quantile (q = 0) and the forward and
// inverse FFTs alone. Medians of interleaved rounds; logged, not asserted.
//
//	SMI_BENCH_MEASURE=1 SMI_BENCH_MODEL=cpu go test ./benchmarks -run TestModelFilterTiming -v
func TestModelFilterTiming(t *testing.T) {
	measurementsOnly(t)
	b := measureBackend(t)
	type shape struct{ n, d, count int }
	presets := map[string]struct {
		shapes       []shape
		rounds, reps int
	}{
		"tiny":  {[]shape{{65, 32, 1}, {32, 32, 3}, {1, 32, 5}, {32, 96, 2}, {32, 128, 2}, {128, 32, 2}}, 15, 50},
		"cpu":   {[]shape{{65, 128, 1}, {64, 128, 1}, {1, 128, 9}, {128, 384, 4}, {128, 128, 4}, {128, 512, 4}, {512, 128, 4}}, 9, 10},
		"paper": {[]shape{{65, 384, 1}, {256, 384, 1}, {1, 384, 13}, {384, 1152, 6}, {384, 384, 6}, {384, 1536, 6}, {1536, 384, 6}}, 7, 2},
	}
	name := os.Getenv("SMI_BENCH_MODEL")
	if name == "" {
		name = "cpu"
	}
	preset, ok := presets[name]
	if !ok {
		t.Fatalf("SMI_BENCH_MODEL=%q: want tiny, cpu or paper", name)
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
				hs, _ := spectral.HistoryShape(shapes.Make(dtypes.Float32, m.n, m.d))
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
							f, h, k := spectral.Filter(in[i], in[i+1], q, 0.99, half)
							outs = append(outs, spectral.Blend(in[i], f, alpha), h, k)
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
					f, h, k, e := spectral.FilterBatch(Concatenate(gs, 0), Concatenate(hs, 0), q, 0.99, half)
					for j := range m.count {
						outs = append(outs, spectral.Blend(gs[j], Slice(f, AxisElem(j)), alpha))
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
