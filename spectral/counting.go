package spectral

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's own style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
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

// Accelerator reports whether b runs its computations on a GPU or TPU rather than on the CPU,
// from the words of its description (the PJRT plugin's name or path: "cuda", "cuda13", "rocm",
// "tpu", ...). It is the one
// place that tells the platforms apart for the choices made per backend (CountingFor here, the
// batching of same-shape variables in package optimizers).
func Accelerator(b backends.Backend) bool {
	if b == nil {
		return false
	}
	words := strings.FieldsFunc(strings.ToLower(b.Description()), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
	return slices.ContainsFunc(words, acceleratorWord.MatchString)
}

// acceleratorWord matches a word of a backend's description that names an accelerator platform:
// "cuda" and "cuda13" (from xla_cuda13/xla_cuda_plugin.so), "rocm", "tpu", "gpu", "metal".
var acceleratorWord = regexp.MustCompile(`^(cuda|rocm|tpu|gpu|metal)[0-9]*$`)

// CountingFor returns what CountingAuto means on b: CountingCompare on an accelerator, else
// CountingScatter.
func CountingFor(b backends.Backend) Counting {
	if Accelerator(b) {
		return CountingCompare
	}
	return CountingScatter
}

// Option is an optional setting of the filter's functions (FilterBatch, Filter, Threshold,
// HistoryQuantile, Quantile).
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
		opt(&o)
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

// kthSmallestKeyCompare returns, per row of keys ([B, N]), the k-th smallest (0-based) key ([B]);
// each key counts weights[j] times (once when weights is nil; total is the weights' sum).
//
// It is a radix select, most significant digit first, that counts instead of building
// histograms. With lo the answer's digits decided so far (lower bits zero), the answer v lies in
// [lo, lo + 16*2^s), s the shift of the next 4-bit digit. For the thresholds t_p = lo + p*2^s,
// p = 1..15, one reduction counts c_p = #{keys < t_p}; v >= t_p exactly when c_p <= k (fewer than
// k+1 keys lie below t_p), so the digit is #{p: c_p <= k} and lo grows by digit*2^s. After the
// last pass (s = 0), lo = v. The counts are integers and compare full keys, so the result is
// exact, and no threshold overflows: lo + 15*2^s < lo + 16*2^s <= 2^bits.
//
// Each pass is a [B, N, 15] comparison summed over N: the reduced axis is the major one, so
// the keys are read once per pass, and nothing is scattered.
func kthSmallestKeyCompare(keys, weights *Node, total, k int) *Node {
	g := keys.Graph()
	keyDT := keys.DType()
	batch, size := keys.Shape().Dim(0), keys.Shape().Dim(1)
	cntDT := countDType(total)
	thresholds := 1<<compareDigitBits - 1
	// p = 1..15 as keys, along the last axis.
	steps := ConvertDType(AddScalar(Iota(g, shapes.Make(dtypes.Int32, 1, 1, thresholds), 2), 1), keyDT)
	column := Reshape(keys, batch, size, 1)
	var w *Node
	if weights != nil {
		w = Reshape(weights, 1, size, 1)
	}
	lo := BroadcastToDims(keyConst(g, keyDT, 0), batch, 1)
	for shift := keyDT.Bits() - compareDigitBits; shift >= 0; shift -= compareDigitBits {
		t := Add(Reshape(lo, batch, 1, 1), BitwiseShiftLeftScalar(steps, shift)) // [B, 1, 15]
		below := ConvertDType(LessThan(column, t), cntDT)                        // [B, N, 15]
		if w != nil {
			below = Mul(below, w)
		}
		counts := ReduceSum(below, 1) // [B, 15]
		digit := ReduceAndKeep(ConvertDType(LessOrEqual(counts, Scalar(g, cntDT, k)), keyDT), ReduceSum, 1)
		lo = Add(lo, BitwiseShiftLeftScalar(digit, shift))
	}
	return Reshape(lo, batch)
}
