package spectral

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's own style.
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/smi-gomlx/smi/internal/platform"
)

// Counting names how the exact quantile's radix select counts the keys of inputs over 1024
// entries (smaller ones count all pairs, see the package documentation). Every choice selects
// the same order statistics, so the quantile, the mask and the filtered gradient are the same bit
// for bit; only the operations XLA is given differ.
type Counting string

const (
	// CountingAuto chooses by backend (CountingFor): scatter on CPUs, compare on accelerators.
	CountingAuto Counting = ""
	// CountingScatter builds each pass's histogram of 11-bit digits with a ScatterSum: 3 passes
	// over float32 keys. Fastest on XLA CPU; on a GPU a scatter-add becomes contended atomics
	// (most keys share their leading digits).
	CountingScatter Counting = "scatter"
	// CountingCompare decides 4 bits per pass by counting, for each of the 15 candidate digits,
	// the keys below it: one fused compare-and-reduce with no scatter: 8 passes over float32 keys.
	// Meant for GPUs and TPUs, where such a reduction runs at memory speed.
	CountingCompare Counting = "compare"
)

// Validate returns an error unless c is one of the Counting constants.
func (c Counting) Validate() error {
	switch c {
	case CountingAuto, CountingScatter, CountingCompare:
		return nil
	}
	return fmt.Errorf("spectral: counting must be %q, %q or empty (auto), got %q", CountingScatter, CountingCompare, string(c))
}

// Accelerator reports whether b runs its computations on a GPU or TPU rather than on the CPU:
// whether a word of the name its description begins with names such a platform ("cuda", as in
// xla_cuda_plugin.so, "cuda13", "rocm", "tpu", "gpu", "metal"). For GoMLX's XLA backend
// ("xla:<plugin name or path> - PJRT ...") that name is the PJRT plugin's name or file name,
// never the folders above it (a CPU plugin under /home/gpu/ is a CPU plugin). The rule is
// internal/platform's, which every choice this module makes per platform reads (CountingFor
// here, the batching of same-shape variables in package optimizers, the Shakespeare trainer's
// evaluation and memory limits, the device names the programs print).
func Accelerator(b backends.Backend) bool {
	return b != nil && platform.Accelerator(b.Description())
}

// CountingFor returns what CountingAuto means on b: CountingCompare on an accelerator, else
// CountingScatter.
func CountingFor(b backends.Backend) Counting {
	if Accelerator(b) {
		return CountingCompare
	}
	return CountingScatter
}

// Option is an optional setting of the filter's functions (FilterBatch, Filter, FilterGroups,
// Threshold, HistoryQuantile, Quantile). A nil Option is ignored, so that an option chosen
// conditionally can be passed as it is.
type Option func(*options)

type options struct {
	counting Counting
}

// WithCounting sets how the exact quantile counts keys (default CountingAuto).
func WithCounting(c Counting) Option {
	return func(o *options) { o.counting = c }
}

// selection is the order-statistic method of quantileRows.
type selection int

const (
	selectPairwise selection = iota // all pairs compared: rows of at most pairwiseMaxSize entries
	selectScatter                   // radix select, histograms by ScatterSum
	selectCompare                   // radix select, counts by compare-and-reduce
)

// selectionFor resolves the options into the method for rows of size entries in g; who names
// the caller in the panic an invalid option raises.
func selectionFor(g *Graph, size int, who string, opts []Option) selection {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.counting.Validate(); err != nil {
		panic(fmt.Errorf("%s: %w", who, err))
	}
	if size <= pairwiseMaxSize {
		return selectPairwise
	}
	c := o.counting
	if c == CountingAuto {
		c = CountingFor(g.Backend())
	}
	if c == CountingCompare {
		return selectCompare
	}
	return selectScatter
}

// compareDigitBits is the digit width the compare method decides per pass: 2^4 - 1 = 15
// thresholds per pass, 8 passes for float32 keys and 16 for float64. Wider digits mean fewer
// passes but more comparisons per key in each (255 for 8 bits).
const compareDigitBits = 4

// compareChunk is the length of the chunks the compare method counts in: every row's keys are
// cut into chunks of this many (the last one padded), and each pass sums its comparisons over
// each chunk, then over a row's chunks, so the first reduction has chunks*15 outputs to spread
// over a GPU's cores instead of rows*15.
const compareChunk = 1024

// compareRows holds rows of keys from one or more sources for quantileRowsCompare: their
// quantiles share every pass.
type compareRows struct {
	x            *Node // [B, N] values of one dtype
	multiplicity []int // nil, or N positive counts shared by all of x's rows
}

// quantileRowsCompare returns, for each source, the q-quantile of each of its rows ([B_i]), as
// quantileRows does, by radix select with compare counting. All sources must have the same float
// dtype. Every row is cut into chunks of equal length (chunkLayout) and the chunks of all rows
// are stacked, so that every source shares the same passes (one set of reductions for all of a
// model's variables instead of one per shape) and a row is padded only to a whole chunk, never
// to the longest row. Padding keys are the largest key with weight 0, so they are never
// counted, and each row keeps its own rank k = floor(q*(total_i-1)) and interpolation weight.
func quantileRowsCompare(sources []compareRows, q float64) []*Node {
	g := sources[0].x.Graph()
	dtype := sources[0].x.DType()
	keyDT := keyDType(dtype)
	width := 0
	maxTotal := 0
	for _, src := range sources {
		if src.x.DType() != dtype {
			panic(fmt.Errorf("spectral: quantiles of %s and %s rows cannot share passes", dtype, src.x.DType()))
		}
		width = max(width, src.x.Shape().Dim(1))
		total := src.x.Shape().Dim(1)
		if src.multiplicity != nil {
			total = sum(src.multiplicity)
		}
		maxTotal = max(maxTotal, total)
	}
	chunk := min(width, compareChunk)
	cntDT := countDType(maxTotal)
	maxKey := keyConst(g, keyDT, math.MaxUint64>>(64-keyDT.Bits()))
	var keys, weights, nans []*Node
	var ks []int64
	var fracs []float64 // each row's interpolation weight, as rankOf computes it in float64
	var rowChunks []int
	withNext := false
	for _, src := range sources {
		rows, size := src.x.Shape().Dim(0), src.x.Shape().Dim(1)
		total := size
		w := Ones(g, shapes.Make(cntDT, rows, size))
		if src.multiplicity != nil {
			if len(src.multiplicity) != size {
				panic(fmt.Errorf("spectral: %d multiplicities for rows of %d entries", len(src.multiplicity), size))
			}
			total = sum(src.multiplicity)
			m := make([]int64, size)
			for i, c := range src.multiplicity {
				m[i] = int64(c)
			}
			w = BroadcastToDims(Reshape(ConvertDType(Const(g, m), cntDT), 1, size), rows, size)
		}
		k, frac := rankOf(q, total)
		withNext = withNext || frac > 0
		chunks := (size + chunk - 1) / chunk
		for range rows {
			ks = append(ks, int64(k))
			fracs = append(fracs, frac)
			rowChunks = append(rowChunks, chunks)
		}
		key, nan := orderKeys(src.x), IsNaN(src.x)
		if pad := chunks*chunk - size; pad > 0 {
			key = Concatenate([]*Node{key, BroadcastToDims(maxKey, rows, pad)}, 1)
			nan = Concatenate([]*Node{nan, Zeros(g, shapes.Make(dtypes.Bool, rows, pad))}, 1)
			w = Concatenate([]*Node{w, Zeros(g, shapes.Make(cntDT, rows, pad))}, 1)
		}
		keys = append(keys, Reshape(key, rows*chunks, chunk))
		weights = append(weights, Reshape(w, rows*chunks, chunk))
		nans = append(nans, Reshape(nan, rows*chunks, chunk))
	}
	key, weight, isNaN := Concatenate(keys, 0), Concatenate(weights, 0), Concatenate(nans, 0)
	layout := newChunkLayout(g, rowChunks)
	k := ConvertDType(Const(g, ks), cntDT)
	keyLo := kthSmallestKeyCompare(key, weight, k, layout)
	keyHi, anyNaN := nextKey(key, isNaN, weight, keyLo, nil, k, layout, withNext)
	result := keyToValue(keyLo, dtype)
	if withNext {
		result = lerpRows(result, keyToValue(keyHi, dtype), fracs)
	}
	result = Where(anyNaN, BroadcastToShape(Scalar(g, dtype, math.NaN()), result.Shape()), result)
	out := make([]*Node, len(sources))
	start := 0
	for i, src := range sources {
		rows := src.x.Shape().Dim(0)
		out[i] = Slice(result, AxisRange(start, start+rows))
		start += rows
	}
	return out
}

// chunkLayout is how rows of different lengths lie in one stack of C equal chunks: row r owns
// the next counts[r] chunks, rows in order. It moves per-row values to the row's chunks and
// reduces per-chunk values to their rows. When every row has as many chunks, both are reshapes;
// otherwise each is a Gather with constant indices, whose work is per chunk, not per key.
type chunkLayout struct {
	rows, chunks int   // R and C
	uniform      int   // chunks per row when all rows have as many, else 0
	rowOf        *Node // [C, 1] int32: each chunk's row
	grid         *Node // [R, maxCount, 1] int32: each row's chunks, then C (the identity) for the rest
}

func newChunkLayout(g *Graph, counts []int) chunkLayout {
	l := chunkLayout{rows: len(counts), chunks: sum(counts), uniform: counts[0]}
	most := 0
	for _, c := range counts {
		most = max(most, c)
		if c != counts[0] {
			l.uniform = 0
		}
	}
	if l.uniform > 0 {
		return l
	}
	rowOf := make([]int32, 0, l.chunks)
	grid := make([]int32, 0, l.rows*most)
	for r, c := range counts {
		for j := range most {
			if j < c {
				grid = append(grid, int32(len(rowOf)+j))
			} else {
				grid = append(grid, int32(l.chunks))
			}
		}
		rowOf = append(rowOf, slices.Repeat([]int32{int32(r)}, c)...)
	}
	l.rowOf = Reshape(Const(g, rowOf), l.chunks, 1)
	l.grid = Reshape(Const(g, grid), l.rows, most, 1)
	return l
}

// perChunk gives each chunk its row's value: x [R] to [C].
func (l chunkLayout) perChunk(x *Node) *Node {
	if l.uniform > 0 {
		return Reshape(BroadcastToDims(Reshape(x, l.rows, 1), l.rows, l.uniform), l.chunks)
	}
	return Gather(x, l.rowOf, true)
}

// perRow reduces per-chunk values to their rows: x [C, S...] to [R, S...], by reduce (ReduceSum,
// ReduceMin, ...) over each row's chunks; identity is reduce's identity, a scalar of x's dtype.
func (l chunkLayout) perRow(x, identity *Node, reduce func(*Node, ...int) *Node) *Node {
	rest := x.Shape().Dimensions[1:]
	if l.uniform > 0 {
		return reduce(Reshape(x, append([]int{l.rows, l.uniform}, rest...)...), 1)
	}
	ext := Concatenate([]*Node{x, BroadcastToDims(identity, append([]int{1}, rest...)...)}, 0)
	return reduce(Gather(ext, l.grid), 1)
}

// kthSmallestKeyCompare returns, per row, the k[r]-th smallest (0-based) key ([R]) of the
// row's chunks of keys ([C, chunk], laid out by layout); key j of a chunk counts weights' entry
// j times (weights [C, chunk], k [R], both in the count dtype).
//
// It is a radix select, most significant digit first, that counts instead of building
// histograms. With lo the answer's digits decided so far (lower bits zero), the answer v lies in
// [lo, lo + 16*2^s), s the shift of the next 4-bit digit. For the thresholds t_p = lo + p*2^s,
// p = 1..15, one reduction counts c_p = #{keys < t_p}; v >= t_p exactly when c_p <= k (fewer than
// k+1 keys lie below t_p), so the digit is #{p: c_p <= k} and lo grows by digit*2^s. After the
// last pass (s = 0), lo = v. The counts are integers and compare full keys, so the result is
// exact, and no threshold overflows: lo + 15*2^s < lo + 16*2^s <= 2^bits.
//
// Each pass compares every chunk's keys with its row's 15 thresholds and sums the comparisons
// over the chunk, then over the row's chunks: nothing is scattered.
func kthSmallestKeyCompare(keys, weights, k *Node, layout chunkLayout) *Node {
	g := keys.Graph()
	keyDT := keys.DType()
	cntDT := k.DType()
	chunks, chunk := keys.Shape().Dim(0), keys.Shape().Dim(1)
	blocks := Reshape(keys, chunks, 1, chunk)
	w := Reshape(weights, chunks, 1, chunk)
	kCol := Reshape(k, layout.rows, 1)
	zero := Scalar(g, cntDT, 0)
	lo := BroadcastToDims(keyConst(g, keyDT, 0), layout.rows)
	for shift := keyDT.Bits() - compareDigitBits; shift >= 0; shift -= compareDigitBits {
		t := Add(Reshape(layout.perChunk(lo), chunks, 1, 1), thresholdSteps(g, keyDT, shift)) // [C, 15, 1]
		below := Mul(ConvertDType(LessThan(blocks, t), cntDT), w)                             // [C, 15, chunk]
		counts := layout.perRow(ReduceSum(below, 2), zero, ReduceSum)                         // [R, 15]
		digit := ReduceSum(ConvertDType(LessOrEqual(counts, kCol), keyDT), 1)
		lo = Add(lo, BitwiseShiftLeftScalar(digit, shift))
	}
	return lo
}

// thresholdSteps returns p*2^shift for p = 1..15 as keys of keyDT, shaped [1, 15, 1]: a constant
// of the graph, computed here. Built from Iota and a shift instead, it is an operation XLA does not
// fold (it leaves iotas unfolded), and on a GPU each pass's copy was a kernel of its own.
func thresholdSteps(g *Graph, keyDT dtypes.DType, shift int) *Node {
	n := 1<<compareDigitBits - 1
	if keyDT == dtypes.Uint64 {
		return Reshape(Const(g, shiftedSteps[uint64](n, shift)), 1, n, 1)
	}
	return Reshape(Const(g, shiftedSteps[uint32](n, shift)), 1, n, 1)
}

// shiftedSteps returns p<<shift for p = 1..n.
func shiftedSteps[K uint32 | uint64](n, shift int) []K {
	steps := make([]K, n)
	for p := range steps {
		steps[p] = K(p+1) << shift
	}
	return steps
}

// lerpRows is numpy's and torch's linear interpolation, row by row (a, b of shape [len(f)], float32
// or float64): a + f*(b-a) for f < 1/2, else b - (1-f)*(b-a), and a where f = 0. Every counting
// strategy computes it here, so that its rounding is the same whatever XLA fuses:
//   - the branch and the weight w (f or 1-f) are decided in float64 on the host and only then
//     converted to the values' dtype, as a Scalar is (float32(1-f) is not 1 - float32(f));
//   - in float32, d = b-a is rounded to float32 and the product w*d, of two float32 values, is
//     exact in float64; the sum a ± w*d is formed in float64 and rounded to float32. XLA (and
//     LLVM under it) may contract a product with a sum into one fused multiply-add, rounding once
//     instead of twice, wherever both land in one loop: with the product exact, contracted or
//     not gives the same float64 sum. (A float32 product, as numpy computes it, was contracted in
//     some fusions and not in others: a last-bit difference between strategies.)
//
// In float64 no wider type exists to make the product exact. It is rounded as numpy rounds it, once,
// and then passes through Max(product, 0), the identity here (b >= a and the weight is >= 0), which
// XLA and LLVM do not see through (TestFloat64InterpolationRounding checks it): no program can
// contract the product into the sum, which would round once where numpy rounds twice, several units
// in the last place apart where product and sum nearly cancel.
func lerpRows(a, b *Node, f []float64) *Node {
	g := a.Graph()
	weight := make([]float64, len(f))
	low := make([]bool, len(f))
	exact := make([]bool, len(f))
	for i, fi := range f {
		low[i], exact[i] = fi < 0.5, fi == 0
		weight[i] = fi
		if !low[i] {
			weight[i] = 1 - fi
		}
	}
	diff := Sub(b, a)
	w := rowScalars(g, a.DType(), weight)
	var scaled *Node
	lo, hi := a, b
	if a.DType() == dtypes.Float32 {
		scaled = Mul(ConvertDType(diff, dtypes.Float64), ConvertDType(w, dtypes.Float64))
		lo, hi = ConvertDType(a, dtypes.Float64), ConvertDType(b, dtypes.Float64)
	} else {
		scaled = Max(Mul(diff, w), ScalarZero(g, diff.DType())) // >= +0 or NaN: Max keeps its value
	}
	result := Where(Const(g, low), Add(lo, scaled), Sub(hi, scaled))
	return Where(Const(g, exact), a, ConvertDType(result, a.DType()))
}

// rowScalars is the vector of values, each converted to dtype as Scalar converts it (the same
// rounding as MulScalar's constant), one Scalar per run of equal values.
func rowScalars(g *Graph, dtype dtypes.DType, values []float64) *Node {
	var parts []*Node
	for start := 0; start < len(values); {
		end := start + 1
		for end < len(values) && values[end] == values[start] {
			end++
		}
		parts = append(parts, BroadcastToDims(Reshape(Scalar(g, dtype, values[start]), 1), end-start))
		start = end
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 0)
}

func sum(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}
