package spectral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestFilterBatch: each slice of FilterBatch is what Filter computes on that slice alone (see
// compareSlice), over two steps with the histories fed back; energy is ||g||^2 (Parseval), and non-finite for a slice holding a NaN
// or an Inf, which leaves the other slices as they would be alone.
func TestFilterBatch(t *testing.T) {
	b := testBackend(t)
	type batchCase struct {
		dims  []int
		dtype dtypes.DType
		q     float64
		half  bool
		kinds []string // One per slice.
		bad   int      // Slice given a NaN (step 0) and an Inf (step 1), or -1.
	}
	cases := []batchCase{
		{[]int{16, 24}, dtypes.Float32, 0.25, false, []string{"gaussian", "smooth+noise", "quantized"}, -1},
		{[]int{16, 24}, dtypes.Float32, 0.5, true, []string{"smooth+noise", "constant", "gaussian"}, -1},
		{[]int{7, 13}, dtypes.Float32, 0.9, true, []string{"quantized", "quantized", "zeros", "gaussian"}, -1},
		{[]int{65, 128}, dtypes.Float32, 0.25, false, []string{"smooth+noise", "quantized", "huge"}, -1}, // radix select
		{[]int{65, 128}, dtypes.Float32, 0.25, true, []string{"gaussian", "tiny"}, -1},
		{[]int{128}, dtypes.Float32, 0.25, false, []string{"gaussian", "quantized", "constant", "mixed", "smooth+noise"}, -1},
		{[]int{3, 4, 5}, dtypes.BFloat16, 0.5, false, []string{"gaussian", "mixed"}, -1},
		{[]int{12, 10}, dtypes.Float64, 0.25, false, []string{"gaussian", "huge", "quantized"}, -1},
		{[]int{40, 70}, dtypes.Float64, 0.5, true, []string{"smooth+noise", "tiny"}, -1}, // radix select, 8 passes
		{[]int{9, 2}, dtypes.Float32, 0, false, []string{"gaussian", "gaussian"}, -1},
		{[]int{16, 24}, dtypes.Float32, 0.25, false, []string{"gaussian", "smooth+noise", "gaussian"}, 1},
		{[]int{65, 128}, dtypes.Float32, 0.5, true, []string{"gaussian", "smooth+noise"}, 0},
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for _, c := range cases {
		name := fmt.Sprintf("%v_%s_q%v_half%v_B%d_bad%d", c.dims, c.dtype, c.q, c.half, len(c.kinds), c.bad)
		t.Run(name, func(t *testing.T) {
			B := len(c.kinds)
			n, d, _ := MatrixView(shapes.Make(c.dtype, c.dims...))
			hShape, _ := HistoryShape(shapes.Make(c.dtype, c.dims...))
			inDT := computeDType(c.dtype) // Inputs fed in float32 (float64), converted in the graph.
			// outputs lists the parts compared: filtered, history, kept energy, energy, tau (0 for q = 0), mask.
			outputs := func(p parts) []*Node {
				tau := p.tau
				if tau == nil {
					tau = ZerosLike(p.keptEnergy)
				}
				return []*Node{ConvertDType(p.filtered, inDT), p.history, p.keptEnergy, p.energy, ConvertDType(tau, dtypes.Float64), p.mask}
			}
			batchExec := MustNewExec(b, func(g, h *Node) []*Node {
				return outputs(batchParts(ConvertDType(g, c.dtype), h, c.q, 0.9, c.half))
			})
			sliceExec := MustNewExec(b, func(g, h *Node) []*Node {
				return outputs(filterParts(ConvertDType(g, c.dtype), h, c.q, 0.9, c.half))
			})
			batchHist := tensors.FromShape(shapes.Make(hShape.DType, append([]int{B}, hShape.Dimensions...)...))
			sliceHist := make([]*tensors.Tensor, B)
			for i := range sliceHist {
				sliceHist[i] = tensors.FromShape(hShape)
			}
			identical := true
			for step := range 2 {
				var all []float64
				slices := make([]*tensors.Tensor, B)
				for i, kind := range c.kinds {
					v := gradientValues(rng, kind, n, d, c.dtype, step)
					if i == c.bad {
						v[3] = []float64{math.NaN(), math.Inf(-1)}[step]
					}
					all = append(all, v...)
					slices[i] = valuesTensor(v, inDT, c.dims...)
				}
				batchOut := batchExec.MustExec(valuesTensor(all, inDT, append([]int{B}, c.dims...)...), batchHist)
				batchHist = batchOut[1]
				cols := [][]any{flatAny(batchOut[0]), flatAny(batchOut[1]), flatAny(batchOut[2]), flatAny(batchOut[3]), flatAny(batchOut[4]), flatAny(batchOut[5])}
				for i := range B {
					sliceOut := sliceExec.MustExec(slices[i], sliceHist[i])
					sliceHist[i] = sliceOut[1]
					energy := flat64(sliceOut[3])[0]
					if i == c.bad {
						if !math.IsNaN(energy) && !math.IsInf(energy, 0) {
							t.Errorf("step %d: slice %d holds a non-finite value but its energy is %g", step, i, energy)
						}
						if e := toFloat(cols[3][i]); !math.IsNaN(e) && !math.IsInf(e, 0) {
							t.Errorf("step %d: batched slice %d holds a non-finite value but its energy is %g", step, i, e)
						}
						if k, kb := flat64(sliceOut[2])[0], toFloat(cols[2][i]); !math.IsNaN(k) || !math.IsNaN(kb) {
							t.Errorf("step %d: slice %d holds a non-finite value but its kept energy is %g (batched %g), want NaN", step, i, k, kb)
						}
						continue // Its outputs are discarded by callers.
					}
					compareSlice(t, fmt.Sprintf("step %d slice %d", step, i), c.dtype, n*d, flat64(slices[i]), sliceOut, cols, i, B, &identical)
					var sum float64
					for _, x := range flat64(slices[i]) {
						x = roundTo(x, c.dtype)
						sum += x * x
					}
					sum = math.Min(sum, math.MaxFloat64) // Beyond float64's range energy saturates.
					if !(math.Abs(energy-sum) <= 1e-5*sum) {
						t.Errorf("step %d slice %d: energy %g, ||g||^2 = %g", step, i, energy, sum)
					}
				}
			}
			if !identical {
				t.Logf("batched and per-slice results differ by rounding (within the tolerances)")
			}
		})
	}
}

// compareSlice checks slice i of the batched outputs (cols: filtered, history, kept energy, energy,
// tau, mask, flattened) against Filter's outputs on that slice alone. Bit-identical is what
// XLA CPU gives in most cases; where its vectorization or FFT plan differs with the batch size,
// the results may differ by rounding, so: histories within 8 ulps of their largest entry, tau
// within that difference + 2 ulps, masks identical outside that band around tau, filtered
// gradients within Filter's own tolerance (filter_test.go) unless a tied bin flipped, kept
// energies within keptTol, energies within 1e-6 relative.
func compareSlice(t *testing.T, where string, dt dtypes.DType, N int, g []float64, alone []*tensors.Tensor, cols [][]any, i, B int, identical *bool) {
	t.Helper()
	part := func(k int) []float64 {
		per := len(cols[k]) / B
		out := make([]float64, per)
		for j := range out {
			if bit, ok := cols[k][i*per+j].(bool); ok {
				out[j] = map[bool]float64{false: 0, true: 1}[bit]
			} else {
				out[j] = toFloat(cols[k][i*per+j])
			}
		}
		return out
	}
	for k := range alone {
		want := flatAny(alone[k])
		per := len(cols[k]) / B
		for j := range want {
			if !sameBits(cols[k][i*per+j], want[j]) {
				*identical = false
			}
		}
	}
	cdt := computeDType(dt)
	eps := ulpOf(1, cdt)
	hB, hA := part(1), flat64(alone[1])
	maxH, dH := 0.0, 0.0
	for j := range hA {
		maxH = math.Max(maxH, math.Abs(hA[j]))
		dH = math.Max(dH, math.Abs(hA[j]-hB[j]))
	}
	if !(dH <= 8*eps*maxH) {
		t.Fatalf("%s: histories differ by %g (largest entry %g)", where, dH, maxH)
	}
	tauB, tauA := part(4)[0], flat64(alone[4])[0]
	band := dH + 2*ulpOf(tauA, cdt)
	if !(math.Abs(tauB-tauA) <= band) {
		t.Fatalf("%s: tau %g batched, %g alone", where, tauB, tauA)
	}
	mB, mA := part(5), tensors.MustCopyFlatData[bool](alone[5])
	flipped := false
	for j := range mA {
		if (mB[j] == 1) != mA[j] {
			flipped = true
			if math.Abs(hA[j]-tauA) > 2*band {
				t.Fatalf("%s: bin %d (history %g, tau %g) masked differently", where, j, hA[j], tauA)
			}
		}
	}
	fB, fA := part(0), flat64(alone[0])
	var diff2, g2 float64
	for j := range fA {
		diff2 += (fA[j] - fB[j]) * (fA[j] - fB[j])
		g2 += g[j] * g[j]
	}
	if tol := (outTol(cdt)*math.Log2(float64(2*N)) + roundingOf(dt)) * math.Sqrt(g2); !flipped && !(math.Sqrt(diff2) <= tol) {
		t.Fatalf("%s: filtered gradients differ by %g > %g", where, math.Sqrt(diff2), tol)
	}
	if kB, kA := part(2)[0], flat64(alone[2])[0]; !(math.Abs(kB-kA) <= keptTol(cdt)) {
		t.Fatalf("%s: kept energy %g batched, %g alone", where, kB, kA)
	}
	if eB, eA := part(3)[0], flat64(alone[3])[0]; !(math.Abs(eB-eA) <= 1e-6*eA) {
		t.Fatalf("%s: energy %g batched, %g alone", where, eB, eA)
	}
}

// valuesTensor returns values as a float32 or float64 tensor of the given dims.
func valuesTensor(v []float64, dt dtypes.DType, dims ...int) *tensors.Tensor {
	if dt == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	v32 := make([]float32, len(v))
	for i, x := range v {
		v32[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(v32, dims...)
}

// flatAny returns a tensor's elements as a slice of any.
func flatAny(t *tensors.Tensor) []any {
	var out []any
	t.ConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			for _, x := range f {
				out = append(out, x)
			}
		case []float64:
			for _, x := range f {
				out = append(out, x)
			}
		case []bool:
			for _, x := range f {
				out = append(out, x)
			}
		default:
			panic(fmt.Sprintf("flatAny: unexpected %T", flat))
		}
	})
	return out
}

// sameBits compares two elements bit for bit (so NaN equals NaN, and -0 differs from +0).
func sameBits(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	return a == b
}

func toFloat(a any) float64 {
	switch x := a.(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

// TestCountingsAgree: FilterBatch gives the same results bit for bit with either counting of the
// exact quantile (filtered gradient, history, kept energy, energy, tau and mask), on shapes that
// take the radix select, float32 and float64, both spectra, over three steps with the histories
// fed back, and on gradients with heavy ties.
func TestCountingsAgree(t *testing.T) {
	b := testBackend(t)
	type agreeCase struct {
		dims  []int
		dtype dtypes.DType
		q     float64
		half  bool
		kinds []string
	}
	cases := []agreeCase{
		{[]int{65, 384}, dtypes.Float32, 0.25, false, []string{"smooth+noise", "gaussian", "quantized"}},
		{[]int{96, 257}, dtypes.Float32, 0.5, true, []string{"quantized", "huge"}},
		{[]int{2, 64, 48}, dtypes.BFloat16, 0.9, false, []string{"mixed", "smooth+noise"}},
		{[]int{40, 70}, dtypes.Float64, 0.25, false, []string{"tiny", "gaussian"}},
	}
	rng := rand.New(rand.NewPCG(51, 52))
	for _, c := range cases {
		t.Run(fmt.Sprintf("%v_%s_q%v_half%v", c.dims, c.dtype, c.q, c.half), func(t *testing.T) {
			B := len(c.kinds)
			n, d, _ := MatrixView(shapes.Make(c.dtype, c.dims...))
			hShape, _ := HistoryShape(shapes.Make(c.dtype, c.dims...))
			inDT := computeDType(c.dtype)
			exec := MustNewExec(b, func(g, h *Node) []*Node {
				var outs []*Node
				for _, counting := range []Counting{CountingScatter, CountingCompare} {
					p := batchParts(ConvertDType(g, c.dtype), h, c.q, 0.9, c.half, WithCounting(counting))
					outs = append(outs, ConvertDType(p.filtered, inDT), p.history, p.keptEnergy, p.energy, p.tau, p.mask)
				}
				return outs
			})
			history := valuesTensor(make([]float64, B*hShape.Size()), inDT, append([]int{B}, hShape.Dimensions...)...)
			for step := range 3 {
				var g []float64
				for _, kind := range c.kinds {
					g = append(g, gradientValues(rng, kind, n, d, c.dtype, step)...)
				}
				outs := exec.MustExec(valuesTensor(g, inDT, append([]int{B}, c.dims...)...), history)
				half := len(outs) / 2
				for i := range half {
					a, z := flatAny(outs[i]), flatAny(outs[half+i])
					for j := range a {
						if !sameBits(a[j], z[j]) {
							t.Fatalf("step %d output %d entry %d: scatter %v, compare %v", step, i, j, a[j], z[j])
						}
					}
				}
				history = outs[1]
			}
		})
	}
}

// TestFilterGroups: FilterGroups gives each group what FilterBatch gives it alone, bit for bit,
// with the groups' quantiles sharing their passes (compare counting) or not (scatter), on groups of
// different shapes, sizes and dtypes (float32 rows of different lengths in one stack of chunks, a
// float64 group counted apart, a small group counted pairwise), over two steps with the histories
// fed back.
func TestFilterGroups(t *testing.T) {
	b := testBackend(t)
	type group struct {
		dims  []int // [B, S...]
		dtype dtypes.DType
		kind  string
	}
	groups := []group{
		{[]int{3, 65, 384}, dtypes.Float32, "smooth+noise"},
		{[]int{2, 96, 257}, dtypes.Float32, "quantized"},
		{[]int{2, 40, 70}, dtypes.Float64, "gaussian"},
		{[]int{4, 8, 12}, dtypes.Float32, "mixed"},
		{[]int{1, 50, 60}, dtypes.BFloat16, "huge"},
		{[]int{2, 30, 90}, dtypes.Float64, "tiny"},
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, half := range []bool{false, true} {
		for _, counting := range []Counting{CountingCompare, CountingScatter} {
			t.Run(fmt.Sprintf("half%v_%s", half, counting), func(t *testing.T) {
				var inputs []*tensors.Tensor
				for _, gr := range groups {
					hShape, _ := HistoryShape(shapes.Make(gr.dtype, gr.dims[1:]...))
					size := gr.dims[0] * hShape.Size()
					inputs = append(inputs, nil, valuesTensor(make([]float64, size), computeDType(gr.dtype), append([]int{gr.dims[0]}, hShape.Dimensions...)...))
				}
				exec := MustNewExec(b, func(in []*Node) []*Node {
					var gs, hs []*Node
					for i, gr := range groups {
						gs = append(gs, ConvertDType(in[2*i], gr.dtype))
						hs = append(hs, in[2*i+1])
					}
					var outs []*Node
					for i, f := range FilterGroups(gs, hs, 0.25, 0.9, half, WithCounting(counting)) {
						alone := batchParts(gs[i], hs[i], 0.25, 0.9, half, WithCounting(CountingScatter))
						inDT := computeDType(groups[i].dtype)
						outs = append(outs, ConvertDType(f.Filtered, inDT), f.History, f.KeptEnergy, f.Energy,
							ConvertDType(alone.filtered, inDT), alone.history, alone.keptEnergy, alone.energy)
					}
					return outs
				})
				for step := range 2 {
					for i, gr := range groups {
						n, d, _ := MatrixView(shapes.Make(gr.dtype, gr.dims[1:]...))
						var g []float64
						for range gr.dims[0] {
							g = append(g, gradientValues(rng, gr.kind, n, d, gr.dtype, step)...)
						}
						inputs[2*i] = valuesTensor(g, computeDType(gr.dtype), gr.dims...)
					}
					args := make([]any, len(inputs))
					for i, x := range inputs {
						args[i] = x
					}
					outs := exec.MustExec(args...)
					for i := range groups {
						o := outs[8*i : 8*i+8]
						for j := range 4 {
							a, z := flatAny(o[j]), flatAny(o[4+j])
							for e := range a {
								if !sameBits(a[e], z[e]) {
									t.Fatalf("step %d group %d output %d entry %d: FilterGroups %v, FilterBatch alone %v", step, i, j, e, a[e], z[e])
								}
							}
						}
						inputs[2*i+1] = o[1]
					}
				}
			})
		}
	}
}
