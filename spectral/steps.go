package spectral

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's own style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// The steps of the filter, each a graph function on B stacked slices, as FilterBatch runs them
// (Filter is FilterBatch with one slice). FilterBatch is exactly their composition:
//
//	F := Spectrum(g)                          // steps 1-2
//	A := Magnitude(F)                         // step 3
//	H' := UpdateHistory(H, A, beta)           // step 4
//	tau := Threshold(H', d, q, halfSpectrum, opts...)  // step 5; nil when q = 0
//	M, W := Mask(H', tau)                     // step 6
//	G~ := InverseMasked(F, W, d)              // step 7, before the reshape and cast to g's
//	k, e := KeptEnergy(F, A, W, n, d)         // kept-energy fraction and ||g||^2
//
// They are exported so that the benchmarks time exactly what training runs, step by step. Shapes:
// g is [B, S...] with the n x d matrix view of S (MatrixView); F is [B, n, d/2+1] complex64
// (complex128 for float64 g); A, H, H', M and W are [B, n, d/2+1] in the compute dtype (float64
// for float64 g, else float32; M is Bool); tau, k and e are [B].

// Spectrum returns F, the 2-D real FFT of each slice's n x d matrix view (steps 1-2): g is
// [B, S...] of any filterable dtype, converted to the compute dtype first; F is [B, n, d/2+1].
// The real FFT's d/2+1 columns hold all of the full spectrum, since F(-k) = conj(F(k)) for real g.
func Spectrum(g *Node) *Node {
	if g.Rank() < 2 {
		panic(fmt.Errorf("spectral.Spectrum: gradient %s has no batch axis and slice of rank >= 1", g.Shape()))
	}
	batch := g.Shape().Dim(0)
	n, d, ok := MatrixView(shapes.Make(g.DType(), g.Shape().Dimensions[1:]...))
	if !ok || !isFilterableDType(g.DType()) {
		panic(fmt.Errorf("spectral.Spectrum: gradient %s is not filtered (slices of rank 0, empty or not float)", g.Shape()))
	}
	matrix := Reshape(ConvertDType(g, computeDType(g.DType())), batch, n, d)
	return RealFFT(matrix, n, d) // [B, n, bins]
}

// Magnitude returns A = |F| element-wise (step 3), without overflow or underflow in the squares:
// XLA's Abs of a complex number squares its parts, so |F| of float32 gradients around 1e20 or
// 1e-20 would come out as +Inf or 0. With m = max(|re|, |im|), |z| = m * sqrt(1 + (min/m)^2).
func Magnitude(spectrum *Node) *Node {
	if !spectrum.DType().IsComplex() {
		panic(fmt.Errorf("spectral.Magnitude: spectrum must be complex, got %s", spectrum.Shape()))
	}
	return modulus(spectrum)
}

// UpdateHistory returns H' = beta*H + (1-beta)*A (step 4), H and A of the same shape and dtype.
// beta is the decay in [0, 1) (Config.Beta): outside it H' is no longer an average of magnitudes.
// It panics (graph-building error) if the shapes differ or beta is outside [0, 1) or NaN.
func UpdateHistory(history, magnitude *Node, beta float64) *Node {
	if !history.Shape().Equal(magnitude.Shape()) {
		panic(fmt.Errorf("spectral.UpdateHistory: history %s and magnitude %s differ", history.Shape(), magnitude.Shape()))
	}
	if !(beta >= 0 && beta < 1) { // Also rejects NaN.
		panic(fmt.Errorf("spectral.UpdateHistory: beta must be in [0, 1), got %v", beta))
	}
	return Add(MulScalar(history, beta), MulScalar(magnitude, 1-beta))
}

// Threshold returns tau ([B]), each slice's q-quantile of its history (step 5): history is
// [B, n, d/2+1] (float32 or float64) of n x d gradients, each stored bin counted as often as it
// appears in the full n x d spectrum or, with halfSpectrum, once (see Filter). q is in [0, 1];
// the quantile is exact (see Quantile), and opts choose how it counts (WithCounting). It panics
// (graph-building error) if history does not fit d or is empty (no slices or no rows), q is
// outside [0, 1], or an option is invalid.
func Threshold(history *Node, d int, q float64, halfSpectrum bool, opts ...Option) *Node {
	return thresholds([]*Node{history}, []int{d}, q, halfSpectrum, "spectral.Threshold", opts)[0]
}

// thresholds is Threshold on several histories (histories[i] of n_i x ds[i] gradients) at once:
// those whose quantile counts by compare share its passes, one set per compute dtype.
func thresholds(histories []*Node, ds []int, q float64, halfSpectrum bool, who string, opts []Option) []*Node {
	if !(q >= 0 && q <= 1) {
		panic(fmt.Errorf("%s: q must be in [0, 1], got %v", who, q))
	}
	taus := make([]*Node, len(histories))
	shared := map[dtypes.DType][]int{} // Histories counted by compare, by dtype.
	var order []dtypes.DType
	sources := make([]compareRows, len(histories))
	for i, history := range histories {
		d := ds[i]
		if history.Rank() != 3 || d < 1 || history.Shape().Dim(2) != HalfBins(d) || (history.DType() != dtypes.Float32 && history.DType() != dtypes.Float64) {
			panic(fmt.Errorf("%s: history %s is not the float32/float64 [B, n, %d] history of n x %d gradients", who, history.Shape(), HalfBins(d), d))
		}
		if history.Shape().Size() == 0 { // No slices or no rows: there is no quantile to take.
			panic(fmt.Errorf("%s: history must not be empty, got %s", who, history.Shape()))
		}
		batch, n, bins := history.Shape().Dim(0), history.Shape().Dim(1), HalfBins(d)
		rows := Reshape(history, batch, n*bins)
		mult := historyMultiplicity(n, d, halfSpectrum)
		method := selectionFor(history.Graph(), n*bins, who, opts)
		if method != selectCompare {
			taus[i] = quantileRows(rows, q, method, mult)
			continue
		}
		sources[i] = compareRows{x: rows, multiplicity: mult}
		if shared[history.DType()] == nil {
			order = append(order, history.DType())
		}
		shared[history.DType()] = append(shared[history.DType()], i)
	}
	for _, dt := range order {
		var srcs []compareRows
		for _, i := range shared[dt] {
			srcs = append(srcs, sources[i])
		}
		for j, tau := range quantileRowsCompare(srcs, q) {
			taus[shared[dt][j]] = tau
		}
	}
	return taus
}

// Mask returns M = 1[H' >= tau] (step 6) on history's [B, n, d/2+1] bins, as a Bool mask and as
// weights W (0 or 1 in history's dtype), which stand for the same mask on the bins' mirror
// images. A nil tau (q = 0, where tau = min(H')) keeps every bin.
func Mask(history, tau *Node) (mask, weight *Node) {
	if history.Rank() != 3 {
		panic(fmt.Errorf("spectral.Mask: history %s is not [B, n, bins]", history.Shape()))
	}
	if tau != nil {
		batch := history.Shape().Dim(0)
		if tau.Shape().Size() != batch {
			panic(fmt.Errorf("spectral.Mask: tau %s does not have one threshold per slice of history %s", tau.Shape(), history.Shape()))
		}
		mask = GreaterOrEqual(history, Reshape(tau, batch, 1, 1))
	} else {
		mask = Ones(history.Graph(), shapes.Make(dtypes.Bool, history.Shape().Dimensions...))
	}
	return mask, ConvertDType(mask, history.DType())
}

// InverseMasked returns Re(IFFT2(F*M)) of each slice (step 7), [B, n, d] in the compute dtype:
// the inverse real FFT of the masked bins, which equals it because the mask on the real-FFT bins
// stands for a Hermitian mask on the full spectrum.
func InverseMasked(spectrum, weight *Node, d int) *Node {
	if spectrum.Rank() != 3 || spectrum.Shape().Dim(2) != HalfBins(d) {
		panic(fmt.Errorf("spectral.InverseMasked: spectrum %s is not the [B, n, %d] spectrum of n x %d gradients", spectrum.Shape(), HalfBins(d), d))
	}
	n := spectrum.Shape().Dim(1)
	masked := Mul(spectrum, ConvertDType(weight, complexDType(weight.DType())))
	return InverseRealFFT(masked, n, d)
}

// KeptEnergy returns, per slice of n x d gradients, keptEnergy = sum|F*M|^2 / sum|F|^2 over the
// full spectrum (float32, [B]; 1 when F is all zero) and energy = ||g||^2 by Parseval's theorem
// (float64, [B]; sum|F|^2 / (n*d), saturated at the largest float64), from the spectrum, its
// magnitudes and the mask weights handed to InverseMasked, so that it describes the mask that
// was applied. energy is NaN or +Inf, and keptEnergy NaN, exactly when the slice's spectrum holds
// a NaN or an Inf.
func KeptEnergy(spectrum, magnitude, weight *Node, n, d int) (keptEnergy, energy *Node) {
	if spectrum.Rank() != 3 || spectrum.Shape().Dim(1) != n || spectrum.Shape().Dim(2) != HalfBins(d) {
		panic(fmt.Errorf("spectral.KeptEnergy: spectrum %s is not the [B, %d, %d] spectrum of %d x %d gradients", spectrum.Shape(), n, HalfBins(d), n, d))
	}
	gr := spectrum.Graph()
	batch, bins := spectrum.Shape().Dim(0), HalfBins(d)
	cdt := magnitude.DType()
	// Squares are taken in float64, where those of float32 parts neither overflow nor underflow;
	// float64 parts are first divided by their slice's largest magnitude (the ratio is unchanged).
	// Both sums come from one reduction. A NaN or Inf in the spectrum makes the total non-finite
	// whatever Max does with NaN: its square, or its ratio to an infinite peak, is NaN or Inf.
	var scale *Node
	if cdt == dtypes.Float64 {
		peak := ReduceAndKeep(magnitude, ReduceMax, 1, 2)
		scale = Where(GreaterThan(peak, ZerosLike(peak)), peak, OnesLike(peak))
	}
	re, im := Real(spectrum), Imag(spectrum)
	if scale != nil {
		re, im = Div(re, scale), Div(im, scale)
	}
	re, im = ConvertDType(re, dtypes.Float64), ConvertDType(im, dtypes.Float64)
	// Each bin stands for itself and, in the interior columns, its mirror, which has the same |F|^2
	// and mask: weighted by their multiplicity, the sums are over the full spectrum.
	e := Mul(Add(Square(re), Square(im)), Reshape(hermitianWeights(gr, dtypes.Float64, d), 1, 1, bins))
	energies := Stack([]*Node{e, Mul(e, ConvertDType(weight, dtypes.Float64))}, 0) // [2, B, rows, bins]
	sums := ReduceSum(energies, 2, 3)                                              // [2, B]
	total := Reshape(Slice(sums, AxisElem(0)), batch)
	kept := Reshape(Slice(sums, AxisElem(1)), batch)
	zero := ZerosLike(total)
	ratio := Where(GreaterThan(total, zero), Div(kept, total), OnesLike(total))
	// A spectrum holding a NaN or an Inf has no meaningful fraction: NaN, not the 1 of a zero one.
	ratio = Where(IsFinite(total), ratio, BroadcastToShape(Scalar(gr, dtypes.Float64, math.NaN()), total.Shape()))
	// Parseval: sum|F|^2 = n*d*||g||^2, with the scale undone; saturated at the largest float64,
	// so that only a non-finite spectrum gives a non-finite energy.
	energy = DivScalar(total, float64(n*d))
	if cdt == dtypes.Float64 {
		energy = Mul(energy, Square(Reshape(scale, batch)))
		energy = Where(IsFinite(total), Min(energy, Scalar(gr, dtypes.Float64, math.MaxFloat64)), total)
	}
	return ConvertDType(ratio, dtypes.Float32), energy
}

// modulus returns |z| element-wise without overflow or underflow in the squares (XLA's Abs of a
// complex number squares its parts: |F| of float32 gradients around 1e20 or 1e-20 would come out
// as +Inf or 0): with m = max(|re|, |im|), |z| = m * sqrt(1 + (min(|re|, |im|)/m)^2).
func modulus(z *Node) *Node {
	re, im := Abs(Real(z)), Abs(Imag(z))
	hi, lo := Max(re, im), Min(re, im)
	zero := ScalarZero(z.Graph(), hi.DType())
	ratio := Div(lo, Where(GreaterThan(hi, zero), hi, OnesLike(hi)))
	return Mul(hi, Sqrt(OnePlus(Square(ratio))))
}
