package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/reference"
)

// testBackend returns the XLA backend, skipping the test when GOMLX_BACKEND selects one without FFT.
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "xla" {
		t.Skipf("backend %q: the spectral tests need XLA (FFT, complex numbers)", b.Name())
	}
	return b
}

// quantileQs are the quantiles checked for every input: the paper's settings, the extremes, and
// ranks that fall between order statistics on both sides of the lerp's 0.5 switch.
var quantileQs = []float64{0, 0.25, 0.5, 0.9, 1, 0.37, 0.8123}

// quantileCase is one input for TestQuantile; values are float32 on the host and converted to
// dtype in the graph (the graph also returns the converted values, so the reference sees exactly
// what Quantile saw).
type quantileCase struct {
	name   string
	dims   []int
	dtype  dtypes.DType
	values []float32 // For float64 cases, values64 is used instead.
	vals64 []float64
	// both also runs the order-statistic methods Quantile does not pick for this size.
	both bool
}

func quantileCases() []quantileCase {
	rng := rand.New(rand.NewPCG(3, 4))
	gauss := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	ties := make([]float32, 257)
	for i := range ties {
		ties[i] = float32(rng.IntN(5) - 2)
	}
	signedZeros := make([]float32, 64)
	for i := range signedZeros {
		if i%2 == 0 {
			signedZeros[i] = float32(math.Copysign(0, -1))
		}
	}
	signedZeros[5], signedZeros[9] = -1, 2
	infs := gauss(99, 1)
	infs[3], infs[50], infs[70] = float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(1))
	nans := gauss(20, 1)
	nans[7] = float32(math.NaN())
	wide := make([]float32, 500) // Every binade of float32, subnormals included, both signs.
	for i := range wide {
		v := float32(math.Ldexp(1+rng.Float64(), rng.IntN(276)-149))
		if rng.IntN(2) == 0 {
			v = -v
		}
		wide[i] = v
	}
	constant := slices.Repeat([]float32{0.3}, 77)
	g64 := make([]float64, 3*331)
	for i := range g64 {
		g64[i] = rng.NormFloat64() * 1e200 // Beyond float32's range: must use 64-bit keys.
	}
	ties64 := make([]float64, 100)
	for i := range ties64 {
		ties64[i] = float64(rng.IntN(3)) * 1e-300
	}
	return []quantileCase{
		{name: "gaussian", dims: []int{10, 100}, dtype: dtypes.Float32, values: gauss(1000, 1)},
		{name: "gaussian large", both: true, dims: []int{3, 1001}, dtype: dtypes.Float32, values: gauss(3003, 1)},
		{name: "single", both: true, dims: []int{1}, dtype: dtypes.Float32, values: []float32{-3.5}},
		{name: "scalar", dims: nil, dtype: dtypes.Float32, values: []float32{2.25}},
		{name: "pair", dims: []int{2}, dtype: dtypes.Float32, values: []float32{5, -1}},
		{name: "ties", both: true, dims: []int{257}, dtype: dtypes.Float32, values: ties},
		{name: "signed zeros", dims: []int{8, 8}, dtype: dtypes.Float32, values: signedZeros},
		{name: "infinities", dims: []int{9, 11}, dtype: dtypes.Float32, values: infs},
		{name: "NaN", both: true, dims: []int{20}, dtype: dtypes.Float32, values: nans},
		{name: "all binades", both: true, dims: []int{5, 10, 10}, dtype: dtypes.Float32, values: wide},
		{name: "constant", dims: []int{7, 11}, dtype: dtypes.Float32, values: constant},
		{name: "bfloat16", dims: []int{3, 41}, dtype: dtypes.BFloat16, values: gauss(123, 10)},
		{name: "float16", dims: []int{61}, dtype: dtypes.Float16, values: gauss(61, 100)},
		{name: "float64", dims: []int{3, 331}, dtype: dtypes.Float64, vals64: g64},
		{name: "float64 ties", both: true, dims: []int{100}, dtype: dtypes.Float64, vals64: ties64},
	}
}

// TestQuantile checks Quantile against a sort on the host, and on the inputs marked both, also
// the order-statistic methods that Quantile does not pick for their size (pairwise rank counting,
// radix select by scatter or by compare). Order statistics (q*(N-1) an integer)
// must match bit for bit (-0 and +0 are equal values); between them the result must equal the
// host's lerp of the same two order statistics: numpy's float64 arithmetic bit for bit for float64
// values (but for subnormals, float64SubnormalTol), within one unit in the last place for float32 (bfloat16 and float16 results are rounded
// to their dtype).
func TestQuantile(t *testing.T) {
	b := testBackend(t)
	for i, tc := range quantileCases() {
		// Three quantiles per input keep the compile time down; together they cover the list.
		qs := []float64{quantileQs[i%len(quantileQs)], quantileQs[(i+2)%len(quantileQs)], quantileQs[(i+5)%len(quantileQs)]}
		t.Run(tc.name, func(t *testing.T) {
			exec := MustNewExec(b, func(x *Node) []*Node {
				in := ConvertDType(x, tc.dtype)
				outs := []*Node{ConvertDType(in, x.DType())}
				for _, q := range qs {
					outs = append(outs, ConvertDType(Quantile(in, q), x.DType()))
				}
				if tc.both { // The methods Quantile did not pick for this size, on the same quantiles.
					for _, m := range otherMethods(b, in.Shape().Size()) {
						for _, q := range qs {
							outs = append(outs, ConvertDType(quantile(in, q, m), x.DType()))
						}
					}
				}
				return outs
			})
			var input *tensors.Tensor
			if tc.dtype == dtypes.Float64 {
				input = tensors.FromFlatDataAndDimensions(tc.vals64, tc.dims...)
			} else {
				input = tensors.FromFlatDataAndDimensions(tc.values, tc.dims...)
			}
			outs := exec.MustExec(input)
			checked := qs
			if tc.both {
				for range otherMethods(b, len(tc.values)+len(tc.vals64)) {
					checked = append(slices.Clone(checked), qs...)
				}
			}
			for i, q := range checked {
				if tc.dtype == dtypes.Float64 {
					seen := tensors.MustCopyFlatData[float64](outs[0])
					got := outs[i+1].Value().(float64)
					want := reference.Quantile(seen, q)
					checkQuantile(t, q, got, want, float64SubnormalTol) // numpy's float64 arithmetic (lerpRows)
					continue
				}
				seen := tensors.MustCopyFlatData[float32](outs[0])
				got := outs[i+1].Value().(float32)
				want := reference.Quantile32(seen, q)
				ulp := quantileULP(float64(want), dtypes.Float32)
				switch tc.dtype { // The result is rounded to the input's dtype: one unit of its last place.
				case dtypes.BFloat16:
					ulp = math.Abs(float64(want)) * 0x1p-7
				case dtypes.Float16:
					ulp = math.Abs(float64(want)) * 0x1p-10
				}
				checkQuantile(t, q, float64(got), float64(want), ulp)
			}
		})
	}
}

// float64SubnormalTol is the tolerance of a float64 quantile against numpy's arithmetic: the
// smallest normal float64. XLA may flush subnormal values to zero, and did on XLA CPU (a lerp
// numpy gives as 5e-324 came out 0): a flushed difference, product or result changes the lerp by
// less than that. Everything larger must match bit for bit.
const float64SubnormalTol = 0x1p-1022

// quantileULP is the tolerance of checkQuantile between order statistics: one unit in the last
// place of want in dt (float32 or float64), at least that of 1e-38 (1e-300).
func quantileULP(want float64, dt dtypes.DType) float64 {
	if dt == dtypes.Float64 {
		return math.Nextafter(math.Max(math.Abs(want), 1e-300), math.Inf(1)) - math.Abs(want)
	}
	w := float32(math.Abs(want))
	return float64(math.Nextafter32(max(w, 1e-38), float32(math.Inf(1))) - w)
}

// checkQuantile fails unless got is want, both NaN, or, for finite values, within tol of it.
func checkQuantile(t *testing.T, q, got, want, tol float64) {
	t.Helper()
	switch {
	case math.IsNaN(want):
		if !math.IsNaN(got) {
			t.Errorf("q=%v: got %v, want NaN", q, got)
		}
	case math.IsInf(want, 0) || got == want:
		if got != want {
			t.Errorf("q=%v: got %v, want %v", q, got, want)
		}
	default:
		if math.Abs(got-want) > tol {
			t.Errorf("q=%v: got %v, want %v (|diff| %g > tolerance %g)", q, got, want, math.Abs(got-want), tol)
		}
	}
}

// TestQuantileOrderStatisticsExact checks that every order statistic of an input with heavy ties
// and mixed signs is found exactly: q = k/(N-1) for all k.
func TestQuantileOrderStatisticsExact(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 13
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(rng.IntN(9)-4) * 0.125
	}
	values[0] = float32(math.Copysign(0, -1))
	values[1] = 1e-40 // Subnormal.
	qs := make([]float64, n)
	for k := range qs {
		qs[k] = float64(k) / float64(n-1)
	}
	exec := MustNewExec(b, func(x *Node) []*Node {
		outs := make([]*Node, n)
		for k, q := range qs {
			outs[k] = Quantile(x, q)
		}
		return outs
	})
	outs := exec.MustExec(values)
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for k := range qs {
		got := outs[k].Value().(float32)
		if got != sorted[k] {
			t.Errorf("order statistic %d: got %v, want %v", k, got, sorted[k])
		}
	}
}

// TestQuantilePanics checks the graph-building errors.
func TestQuantilePanics(t *testing.T) {
	b := testBackend(t)
	for name, fn := range map[string]func(g *Graph) *Node{
		"q above 1": func(g *Graph) *Node { return Quantile(Const(g, []float32{1, 2}), 1.5) },
		"q NaN":     func(g *Graph) *Node { return Quantile(Const(g, []float32{1, 2}), math.NaN()) },
		"int":       func(g *Graph) *Node { return Quantile(Const(g, []int32{1, 2}), 0.5) },
		"complex":   func(g *Graph) *Node { return Quantile(Const(g, []complex64{1, 2}), 0.5) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("no panic")
				} else {
					t.Logf("panic: %v", r)
				}
			}()
			MustExecOnce(b, fn)
		})
	}
}

// TestQuantileTiming logs compile and run time of Quantile on the GPT's largest matrix shape.
// Timings are logged, not asserted (the machine is shared).
func TestQuantileTiming(t *testing.T) {
	measurementsOnly(t)
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, dims := range [][]int{{384, 1536}, {65, 384}} {
		values := make([]float32, dims[0]*dims[1])
		for i := range values {
			values[i] = float32(math.Abs(rng.NormFloat64()))
		}
		input := tensors.FromFlatDataAndDimensions(values, dims...)
		exec := MustNewExec(b, func(x *Node) *Node { return Quantile(x, 0.25) })
		start := time.Now()
		got := exec.MustExec(input)[0].Value().(float32)
		first := time.Since(start)
		const reps = 20
		start = time.Now()
		for range reps {
			exec.MustExec(input)
		}
		per := time.Since(start) / reps
		want := reference.Quantile32(values, 0.25)
		if got != want {
			t.Errorf("%v: got %v want %v", dims, got, want)
		}
		t.Logf("Quantile(%s float32, q=0.25) on %s: compile+first run %v, run %v (mean of %d)",
			fmt.Sprint(dims), b.Description(), first, per, reps)
	}
}

// TestQuantileMultiplicity checks quantileRows with multiplicities against reference.Quantile32 on the
// rows with each entry repeated that many times, by every order-statistic method, on rows with
// ties, negative values and NaN, for every quantile of quantileQs and every rank of a short row.
func TestQuantileMultiplicity(t *testing.T) {
	b := testBackend(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, size := range []int{1, 2, 7, 40, 600} {
		const rows = 3
		values := make([]float32, rows*size)
		for i := range values {
			switch rng.IntN(3) {
			case 0:
				values[i] = float32(rng.IntN(5)) * 0.5 // Ties.
			default:
				values[i] = float32(rng.NormFloat64())
			}
		}
		if size > 2 {
			values[size+1] = float32(math.NaN()) // Row 1 holds a NaN.
		}
		mult := make([]int, size)
		for i := range mult {
			mult[i] = 1 + rng.IntN(3)
		}
		qs := slices.Clone(quantileQs)
		if size == 7 {
			total := 0
			for _, m := range mult {
				total += m
			}
			for k := range total {
				qs = append(qs, float64(k)/float64(total-1))
			}
		}
		for _, method := range []selection{selectPairwise, selectScatter, selectCompare} {
			exec := MustNewExec(b, func(x *Node) []*Node {
				outs := make([]*Node, len(qs))
				for i, q := range qs {
					outs[i] = quantileRows(x, q, method, mult)
				}
				return outs
			})
			x := tensors.FromFlatDataAndDimensions(values, rows, size)
			outs := exec.MustExec(x)
			for r := range rows {
				var expanded []float32
				for i, v := range values[r*size : (r+1)*size] {
					for range mult[i] {
						expanded = append(expanded, v)
					}
				}
				for i, q := range qs {
					got := tensors.MustCopyFlatData[float32](outs[i])[r]
					want := reference.Quantile32(expanded, q)
					if got != want && !(got != got && want != want) {
						t.Errorf("size %d row %d method %d q=%v: got %v, want %v", size, r, method, q, got, want)
					}
				}
			}
		}
	}
}

// otherMethods are the order-statistic methods Quantile does not pick on b for an input of
// size entries.
func otherMethods(b backends.Backend, size int) []selection {
	picked := selectPairwise
	if size > pairwiseMaxSize {
		picked = selectScatter
		if CountingFor(b) == CountingCompare {
			picked = selectCompare
		}
	}
	var others []selection
	for _, m := range []selection{selectPairwise, selectScatter, selectCompare} {
		if m != picked {
			others = append(others, m)
		}
	}
	return others
}

// TestAccelerator checks the platform test behind CountingAuto on descriptions of GoMLX's XLA
// backend with the plugins this project loads.
func TestAccelerator(t *testing.T) {
	for desc, want := range map[string]bool{
		"xla:cpu - PJRT \"cpu\" plugin (/root/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81 [1 device(s)]":   false,
		"xla:/opt/venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT [1 device(s)]": true,
		"xla:cuda - PJRT \"cuda\" plugin [8 device(s)]":                                                             true,
		"xla:rocm [1 device(s)]":                        true,
		"go - SimpleGo backend (/home/tpuser/gpus/cpu)": false,
		"xla:/home/gpu/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so,shared_buffers - PJRT plugin (/home/gpu/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81": false,
		"xla:/srv/cpu-cluster/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin (/srv/cpu-cluster/jax_plugins/xla_cuda13/xla_cuda_plugin.so)":                true,
		"xla:tpu": true,
	} {
		if got := Accelerator(backend.DescribedAs(nil, desc)); got != want {
			t.Errorf("Accelerator(%q) = %v, want %v", desc, got, want)
		}
		wantCounting := CountingScatter
		if want {
			wantCounting = CountingCompare
		}
		if got := CountingFor(backend.DescribedAs(nil, desc)); got != wantCounting {
			t.Errorf("CountingFor(%q) = %q, want %q", desc, got, wantCounting)
		}
	}
	if Accelerator(nil) {
		t.Error("Accelerator(nil) = true")
	}
	if err := Counting("sort").Validate(); err == nil {
		t.Error(`Counting("sort").Validate() = nil, want an error`)
	}
}

// TestFloat64InterpolationRounding: in float64 every counting method, and compare counting's
// shared passes, give numpy's interpolation bit for bit, a + f*(b-a) or b - (1-f)*(b-a) with the
// product rounded before the sum, also where product and sum nearly cancel (neighbours of
// opposite signs), where a fused multiply-add rounds differently by several units in the last
// place (see lerpRows). FuzzQuantileRows found such a row on which scatter and compare counting
// differed.
func TestFloat64InterpolationRounding(t *testing.T) {
	b := testBackend(t)
	const rows, size = 64, 3
	rng := rand.New(rand.NewPCG(5, 6))
	values := make([]float64, rows*size)
	for i := range values {
		v := math.Ldexp(1+rng.Float64(), rng.IntN(80)-20)
		if rng.IntN(2) == 0 {
			v = -v
		}
		values[i] = v
	}
	input := tensors.FromFlatDataAndDimensions(values, rows, size)
	for _, q := range []float64{0.25000381, 0.3, 0.7, 0.6180339887} {
		exec := MustNewExec(b, func(x *Node) []*Node {
			outs := []*Node{quantileRowsCompare([]compareRows{{x: x}}, q)[0]}
			for _, m := range []selection{selectPairwise, selectScatter, selectCompare} {
				outs = append(outs, quantileRows(x, q, m, nil))
			}
			return outs
		})
		outs := exec.MustExec(input)
		for i, name := range []string{"compare rows", "pairwise", "scatter", "compare"} {
			got := tensors.MustCopyFlatData[float64](outs[i])
			for r := range rows {
				want := reference.Quantile(values[r*size:(r+1)*size], q)
				if math.Float64bits(got[r]) != math.Float64bits(want) {
					t.Errorf("q=%v, %s, row %v: got %v, numpy's lerp %v", q, name, values[r*size:(r+1)*size], got[r], want)
				}
			}
		}
	}
}
