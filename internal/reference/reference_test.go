package reference

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFFT2: FFT2 is the 2-D DFT by its definition, and its inverse undoes it.
func TestFFT2(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dims := range [][2]int{{1, 1}, {1, 5}, {3, 1}, {4, 6}, {5, 7}} {
		n, d := dims[0], dims[1]
		g := make([]float64, n*d)
		for i := range g {
			g[i] = rng.NormFloat64()
		}
		F := RealFFT2(g, n, d)
		for k := range n {
			for l := range d {
				var want complex128
				for i := range n {
					for j := range d {
						want += complex(g[i*d+j], 0) * cmplx.Exp(complex(0, -2*math.Pi*(float64(i*k)/float64(n)+float64(j*l)/float64(d))))
					}
				}
				if cmplx.Abs(F[k*d+l]-want) > 1e-9 {
					t.Fatalf("%dx%d: F(%d, %d) = %v, the DFT's definition gives %v", n, d, k, l, F[k*d+l], want)
				}
				if m := Mirror(k*d+l, n, d); cmplx.Abs(F[m]-cmplx.Conj(F[k*d+l])) > 1e-9 {
					t.Fatalf("%dx%d: F(-k) is not conj(F(k)) at (%d, %d)", n, d, k, l)
				}
			}
		}
		for i, v := range FFT2(F, n, d, true) {
			if cmplx.Abs(v-complex(g[i], 0)) > 1e-12 {
				t.Fatalf("%dx%d: the inverse gives %v at %d, want %v", n, d, v, i, g[i])
			}
		}
	}
}

// TestQuantile: numpy.quantile's default method, on values numpy gives.
func TestQuantile(t *testing.T) {
	x := []float64{3, 1, 4, 1, 5, 9, 2, 6}
	// numpy.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0, 0.25, 0.5, 0.9, 1]) = [1, 1.75, 3.5, 6.9, 9]
	for q, want := range map[float64]float64{0: 1, 0.25: 1.75, 0.5: 3.5, 0.9: 6.9, 1: 9} {
		if got := Quantile(x, q); math.Abs(got-want) > 1e-12 {
			t.Errorf("Quantile(q=%g) = %g, want %g", q, got, want)
		}
		if got := Quantile32([]float32{3, 1, 4, 1, 5, 9, 2, 6}, q); math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("Quantile32(q=%g) = %g, want %g", q, got, want)
		}
	}
	if !math.IsNaN(Quantile([]float64{1, math.NaN()}, 0.5)) {
		t.Error("a NaN must give NaN")
	}
}

// TestMaskedFilter: keeping every bin gives the gradient back with all its energy; the stored
// bins and their Hermitian expansion agree with the full grid's history.
func TestMaskedFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n, d := 4, 6
	g := make([]float64, n*d)
	for i := range g {
		g[i] = rng.NormFloat64()
	}
	full, half := NewState(n, d, false), NewState(n, d, true)
	full.Step(g, 0, 0.5)
	half.Step(g, 0, 0.5)
	for i, v := range full.Filtered {
		if math.Abs(v-g[i]) > 1e-12 || math.Abs(half.Filtered[i]-g[i]) > 1e-12 {
			t.Fatalf("q = 0 changed the gradient at %d", i)
		}
	}
	if full.Kept != 1 || half.Kept != 1 {
		t.Errorf("q = 0 kept %g and %g of the energy", full.Kept, half.Kept)
	}
	if got := full.Stored(full.History); !slices.EqualFunc(got, half.History, func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }) {
		t.Errorf("stored bins %v, half-spectrum history %v", got, half.History)
	}
	if got := half.FullValues(half.History); !slices.EqualFunc(got, full.History, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
		t.Errorf("expanded history %v, full grid's %v", got, full.History)
	}
	for _, schedule := range []string{"constant", "linear", "cosine"} {
		a0, a1 := Alpha(0, 10, schedule, 0.1, 0.5), Alpha(20, 10, schedule, 0.1, 0.5)
		if math.Abs(a0-0.1) > 1e-12 || (schedule != "constant" && math.Abs(a1-0.5) > 1e-12) {
			t.Errorf("%s: alpha %g at the start, %g after the end", schedule, a0, a1)
		}
	}
}
