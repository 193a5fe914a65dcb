package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/internal/reference"
)

// Tolerances of the graph (float32 or float64) against the float64 reference, per step.
//
//   - History: max|H_graph - H_ref| <= (histTol(dtype) * log2(2N) + emaRounding(dtype, t)) * max|F|
//     after step t (0-based): the usual bound for a stable FFT's per-entry error relative to the
//     spectrum's largest entry, plus the rounding of the magnitudes and of the average itself.
//   - Threshold: |tau_graph - tau_ref| <= delta + 2 ulp(tau), where delta is the measured history
//     error above: the quantile (a lerp of two order statistics) moves by at most the largest
//     change of its inputs, so this holds only if the quantile is exact.
//   - Mask (tie rule): a bin whose reference history is within 2*delta + 2 ulp(tau) of tau_ref may
//     be kept by one side and dropped by the other: rounding of H alone can move it across the
//     threshold (this always happens for exact ties, such as the conjugate pairs H(k) = H(-k), or
//     the all-zero bins of a constant gradient). Every other bin must get the same decision.
//   - Filtered gradient: ||G~_graph - G~_ref(M_graph)||_2 <= (outTol(dtype) * log2(2N) + rounding of
//     the gradient's dtype) * ||g||_2, where G~_ref(M_graph) is the reference's float64 inverse
//     transform with the graph's mask (so that tie decisions do not count as errors).
//   - Kept energy: within keptTol(dtype) of the reference's ratio for the graph's mask.
func histTol(dt dtypes.DType) float64 {
	if dt == dtypes.Float64 {
		return 1e-15
	}
	return 1e-7
}

// emaRounding bounds, relative to max|F|, what the history's arithmetic adds to the FFT's error
// by step t (0-based), u being the unit roundoff of the compute dtype: the magnitude |F| is rounded
// once or twice (2u); H' = beta*H + (1-beta)*A rounds beta and 1-beta to the dtype, both products
// and the sum, at most 3u * max(H, A) <= 3u * max|F| per step (H and A are at most max|F|), and an
// earlier step's error shrinks by beta < 1 each step after. So (3(t+1) + 2)u in all. It is what
// lets a 1x1 gradient, whose FFT is exact (log2(2N) = 1), pass: its history still rounds.
func emaRounding(dt dtypes.DType, step int) float64 {
	u := 0x1p-24
	if dt == dtypes.Float64 {
		u = 0x1p-53
	}
	return float64(3*(step+1)+2) * u
}

func outTol(dt dtypes.DType) float64 {
	if dt == dtypes.Float64 {
		return 1e-15
	}
	return 1e-7
}

// roundingOf is the relative rounding of storing a value in the gradient's dtype.
func roundingOf(dt dtypes.DType) float64 {
	switch dt {
	case dtypes.BFloat16:
		return 0x1p-8
	case dtypes.Float16:
		return 0x1p-11
	}
	return 0
}

// keptTol: keptEnergy is returned as float32 whatever the compute dtype.
func keptTol(dt dtypes.DType) float64 {
	if dt == dtypes.Float64 {
		return 1e-7
	}
	return 1e-5
}

// ulpOf is the spacing of the compute dtype's floats at v.
func ulpOf(v float64, dt dtypes.DType) float64 {
	v = math.Abs(v)
	if dt == dtypes.Float64 {
		return math.Nextafter(v, math.Inf(1)) - v
	}
	f := float32(v)
	return float64(math.Nextafter32(f, float32(math.Inf(1))) - f)
}

// valueKinds are the gradient contents the shape test cycles through.
var valueKinds = []string{"gaussian", "smooth+noise", "quantized", "zeros", "constant", "huge", "tiny", "mixed"}

// gradientValues returns deterministic n*d gradient values of a kind, for a step; representable
// in dtype (huge and tiny scales are chosen per dtype).
func gradientValues(rng *rand.Rand, kind string, n, d int, dt dtypes.DType, step int) []float64 {
	v := make([]float64, n*d)
	huge, tiny := 1e30, 1e-30
	switch dt {
	case dtypes.Float64:
		huge, tiny = 1e200, 1e-200
	case dtypes.Float16:
		huge, tiny = 1e3, 1e-3
	}
	switch kind {
	case "gaussian":
		for i := range v {
			v[i] = rng.NormFloat64()
		}
	case "smooth+noise":
		// A few low frequencies that drift with the step, plus noise: a gradient-like matrix.
		phase := 0.3 * float64(step)
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				x, y := float64(i)/float64(n), float64(j)/float64(d)
				v[i*d+j] = math.Sin(2*math.Pi*x+phase) + 0.5*math.Cos(2*math.Pi*2*y-phase) +
					0.3*math.Sin(2*math.Pi*(x+3*y)) + 0.2*rng.NormFloat64()
			}
		}
	case "quantized":
		for i := range v {
			v[i] = float64(rng.IntN(5)-2) * 0.25
		}
	case "zeros":
	case "constant":
		for i := range v {
			v[i] = 0.7
		}
	case "huge":
		for i := range v {
			v[i] = rng.NormFloat64() * huge
		}
	case "tiny":
		for i := range v {
			v[i] = rng.NormFloat64() * tiny
		}
	case "mixed": // Magnitudes over many decades, both signs.
		for i := range v {
			v[i] = math.Copysign(math.Pow(10, rng.Float64()*12-6), rng.NormFloat64())
		}
	default:
		panic(kind)
	}
	return v
}

// filterCase is one configuration of the shape test.
type filterCase struct {
	dims    []int
	dtype   dtypes.DType
	q, beta float64
	half    bool
	kind    string
	// values, when set, replaces kind: the gradient's n*d values at a step (the fuzz target's).
	values func(step int) []float64
	steps  int
}

func (c filterCase) String() string {
	mode := "full"
	if c.half {
		mode = "half"
	}
	return fmt.Sprintf("%v/%s/q=%g/beta=%g/%s/%s", c.dims, c.dtype, c.q, c.beta, mode, c.kind)
}

// testShapes returns the shapes of the shape test: the GPT's, edge cases, primes, powers of two,
// rank 3 and 4, and seeded random shapes, at least 200 in all.
func testShapes() [][]int {
	list := [][]int{
		// The Shakespeare GPT's variable shapes.
		{65, 384}, {384, 1152}, {384, 1536}, {1536, 384}, {256, 384}, {384}, {384, 384},
		// Degenerate matrix views.
		{1, 1}, {1}, {2}, {3}, {1, 2}, {1, 3}, {1, 7}, {1, 64}, {1, 127}, {1, 384},
		{2, 1}, {3, 1}, {7, 1}, {64, 1}, {127, 1}, {384, 1}, {2, 2}, {2, 3}, {3, 2},
		// Primes.
		{7, 13}, {13, 7}, {11, 17}, {17, 11}, {3, 5}, {5, 3}, {29, 31}, {31, 29}, {97, 3}, {3, 97}, {101, 103}, {37, 41},
		// Powers of two.
		{4, 4}, {8, 8}, {16, 16}, {32, 32}, {64, 64}, {128, 128}, {8, 256}, {256, 8}, {2, 512}, {512, 2}, {16, 64}, {64, 16},
		// Rank 3 and 4.
		{2, 3, 5}, {4, 8, 16}, {3, 7, 11}, {1, 1, 9}, {5, 1, 1}, {2, 65, 6}, {6, 6, 64},
		{2, 3, 4, 5}, {2, 2, 8, 16}, {1, 1, 1, 7}, {3, 1, 5, 1}, {2, 1, 3, 2}, {4, 3, 2, 9},
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for len(list) < 210 {
		rank := 1 + rng.IntN(4)
		dims := make([]int, rank)
		size := 1
		for i := range dims {
			dims[i] = 1 + rng.IntN(24)
			if rng.IntN(4) == 0 {
				dims[i] = 1 + rng.IntN(80)
			}
			size *= dims[i]
		}
		if size > 1024 { // Most random shapes stay in the pairwise quantile's range: quick to compile.
			if size > 20000 || rng.IntN(4) != 0 {
				continue
			}
		}
		list = append(list, dims)
	}
	return list
}

// filterCases assigns a configuration to every test shape, cycling q, beta, full/half spectrum,
// value kinds and dtypes so that each appears across small and large shapes.
func filterCases() []filterCase {
	qs := []float64{0, 0.25, 0.5, 0.9}
	betas := []float64{0.9, 0.99, 0, 0.5}
	var cases []filterCase
	for i, dims := range testShapes() {
		c := filterCase{
			dims:  dims,
			dtype: dtypes.Float32,
			q:     qs[i%4],
			beta:  betas[(i/4)%4],
			half:  (i/2)%2 == 1,
			kind:  valueKinds[i%len(valueKinds)],
			steps: 3,
		}
		switch {
		case i%10 == 3:
			c.dtype = dtypes.Float64
		case i%10 == 7:
			c.dtype = dtypes.BFloat16
		case i%20 == 9:
			c.dtype = dtypes.Float16
		}
		if shapes.Make(dtypes.Float32, dims...).Size() > 100_000 {
			c.steps = 2
		}
		cases = append(cases, c)
	}
	return cases
}

// filterExec compiles Filter for one case: inputs the gradient (float32, or float64 for
// float64 cases; converted to the case's dtype in the graph) and the history; outputs the
// gradient as Filter saw it, the filtered gradient, the new history, kept energy, tau and mask.
func filterExec(b backends.Backend, c filterCase) *Exec {
	return MustNewExec(b, func(g, h *Node) []*Node {
		in := ConvertDType(g, c.dtype)
		p := filterParts(in, h, c.q, c.beta, c.half)
		tau := p.tau
		if tau == nil {
			tau = ScalarZero(g.Graph(), h.DType())
		}
		return []*Node{ConvertDType(in, g.DType()), ConvertDType(p.filtered, g.DType()), p.history, p.keptEnergy, tau, p.mask}
	})
}

// stepReport summarizes one step's agreement, for logging the worst cases.
type stepReport struct {
	histErr  float64 // max|H_graph - H_ref| / max|F|.
	outErr   float64 // ||G_graph - G_ref||_2 / ||g||_2.
	ties     int     // Bins within the tie band.
	keptDiff float64
}

// runFilterCase runs the graph and the reference side by side for c.steps steps and checks every
// tolerance above. The graph's history is fed back into the graph, the reference keeps its own.
func runFilterCase(t *testing.T, exec *Exec, c filterCase, seed uint64) (worst stepReport) {
	t.Helper()
	n, d, _ := MatrixView(shapes.Make(dtypes.Float32, c.dims...))
	hShape, ok := HistoryShape(shapes.Make(c.dtype, c.dims...))
	if !ok {
		t.Errorf("%s: not filterable", c)
		return
	}
	cdt := hShape.DType
	N := n * d
	logN := math.Log2(float64(2 * N))
	rng := rand.New(rand.NewPCG(seed, 99))
	ref := reference.NewState(n, d, c.half)
	history := tensors.FromShape(hShape)
	maxF := 0.0
	for step := range c.steps {
		var values []float64
		if c.values != nil {
			values = c.values(step)
		} else {
			values = gradientValues(rng, c.kind, n, d, c.dtype, step)
		}
		var input *tensors.Tensor
		if c.dtype == dtypes.Float64 {
			input = tensors.FromFlatDataAndDimensions(values, c.dims...)
		} else {
			v32 := make([]float32, len(values))
			for i, v := range values {
				v32[i] = float32(v)
			}
			input = tensors.FromFlatDataAndDimensions(v32, c.dims...)
		}
		outs := exec.MustExec(input, history)
		seen, filtered := flat64(outs[0]), flat64(outs[1])
		history = outs[2]
		histG := flat64(outs[2])
		kept := float64(outs[3].Value().(float32))
		tauG := flat64(outs[4])[0]
		maskG := tensors.MustCopyFlatData[bool](outs[5])
		if got := outs[1].Shape(); !got.Equal(input.Shape()) {
			t.Errorf("%s: filtered has shape %s, want %s", c, got, input.Shape())
			return
		}

		ref.Step(seen, c.q, c.beta)
		for _, f := range ref.Spectrum {
			maxF = math.Max(maxF, abs(f))
		}
		// History, on the stored bins.
		refHist, refMask := ref.Stored(ref.History), ref.StoredMask()
		delta := 0.0
		for i, h := range refHist {
			delta = math.Max(delta, math.Abs(histG[i]-h))
		}
		if !(delta <= (histTol(cdt)*logN+emaRounding(cdt, step))*maxF) {
			t.Errorf("%s step %d: history error %g > (%g * log2(2N) + %g) * max|F| (max|F| = %g)", c, step, delta,
				histTol(cdt), emaRounding(cdt, step), maxF)
		}
		// The mask is exactly 1[H >= tau] for the returned history and threshold (XLA may
		// evaluate H in several fusions; they must agree).
		if c.q > 0 {
			for i, h := range histG {
				if (h >= tauG) != maskG[i] {
					t.Errorf("%s step %d: bin %d has H %v, tau %v, but mask %v", c, step, i, h, tauG, maskG[i])
					break
				}
			}
		}
		// Threshold and mask against the reference.
		ties := 0
		if c.q > 0 {
			ulp := ulpOf(ref.Tau, cdt)
			if !(math.Abs(tauG-ref.Tau) <= delta+2*ulp) {
				t.Errorf("%s step %d: tau %g, reference %g: |diff| %g > history error %g + 2 ulp", c, step, tauG, ref.Tau, math.Abs(tauG-ref.Tau), delta)
			}
			band := 2*delta + 2*ulp
			bad := 0
			for i, h := range refHist {
				if math.Abs(h-ref.Tau) <= band {
					ties++
				} else if maskG[i] != refMask[i] {
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s step %d: %d bins outside the tie band (|H - tau| > %g) masked differently", c, step, bad, band)
			}
		} else {
			for i, m := range maskG {
				if !m {
					t.Errorf("%s step %d: q=0 dropped bin %d", c, step, i)
					break
				}
			}
		}
		// Filtered gradient and kept energy, against the reference with the graph's mask.
		want, wantKept := ref.Apply(maskG)
		diff := make([]float64, len(want))
		for i, w := range want {
			diff[i] = filtered[i] - w
		}
		outErr, gNorm := norm2(diff), norm2(seen)
		if bound := (outTol(cdt)*logN + roundingOf(c.dtype)) * gNorm; !(outErr <= bound) {
			t.Errorf("%s step %d: ||filtered - reference||_2 = %g > %g (||g||_2 = %g)", c, step, outErr, bound, gNorm)
		}
		if !(math.Abs(kept-wantKept) <= keptTol(cdt)) {
			t.Errorf("%s step %d: kept energy %g, reference %g", c, step, kept, wantKept)
		}
		r := stepReport{ties: ties, keptDiff: math.Abs(kept - wantKept)}
		if maxF > 0 {
			r.histErr = delta / maxF
		}
		if gNorm > 0 {
			r.outErr = outErr / gNorm
		}
		worst.histErr = math.Max(worst.histErr, r.histErr)
		worst.outErr = math.Max(worst.outErr, r.outErr)
		worst.keptDiff = math.Max(worst.keptDiff, r.keptDiff)
		worst.ties = max(worst.ties, r.ties)
	}
	return worst
}

// flat64 returns a float32 or float64 tensor's values as float64.
func flat64(t *tensors.Tensor) []float64 {
	if t.DType() == dtypes.Float64 {
		return tensors.MustCopyFlatData[float64](t)
	}
	v32 := tensors.MustCopyFlatData[float32](t)
	v := make([]float64, len(v32))
	for i, x := range v32 {
		v[i] = float64(x)
	}
	return v
}

// norm2 is the Euclidean norm, scaled so that huge and tiny values neither overflow nor underflow.
func norm2(v []float64) float64 {
	peak := 0.0
	for _, x := range v {
		peak = math.Max(peak, math.Abs(x))
	}
	if peak == 0 || math.IsInf(peak, 0) || math.IsNaN(peak) {
		return peak
	}
	sum := 0.0
	for _, x := range v {
		sum += (x / peak) * (x / peak)
	}
	return peak * math.Sqrt(sum)
}

func abs(c complex128) float64 { return math.Hypot(real(c), imag(c)) }

// TestFilterShapes compares Filter with the reference on every case of filterCases.
func TestFilterShapes(t *testing.T) {
	b := testBackend(t)
	cases := filterCases()
	if testing.Short() {
		cases = cases[:40]
	}
	worst := map[dtypes.DType]stepReport{}
	ties := 0
	var compile, run time.Duration
	for i, c := range cases {
		start := time.Now()
		exec := filterExec(b, c)
		hs, _ := HistoryShape(shapes.Make(c.dtype, c.dims...))
		inDT := dtypes.Float32
		if c.dtype == dtypes.Float64 {
			inDT = dtypes.Float64
		}
		if err := exec.PreCompile(tensors.FromShape(shapes.Make(inDT, c.dims...)), tensors.FromShape(hs)); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		compile += time.Since(start)
		start = time.Now()
		r := runFilterCase(t, exec, c, uint64(i))
		exec.Finalize()
		run += time.Since(start)
		w := worst[c.dtype]
		w.histErr = math.Max(w.histErr, r.histErr)
		w.outErr = math.Max(w.outErr, r.outErr)
		w.keptDiff = math.Max(w.keptDiff, r.keptDiff)
		worst[c.dtype] = w
		if r.ties > 0 {
			ties++
		}
	}
	for dt, w := range worst {
		t.Logf("%s gradients: worst history error %.2e * max|F|, worst output error %.2e * ||g||_2, worst kept-energy difference %.2e",
			dt, w.histErr, w.outErr, w.keptDiff)
	}
	t.Logf("%d cases (%d shapes), %d with bins in the tie band; compile %v, run and reference %v",
		len(cases), len(cases), ties, compile, run)
}
