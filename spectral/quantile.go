package spectral

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's own style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Quantile returns the q-quantile of all entries of x as a scalar of x's dtype, with the
// semantics of numpy.quantile's default ("linear") method, which torch.quantile shares: with the
// entries sorted ascending as v[0] <= ... <= v[N-1], rank r = q*(N-1), k = floor(r), f = r - k,
//
//	quantile = v[k] + f*(v[k+1] - v[k])   (written as numpy's and torch's lerp, exact at f = 0 and 1)
//
// The rank is computed on the host in float64 (as numpy does), so k and f are constants of the
// graph; torch computes it in the input's dtype, so for float32 inputs its f can differ by rounding.
//
// It is exact: v[k] and v[k+1] are the true order statistics, found without sorting (see the
// package documentation, "The exact quantile"). Any float values are accepted, negative ones
// included: -0 and +0 count as equal values, -Inf and +Inf are ordinary values, and if any entry
// is NaN the result is NaN (as in numpy and torch). bfloat16 and float16 inputs are handled in
// float32 (exactly: the conversion preserves order and values) and the result is cast back.
//
// Options (WithCounting) choose how the radix select counts keys; every choice gives the same
// result bit for bit.
//
// It panics (graph-building error) if x is empty or not a float tensor, q is outside [0, 1], or an
// option is invalid.
func Quantile(x *Node, q float64, opts ...Option) *Node {
	return quantile(x, q, selectionFor(x.Graph(), x.Shape().Size(), "spectral.Quantile", opts))
}

// quantile is Quantile with the order-statistic method chosen by the caller (tests use each).
func quantile(x *Node, q float64, method selection) *Node {
	dtype := x.DType()
	if !isFilterableDType(dtype) {
		panic(fmt.Errorf("spectral.Quantile: x must be a float tensor (float16, bfloat16, float32 or float64), got %s", x.Shape()))
	}
	if !(q >= 0 && q <= 1) { // Also rejects NaN.
		panic(fmt.Errorf("spectral.Quantile: q must be in [0, 1], got %v", q))
	}
	size := x.Shape().Size()
	if size == 0 {
		panic(fmt.Errorf("spectral.Quantile: x must not be empty, got %s", x.Shape()))
	}
	rows := Reshape(ConvertDType(x, computeDType(dtype)), 1, size)
	return ConvertDType(Reshape(quantileRows(rows, q, method, nil)), dtype)
}

// quantileRows returns the q-quantile of each row of x ([B, N], float32 or float64) as [B]: each
// row's result is Quantile's on that row alone (the counts are kept per row).
//
// With multiplicity (N positive integers, the same for every row), entry i of a row stands for
// multiplicity[i] equal values: the result is Quantile's on the row with each entry repeated that
// many times (the full spectrum's magnitudes, given on the real-FFT bins). Counts stay integers,
// so the order statistics are as exact as without.
func quantileRows(x *Node, q float64, method selection, multiplicity []int) *Node {
	size := x.Shape().Dim(1)
	total := size // Entries of the (expanded) row.
	var weights *Node
	if multiplicity != nil {
		if len(multiplicity) != size {
			panic(fmt.Errorf("spectral: %d multiplicities for rows of %d entries", len(multiplicity), size))
		}
		total = 0
		for _, m := range multiplicity {
			if m < 1 {
				panic(fmt.Errorf("spectral: multiplicity %d < 1", m))
			}
			total += m
		}
		w := make([]int64, size)
		for i, m := range multiplicity {
			w[i] = int64(m)
		}
		weights = Reshape(ConvertDType(Const(x.Graph(), w), countDType(total)), 1, size)
	}
	if method == selectCompare {
		return quantileRowsCompare([]compareRows{{x: x, multiplicity: multiplicity}}, q)[0]
	}
	k, frac := rankOf(q, total)
	keys, isNaN := orderKeys(x), IsNaN(x)
	var keyLo, keyHi, anyNaN *Node
	switch method {
	case selectPairwise:
		keyLo, keyHi, anyNaN = orderStatisticsPairwise(keys, isNaN, weights, total, k, frac > 0)
	case selectScatter:
		var countLo *Node
		keyLo, countLo = kthSmallestKey(keys, weights, total, k)
		kRows := BroadcastToDims(Scalar(x.Graph(), countLo.DType(), k), x.Shape().Dim(0))
		rowsAlone := newChunkLayout(x.Graph(), slices.Repeat([]int{1}, x.Shape().Dim(0))) // each row one chunk
		keyHi, anyNaN = nextKey(keys, isNaN, nil, keyLo, countLo, kRows, rowsAlone, frac > 0)
	default:
		panic(fmt.Errorf("spectral: unknown order-statistic method %d", method))
	}
	result := keyToValue(keyLo, x.DType())
	if frac > 0 {
		result = lerpRows(result, keyToValue(keyHi, x.DType()), slices.Repeat([]float64{frac}, x.Shape().Dim(0)))
	}
	return Where(anyNaN, Scalar(x.Graph(), x.DType(), math.NaN()), result)
}

// rankOf splits the rank q*(total-1) of a quantile into its order statistic k and the weight
// frac of the next one, computed in float64 as numpy does.
func rankOf(q float64, total int) (k int, frac float64) {
	rank := q * float64(total-1)
	k = int(math.Floor(rank))
	frac = rank - float64(k)
	if k >= total-1 {
		k, frac = total-1, 0
	}
	return k, frac
}

// keyConst returns a scalar constant of the key dtype with the given bit pattern.
func keyConst(g *Graph, keyDT dtypes.DType, v uint64) *Node {
	if keyDT == dtypes.Uint64 {
		return Const(g, v)
	}
	return Const(g, uint32(v))
}

// orderKeys maps float32/float64 values to unsigned integers of the same width whose order is
// the order of the values: non-negative floats get their sign bit set (so they sort above all
// negative ones, in the order of their magnitude bits), negative floats get all bits flipped
// (a larger magnitude then gives a smaller key).
func orderKeys(x *Node) *Node {
	g := x.Graph()
	keyDT := keyDType(x.DType())
	bitsWidth := keyDT.Bits()
	signedDT := dtypes.Int32
	if keyDT == dtypes.Uint64 {
		signedDT = dtypes.Int64
	}
	bits := Bitcast(x, keyDT)
	// All ones for negative values (arithmetic shift of the sign bit), zero otherwise.
	negMask := Bitcast(BitwiseShiftRightArithmeticScalar(Bitcast(x, signedDT), bitsWidth-1), keyDT)
	signBit := keyConst(g, keyDT, uint64(1)<<(bitsWidth-1))
	return BitwiseXor(bits, BitwiseOr(negMask, signBit))
}

// keyToValue inverts orderKeys for a scalar key.
func keyToValue(key *Node, floatDType dtypes.DType) *Node {
	g := key.Graph()
	keyDT := key.DType()
	bitsWidth := keyDT.Bits()
	signBit := keyConst(g, keyDT, uint64(1)<<(bitsWidth-1))
	wasNonNegative := NotEqual(BitwiseAnd(key, signBit), keyConst(g, keyDT, 0))
	bits := Where(wasNonNegative, BitwiseXor(key, signBit), BitwiseNot(key))
	return Bitcast(bits, floatDType)
}

// pairwiseMaxSize is the largest input for which Quantile counts ranks by comparing all pairs
// (N^2 comparisons in one fused pass, quick to compile) instead of the radix select (O(N) work
// per pass, but four passes that each take XLA much longer to compile).
const pairwiseMaxSize = 1024

// orderStatisticsPairwise returns, per row of keys ([B, N]), the k-th smallest key, if withNext
// the (k+1)-th, and whether any entry is NaN, each as [B]: the r-th smallest (0-based) is the
// smallest key_i with #{j: key_j <= key_i} >= r+1, each j counted weights[j] times (once when
// weights is nil; total is the weights' sum). The minima share one reduction.
func orderStatisticsPairwise(keys, isNaN, weights *Node, total, k int, withNext bool) (keyK, keyNext, anyNaN *Node) {
	g := keys.Graph()
	keyDT := keys.DType()
	batch, size := keys.Shape().Dim(0), keys.Shape().Dim(1)
	cntDT := countDType(total)
	le := ConvertDType(LessOrEqual(Reshape(keys, batch, 1, size), Reshape(keys, batch, size, 1)), cntDT) // [B, i, j]
	if weights != nil {
		le = Mul(le, Reshape(weights, 1, 1, size))
	}
	atMost := ReduceSum(le, 2)
	maxKey := BroadcastToShape(keyConst(g, keyDT, math.MaxUint64>>(64-keyDT.Bits())), keys.Shape())
	zeroKey := ZerosLike(keys)
	rows := []*Node{Where(isNaN, zeroKey, maxKey)}
	for r := k; r <= k+1 && (r == k || withNext); r++ {
		rows = append(rows, Where(GreaterThan(atMost, Scalar(g, cntDT, r)), keys, maxKey))
	}
	minima := ReduceMin(Stack(rows, 0), 2) // [rows, B]
	anyNaN = Equal(Reshape(Slice(minima, AxisElem(0)), batch), keyConst(g, keyDT, 0))
	keyK = Reshape(Slice(minima, AxisElem(1)), batch)
	if withNext {
		keyNext = Reshape(Slice(minima, AxisElem(2)), batch)
	}
	return
}

// digitWidths are the widths of the digits the histogram passes decide, most significant first:
// 11, 11 and 10 bits for float32 keys (3 passes over the keys instead of 4 with bytes), and
// 11, 11, 11, 11, 10 and 10 for float64 ones. Each pass costs a scatter over all the keys and
// work on the 2^width bins of each row, which stays small next to the keys.
func digitWidths(keyBits int) []int {
	if keyBits == 64 {
		return []int{11, 11, 11, 11, 10, 10}
	}
	return []int{11, 11, 10}
}

// kthSmallestKey returns, per row of keys ([B, N]), the k-th smallest (0-based) key and the
// number of keys <= it, each as [B]; each key counts weights[j] times (once when weights is nil;
// total is the weights' sum).
//
// It is a radix select, most significant digit first: with the digits above fixed (prefix),
// one pass builds the histogram of the next digit over the keys that share the prefix
// (ScatterSum of ones, or of the weights, into 2^width bins; other keys go to a discarded extra bin). The digit is
// the first bin at which the running count reaches the rank still sought, and the keys in
// lower bins are subtracted from that rank. Integer counts make every step exact. All rows
// share one ScatterSum per pass, each into its own bins. GoMLX has no While loop, so the
// passes are unrolled.
func kthSmallestKey(keys, weights *Node, total, k int) (key, countAtMost *Node) {
	g := keys.Graph()
	keyDT := keys.DType()
	width := keyDT.Bits()
	batch, size := keys.Shape().Dim(0), keys.Shape().Dim(1)
	cntDT := countDType(total)
	ones := Ones(g, shapes.Make(cntDT, batch*size))
	if weights != nil {
		ones = Reshape(BroadcastToDims(weights, batch, size), batch*size)
	}
	need := BroadcastToDims(Scalar(g, cntDT, k+1), batch, 1) // 1-based rank sought among the keys that share prefix.
	prefix := BroadcastToDims(keyConst(g, keyDT, 0), batch, 1)
	var binCount *Node // Keys equal to the answer in the digits decided so far.
	top := width
	for _, w := range digitWidths(width) {
		bins := 1 << w
		shift := top - w
		binIndex := Iota(g, shapes.Make(cntDT, 1, bins), 1)
		rowBase := MulScalar(Iota(g, shapes.Make(dtypes.Int32, batch, 1), 0), bins+1) // Row b's bins start at b*(bins+1).
		digits := ConvertDType(BitwiseAnd(BitwiseShiftRightLogicalScalar(keys, shift), keyConst(g, keyDT, uint64(bins-1))), dtypes.Int32)
		if top < width {
			samePrefix := Equal(BitwiseShiftRightLogicalScalar(keys, top), BitwiseShiftRightLogicalScalar(prefix, top))
			digits = Where(samePrefix, digits, Scalar(g, dtypes.Int32, bins))
		}
		zeros := Zeros(g, shapes.Make(cntDT, batch*(bins+1)))
		counts := ScatterSum(zeros, Reshape(Add(digits, rowBase), batch*size, 1), ones, false, false)
		counts = Slice(Reshape(counts, batch, bins+1), AxisRange(), AxisRange(0, bins))
		// The digit is the number of bins whose running count is still below need.
		digit := ReduceAndKeep(ConvertDType(LessThan(runningCounts(counts, total), need), cntDT), ReduceSum, 1)
		isDigit := Equal(binIndex, digit)
		need = Sub(need, ReduceAndKeep(Where(LessThan(binIndex, digit), counts, ZerosLike(counts)), ReduceSum, 1))
		binCount = ReduceAndKeep(Where(isDigit, counts, ZerosLike(counts)), ReduceSum, 1)
		prefix = BitwiseOr(prefix, BitwiseShiftLeftScalar(ConvertDType(digit, keyDT), shift))
		top = shift
	}
	// need keys equal to the answer complete rank k+1, binCount keys equal it in all.
	countAtMost = Add(Scalar(g, cntDT, k+1), Sub(binCount, need))
	return Reshape(prefix, batch), Reshape(countAtMost, batch)
}

// runningCounts returns the inclusive running sums of counts ([B, bins], bins a power of two
// >= 32) along the bins, in counts' dtype. CumSum, a reduce-window, would cost bins^2 scalar
// additions per row; instead blocks of 32 bins are summed by a product with the triangle of
// ones T[i][j] = 1[i <= j], and the blocks' totals likewise with the strict triangle. The
// counts are integers at most size < 2^24 (2^53 in float64), so the float sums are exact.
func runningCounts(counts *Node, size int) *Node {
	g := counts.Graph()
	accDT := dtypes.Float32
	if size >= 1<<24 {
		accDT = dtypes.Float64
	}
	triangle := func(m int, strict bool) *Node {
		rows, cols := Iota(g, shapes.Make(dtypes.Int32, m, m), 0), Iota(g, shapes.Make(dtypes.Int32, m, m), 1)
		if strict {
			return ConvertDType(LessThan(rows, cols), accDT)
		}
		return ConvertDType(LessOrEqual(rows, cols), accDT)
	}
	const block = 32
	batch, bins := counts.Shape().Dim(0), counts.Shape().Dim(1)
	blocks := bins / block
	c := ConvertDType(counts, accDT)
	within := Reshape(Dot(Reshape(c, batch*blocks, block), triangle(block, false)), batch, blocks, block)
	totals := Reshape(Slice(within, AxisRange(), AxisRange(), AxisElem(block-1)), batch, blocks)
	before := Dot(totals, triangle(blocks, true)) // Counts in the blocks before each block.
	running := Add(within, Reshape(before, batch, blocks, 1))
	return ConvertDType(Reshape(running, batch, bins), counts.DType())
}

// nextKey returns, per row, if withNext, the (k+1)-th smallest key (0-based) of the row's chunks
// of keys (keys, isNaN and weights [C, chunk], laid out by layout; keyK, countAtMost and k [R], in
// the count dtype), given keyK, the k-th smallest, and countAtMost, the number of keys <= keyK:
// keyK itself if that number is at least k+2, else the smallest key above keyK. It also returns
// whether the row holds a NaN; both come from one masked-min pass. A nil countAtMost is counted in
// the same pass, each key weights' entry times.
func nextKey(keys, isNaN, weights, keyK, countAtMost, k *Node, layout chunkLayout, withNext bool) (keyNext, anyNaN *Node) {
	g := keys.Graph()
	keyDT := keys.DType()
	chunks := keys.Shape().Dim(0)
	maxScalar := keyConst(g, keyDT, math.MaxUint64>>(64-keyDT.Bits()))
	maxKey := BroadcastToShape(maxScalar, keys.Shape())
	candidates := []*Node{Where(isNaN, ZerosLike(keys), maxKey)}
	column := Reshape(layout.perChunk(keyK), chunks, 1)
	if withNext {
		candidates = append(candidates, Where(GreaterThan(keys, column), keys, maxKey))
	}
	minima := layout.perRow(ReduceMin(Stack(candidates, 1), 2), maxScalar, ReduceMin) // [R, len(candidates)]
	anyNaN = Equal(Reshape(Slice(minima, AxisRange(), AxisElem(0)), layout.rows), keyConst(g, keyDT, 0))
	if withNext {
		if countAtMost == nil {
			atMost := ReduceSum(Mul(ConvertDType(LessOrEqual(keys, column), k.DType()), weights), 1)
			countAtMost = layout.perRow(atMost, Scalar(g, k.DType(), 0), ReduceSum)
		}
		above := Reshape(Slice(minima, AxisRange(), AxisElem(1)), layout.rows)
		keyNext = Where(GreaterOrEqual(countAtMost, AddScalar(k, 2)), keyK, above)
	}
	return
}
