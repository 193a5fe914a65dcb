package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/internal/reference"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Quantile: 0.25, Beta: 0.99, Schedule: ScheduleCosine, AlphaStart: 0.1, AlphaEnd: 0.5, TotalSteps: 5000}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, c := range []Config{
		{Quantile: 0, Beta: 0, Schedule: ScheduleConstant, AlphaStart: 0, AlphaEnd: 1, TotalSteps: 1},
		{Quantile: 0.999, Beta: 0.999, Schedule: ScheduleLinear, AlphaStart: 1, AlphaEnd: 0, TotalSteps: 1, HalfSpectrum: true},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, tc := range []struct {
		mutate func(*Config)
		want   []string // Substrings of the error: the field and its valid range.
	}{
		{func(c *Config) { c.Quantile = 1 }, []string{"Quantile", "[0, 1)"}},
		{func(c *Config) { c.Quantile = -0.1 }, []string{"Quantile", "[0, 1)"}},
		{func(c *Config) { c.Quantile = math.NaN() }, []string{"Quantile", "[0, 1)"}},
		{func(c *Config) { c.Beta = 1 }, []string{"Beta", "[0, 1)"}},
		{func(c *Config) { c.Beta = -1e-9 }, []string{"Beta", "[0, 1)"}},
		{func(c *Config) { c.AlphaStart = 1.5 }, []string{"AlphaStart", "[0, 1]"}},
		{func(c *Config) { c.AlphaStart = -0.5 }, []string{"AlphaStart", "[0, 1]"}},
		{func(c *Config) { c.AlphaEnd = 2 }, []string{"AlphaEnd", "[0, 1]"}},
		{func(c *Config) { c.AlphaEnd = math.Inf(-1) }, []string{"AlphaEnd", "[0, 1]"}},
		{func(c *Config) { c.TotalSteps = 0 }, []string{"TotalSteps", "> 0"}},
		{func(c *Config) { c.TotalSteps = -3 }, []string{"TotalSteps", "> 0"}},
		{func(c *Config) { c.Schedule = "exponential" }, []string{"Schedule", "constant", "linear", "cosine"}},
		{func(c *Config) { c.Schedule = "" }, []string{"Schedule"}},
	} {
		c := good
		tc.mutate(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%+v: no error", c)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", c, err, w)
			}
		}
	}
}

func TestHistoryShape(t *testing.T) {
	for _, tc := range []struct {
		grad shapes.Shape
		want shapes.Shape
		ok   bool
	}{
		{shapes.Make(dtypes.Float32, 65, 384), shapes.Make(dtypes.Float32, 65, 193), true},
		{shapes.Make(dtypes.Float32, 7, 13), shapes.Make(dtypes.Float32, 7, 7), true},
		{shapes.Make(dtypes.Float64, 384), shapes.Make(dtypes.Float64, 1, 193), true},
		{shapes.Make(dtypes.BFloat16, 2, 3, 5), shapes.Make(dtypes.Float32, 6, 3), true},
		{shapes.Make(dtypes.Float16, 2, 3, 4, 5), shapes.Make(dtypes.Float32, 24, 3), true},
		{shapes.Make(dtypes.Float32, 9, 1), shapes.Make(dtypes.Float32, 9, 1), true},
		{shapes.Make(dtypes.Float32, 9, 2), shapes.Make(dtypes.Float32, 9, 2), true},
		{shapes.Make(dtypes.Float32), shapes.Shape{}, false},
		{shapes.Make(dtypes.Float32, 0, 4), shapes.Shape{}, false},
		{shapes.Make(dtypes.Complex64, 4, 4), shapes.Shape{}, false},
		{shapes.Make(dtypes.Int32, 4, 4), shapes.Shape{}, false},
	} {
		got, ok := HistoryShape(tc.grad)
		if ok != tc.ok || (ok && !got.Equal(tc.want)) {
			t.Errorf("HistoryShape(%s) = %s, %v; want %s, %v", tc.grad, got, ok, tc.want, tc.ok)
		}
	}
}

// TestFilterPanics checks the graph-building errors of Filter, HistoryQuantile and Blend: each
// input is wrong in one way only, and the message must name it.
func TestFilterPanics(t *testing.T) {
	b := testBackend(t)
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	for name, tc := range map[string]struct {
		fn   func(g *Graph) *Node
		want string
	}{
		"history shape": {func(g *Graph) *Node {
			f, _, _ := Filter(Zeros(g, f32(4, 6)), Zeros(g, f32(4, 6)), 0.5, 0.9, false)
			return f
		}, "history has shape (Float32)[4 6], want (Float32)[4 4]"},
		"history dtype": {func(g *Graph) *Node {
			f, _, _ := Filter(Zeros(g, shapes.Make(dtypes.BFloat16, 4, 6)), Zeros(g, shapes.Make(dtypes.BFloat16, 4, 4)), 0.5, 0.9, false)
			return f
		}, "want (Float32)[4 4]"},
		"scalar": {func(g *Graph) *Node {
			f, _, _ := Filter(Const(g, float32(1)), Const(g, float32(1)), 0.5, 0.9, false)
			return f
		}, "is not filtered"},
		"complex": {func(g *Graph) *Node {
			f, _, _ := Filter(Zeros(g, shapes.Make(dtypes.Complex64, 4)), Zeros(g, f32(1, 3)), 0.5, 0.9, false)
			return f
		}, "is not filtered"},
		"q = 1": {func(g *Graph) *Node {
			f, _, _ := Filter(Zeros(g, f32(4)), Zeros(g, f32(1, 3)), 1, 0.9, false)
			return f
		}, "quantile must be in [0, 1)"},
		"beta = 1": {func(g *Graph) *Node {
			f, _, _ := Filter(Zeros(g, f32(4)), Zeros(g, f32(1, 3)), 0.5, 1, false)
			return f
		}, "beta must be in [0, 1)"},
		"history quantile shape": {func(g *Graph) *Node {
			return HistoryQuantile(Zeros(g, f32(4, 6)), 6, 0.5, false)
		}, "is not the float32/float64 [n, 4] history of an n x 6 gradient"},
		"history quantile q": {func(g *Graph) *Node {
			return HistoryQuantile(Zeros(g, f32(4, 4)), 6, 1.5, false)
		}, "q must be in [0, 1]"},
		"blend shapes": {func(g *Graph) *Node {
			return Blend(Zeros(g, f32(4)), Zeros(g, f32(5)), Const(g, float32(0.5)))
		}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatalf("no panic")
				}
				if msg := fmt.Sprint(r); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %q does not contain %q", msg, tc.want)
				}
			}()
			MustExecOnce(b, tc.fn)
		})
	}
}

// TestHistoryQuantile checks that HistoryQuantile on the stored bins equals Quantile over the
// full n x d history they stand for (and, with halfSpectrum, Quantile over the stored bins).
func TestHistoryQuantile(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, nd := range [][2]int{{7, 13}, {8, 12}, {1, 40}, {33, 1}, {9, 2}, {40, 70}} {
		n, d := nd[0], nd[1]
		bins := HalfBins(d)
		half := make([]float32, n*bins)
		for i := range half {
			half[i] = float32(rng.IntN(20)) * 0.25 // Ties.
		}
		// A history on the stored bins must be mirror-consistent where a column holds both k and
		// -k (columns 0 and d/2): those bins are equal in any history Filter builds.
		for i := range n {
			for _, j := range []int{0, d / 2} {
				if j < bins && (j == 0 || 2*j == d) {
					half[((n-i)%n)*bins+j] = half[i*bins+j]
				}
			}
		}
		ref := reference.NewState(n, d, false)
		full64 := ref.FullValues(func() []float64 {
			v := make([]float64, len(half))
			for i, x := range half {
				v[i] = float64(x)
			}
			return v
		}())
		full := make([]float32, len(full64))
		for i, x := range full64 {
			full[i] = float32(x)
		}
		for _, q := range []float64{0.25, 0.5, 0.9} {
			outs := MustExecOnceN(b, func(h *Node) []*Node {
				return []*Node{HistoryQuantile(h, d, q, false), HistoryQuantile(h, d, q, true)}
			}, tensors.FromFlatDataAndDimensions(half, n, bins))
			if got, want := outs[0].Value().(float32), reference.Quantile32(full, q); got != want {
				t.Errorf("%dx%d q=%v: HistoryQuantile %v, quantile of the full history %v", n, d, q, got, want)
			}
			if got, want := outs[1].Value().(float32), reference.Quantile32(half, q); got != want {
				t.Errorf("%dx%d q=%v half: HistoryQuantile %v, quantile of the stored bins %v", n, d, q, got, want)
			}
		}
	}
}

// TestAlpha checks the schedules against docs/ALGORITHM.md's formulas (internal/reference) and that they
// hit their end points exactly: alpha(0) = AlphaStart and alpha(t) = AlphaEnd for t >= T.
func TestAlpha(t *testing.T) {
	b := testBackend(t)
	const total = 1000
	steps := []int32{0, 1, 250, 499, 500, 501, 999, 1000, 1001, 5000}
	for _, cfg := range []Config{
		{Schedule: ScheduleConstant, AlphaStart: 0.3, AlphaEnd: 0.9, TotalSteps: total},
		{Schedule: ScheduleLinear, AlphaStart: 0.1, AlphaEnd: 0.9, TotalSteps: total},
		{Schedule: ScheduleLinear, AlphaStart: 0.1, AlphaEnd: 0.3, TotalSteps: total},
		{Schedule: ScheduleCosine, AlphaStart: 0.1, AlphaEnd: 0.5, TotalSteps: total},
		{Schedule: ScheduleCosine, AlphaStart: 0.7, AlphaEnd: 0.1, TotalSteps: total},
	} {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.BFloat16} {
			exec := MustNewExec(b, func(step *Node) *Node { return ConvertDType(Alpha(step, cfg, dt), dtypes.Float64) })
			for _, s := range steps {
				got := exec.MustExec(s)[0].Value().(float64)
				want := reference.Alpha(int(s), cfg.TotalSteps, string(cfg.Schedule), cfg.AlphaStart, cfg.AlphaEnd)
				tol := 1e-6
				switch dt {
				case dtypes.Float64:
					tol = 1e-15
				case dtypes.BFloat16:
					tol = 4e-3
				}
				if math.Abs(got-want) > tol {
					t.Errorf("%s %v->%v %s step %d: alpha %v, want %v", cfg.Schedule, cfg.AlphaStart, cfg.AlphaEnd, dt, s, got, want)
				}
				var end float64
				switch {
				case s == 0 || cfg.Schedule == ScheduleConstant:
					end = cfg.AlphaStart
				case s >= total:
					end = cfg.AlphaEnd
				default:
					continue
				}
				if exact := roundTo(end, dt); got != exact {
					t.Errorf("%s %s step %d: alpha %v, want exactly %v", cfg.Schedule, dt, s, got, exact)
				}
			}
		}
	}
	// The step may be any numeric dtype.
	cfg := Config{Schedule: ScheduleLinear, AlphaStart: 0, AlphaEnd: 1, TotalSteps: 4}
	for _, step := range []any{int64(1), uint8(1), float32(1), float64(1)} {
		got := MustExecOnce(b, func(s *Node) *Node { return Alpha(s, cfg, dtypes.Float32) }, step).Value().(float32)
		if got != 0.25 {
			t.Errorf("step %T(1): alpha %v, want 0.25", step, got)
		}
	}
}

// roundTo rounds v to dt's precision, as a float64.
func roundTo(v float64, dt dtypes.DType) float64 {
	switch dt {
	case dtypes.Float64:
		return v
	case dtypes.BFloat16:
		// Round to nearest even on the upper 16 bits of the float32.
		bits := math.Float32bits(float32(v))
		bits = (bits + 0x7FFF + (bits>>16)&1) &^ 0xFFFF
		return float64(math.Float32frombits(bits))
	}
	return float64(float32(v))
}

// TestBlend checks alpha = 0 returns g and alpha = 1 returns the filtered gradient, exactly, and
// an intermediate alpha against the formula, for each dtype.
func TestBlend(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(21, 22))
	g := make([]float32, 24)
	f := make([]float32, 24)
	for i := range g {
		g[i], f[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.BFloat16, dtypes.Float16} {
		exec := MustNewExec(b, func(g, f, a *Node) []*Node {
			gd, fd := ConvertDType(g, dt), ConvertDType(f, dt)
			out := Blend(gd, fd, a)
			return []*Node{ConvertDType(gd, dtypes.Float64), ConvertDType(fd, dtypes.Float64), ConvertDType(out, dtypes.Float64), ConvertDType(out, dtypes.Float32)}
		})
		for _, alpha := range []float32{0, 1, 0.3} {
			outs := exec.MustExec(tensors.FromFlatDataAndDimensions(g, 4, 6), tensors.FromFlatDataAndDimensions(f, 4, 6), alpha)
			gs, fs, out := flat64(outs[0]), flat64(outs[1]), flat64(outs[2])
			if outs[2].Shape().Size() != 24 {
				t.Fatalf("shape %s", outs[2].Shape())
			}
			for i := range out {
				want := (1-float64(alpha))*gs[i] + float64(alpha)*fs[i]
				switch {
				case alpha == 0 && out[i] != gs[i]:
					t.Errorf("%s alpha=0: entry %d = %v, want g = %v", dt, i, out[i], gs[i])
				case alpha == 1 && out[i] != fs[i]:
					t.Errorf("%s alpha=1: entry %d = %v, want filtered = %v", dt, i, out[i], fs[i])
				case math.Abs(out[i]-want) > (1e-6+roundingOf(dt))*math.Max(1, math.Abs(want)):
					t.Errorf("%s alpha=%v: entry %d = %v, want %v", dt, alpha, i, out[i], want)
				}
			}
		}
	}
}

// TestFilterProperties checks, against the host reference where needed:
//   - q = 0 returns g up to FFT rounding, full and half spectrum;
//   - the mask is conjugate-symmetric except for mirror pairs inside the tie band, and the
//     imaginary part discarded by Re() is rounding plus what those pairs contribute;
//   - the kept fraction is 1-q: exactly N - ceil(q*(N-1)) bins, or N - floor(q*(N-1)) when the rank
//     is an integer, plus the bins tied with tau;
//   - for d <= 2 the half spectrum holds every bin, so it gives the full spectrum's result.
func TestFilterProperties(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(31, 32))
	for _, dims := range [][]int{{16, 24}, {7, 13}, {65, 384}, {33, 1}, {1, 40}, {9, 2}} {
		n, d, _ := MatrixView(shapes.Make(dtypes.Float32, dims...))
		N := n * d
		values := gradientValues(rng, "smooth+noise", n, d, dtypes.Float32, 0)
		v32 := make([]float32, N)
		for i, v := range values {
			v32[i] = float32(v)
			values[i] = float64(v32[i])
		}
		input := tensors.FromFlatDataAndDimensions(v32, dims...)
		gNorm := norm2(values)
		tol := 1e-7 * math.Log2(float64(2*N)) * gNorm

		for _, half := range []bool{false, true} {
			// q = 0: the identity up to rounding.
			hs, _ := HistoryShape(input.Shape())
			out := MustExecOnce(b, func(g, h *Node) *Node { f, _, _ := Filter(g, h, 0, 0.9, half); return f }, input, tensors.FromShape(hs))
			diff := flat64(out)
			for i := range diff {
				diff[i] -= values[i]
			}
			if e := norm2(diff); e > tol {
				t.Errorf("%v half=%v q=0: ||Filter(g) - g|| = %g > %g", dims, half, e, tol)
			}
		}

		for _, q := range []float64{0.25, 0.5, 0.9} {
			hs, _ := HistoryShape(input.Shape())
			outs := MustExecOnceN(b, func(g, h *Node) []*Node {
				p := filterParts(g, h, q, 0, false)
				return []*Node{p.history, p.tau, p.mask}
			}, input, tensors.FromShape(hs))
			// Filter stores the real-FFT bins; checked here on the full grid they stand for.
			ref := reference.NewState(n, d, false)
			ref.Step(values, q, 0)
			hist, tau, mask := ref.FullValues(flat64(outs[0])), flat64(outs[1])[0], ref.FullMask(tensors.MustCopyFlatData[bool](outs[2]))
			delta := 0.0
			for i, h := range ref.History {
				delta = math.Max(delta, math.Abs(hist[i]-h))
			}
			band := 2*delta + 2*ulpOf(tau, dtypes.Float32)
			asymmetricEnergy := 0.0
			for i := range mask {
				if m := ref.Mirror(i); mask[i] != mask[m] {
					if math.Abs(hist[i]-tau) > band && math.Abs(hist[m]-tau) > band {
						t.Errorf("%v q=%v: bins %d and %d (mirror) masked differently outside the tie band", dims, q, i, m)
					}
					f := ref.Spectrum[i]
					asymmetricEnergy += real(f)*real(f) + imag(f)*imag(f)
				}
			}
			if im := ref.ImagNorm(mask); im > tol+math.Sqrt(asymmetricEnergy/float64(N)) {
				t.Errorf("%v q=%v: discarded imaginary part %g > rounding %g + asymmetric pairs %g", dims, q, im, tol, math.Sqrt(asymmetricEnergy/float64(N)))
			}
			kept, tied := 0, 0
			for i, m := range mask {
				if m {
					kept++
				}
				if hist[i] == tau {
					tied++
				}
			}
			rank := q * float64(N-1)
			want := N - int(math.Ceil(rank))
			if rank == math.Floor(rank) {
				want = N - int(rank)
			}
			if kept < want || kept > want+tied {
				t.Errorf("%v q=%v: kept %d of %d bins, want %d (+ up to %d tied with tau)", dims, q, kept, N, want, tied)
			}
		}

		if d <= 2 {
			full, _ := HistoryShape(input.Shape())
			outs := MustExecOnceN(b, func(g, hf, hh *Node) []*Node {
				f1, _, k1 := Filter(g, hf, 0.5, 0.9, false)
				f2, _, k2 := Filter(g, hh, 0.5, 0.9, true)
				return []*Node{f1, f2, k1, k2}
			}, input, tensors.FromShape(full), tensors.FromShape(full))
			a, c := flat64(outs[0]), flat64(outs[1])
			for i := range a {
				a[i] -= c[i]
			}
			if e := norm2(a); e > 2*tol {
				t.Errorf("%v: d <= 2, half and full spectrum differ by %g", dims, e)
			}
		}
	}
}
