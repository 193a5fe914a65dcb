package spectral

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's own style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// MatrixView returns the n x d matrix view of a gradient shape: d is the last axis and n the
// product of the others (1 for rank 1). ok is false for scalars and empty tensors.
func MatrixView(grad shapes.Shape) (n, d int, ok bool) {
	if grad.Rank() == 0 || grad.Size() == 0 {
		return 0, 0, false
	}
	d = grad.Dimensions[grad.Rank()-1]
	return grad.Size() / d, d, true
}

// HalfBins is the number of real-FFT bins along an axis of length d: d/2 + 1.
func HalfBins(d int) int { return d/2 + 1 }

// HistoryShape returns the shape (dims and dtype) of the spectral history H for a gradient of
// shape grad: n x (d/2+1), the real-FFT bins of the n x d matrix view, float64 for float64
// gradients and float32 for float32, bfloat16 and float16 ones. Both modes store only those bins:
// |F| of a real matrix is the same at k and -k, so the full spectrum's history is their mirror
// image (see Filter). ok is false when that gradient is not filtered: rank 0, empty, or a dtype
// other than float16, bfloat16, float32 and float64 (complex included).
func HistoryShape(grad shapes.Shape) (h shapes.Shape, ok bool) {
	if !isFilterableDType(grad.DType) {
		return shapes.Shape{}, false
	}
	n, d, ok := MatrixView(grad)
	if !ok {
		return shapes.Shape{}, false
	}
	return shapes.Make(computeDType(grad.DType), n, HalfBins(d)), true
}

// Filter does steps 1-7 of the algorithm for one variable: matrix view G (n x d) of g, spectrum
// F = FFT2(G), magnitudes A = |F|, history H' = beta*H + (1-beta)*A, threshold
// tau = Quantile(H', quantile), mask M = 1[H' >= tau], and G~ = Re(IFFT2(F*M)) reshaped back.
//
// It returns the filtered gradient (g's shape and dtype), the new history H' (HistoryShape) and
// keptEnergy, a float32 scalar sum|F*M|^2 / sum|F|^2 over the full spectrum (1 when F is all zero,
// NaN when g holds a NaN or an Inf).
//
// g is real, so |F(-k)| = |F(k)|: H, and with it M, are the same at k and -k, and both are
// stored on the n x (d/2+1) real-FFT bins only. The quantile counts each bin as often as it
// appears in the full n x d spectrum (once in column 0 and, for even d, column d/2; twice in the
// others), so tau is exactly the full history's quantile, and G~ = InverseRealFFT(F*M) equals
// Re(IFFT2(F*M)) on the full grid. With halfSpectrum, the quantile counts each stored bin once
// instead (the variant of the package documentation); nothing else changes.
//
// Computation is in float64 for float64 gradients and in float32 otherwise. It panics
// (graph-building error) if g is not filterable or history does not have HistoryShape(g).
// It is FilterBatch with one slice; opts are FilterBatch's.
func Filter(g, history *Node, quantile, beta float64, halfSpectrum bool, opts ...Option) (filtered, newHistory, keptEnergy *Node) {
	p := filterParts(g, history, quantile, beta, halfSpectrum, opts...)
	return p.filtered, p.history, p.keptEnergy
}

// FilterBatch is Filter on B gradients of the same shape at once, stacked along a leading axis:
// g is [B, S...] and history [B, rows, bins], with rows x bins = HistoryShape(S). Slice b of
// each result is what Filter computes on slice b alone (each slice has its own spectrum,
// threshold and mask; nothing is shared across slices but the compiled operations), so a
// NaN in one slice does not reach the others. Batching same-shape variables saves the fixed
// cost of each operation per variable, which dominates for small ones.
//
// It returns filtered ([B, S...], g's dtype), newHistory (history's shape), keptEnergy ([B]
// float32) and energy ([B] float64): ||g_b||^2 obtained from the spectrum by Parseval's theorem
// (sum|F|^2 / (n*d)), saturated at the largest float64. energy[b] is NaN or +Inf exactly when
// slice b's spectrum holds a NaN or an Inf, as it does when g_b does (or when g_b is so large,
// beyond about 1e33 in float32, that its FFT overflows), so callers can use it as the slice's
// finiteness check.
//
// opts choose how the quantile counts (WithCounting); the results do not depend on them.
func FilterBatch(g, history *Node, quantile, beta float64, halfSpectrum bool, opts ...Option) (filtered, newHistory, keptEnergy, energy *Node) {
	p := batchParts(g, history, quantile, beta, halfSpectrum, opts...)
	return p.filtered, p.history, p.keptEnergy, p.energy
}

// parts are Filter's (or FilterBatch's) results and, for tests and diagnostics, its threshold
// and mask.
type parts struct {
	filtered, history, keptEnergy *Node
	energy                        *Node // ||g||^2 from the spectrum, float64.
	tau                           *Node // nil when quantile = 0.
	mask                          *Node // Bool, history's shape.
}

// filterParts is Filter's parts, through batchParts with one slice.
func filterParts(g, history *Node, q, beta float64, halfSpectrum bool, opts ...Option) parts {
	hShape, ok := HistoryShape(g.Shape())
	if !ok {
		panic(fmt.Errorf("spectral.Filter: gradient %s is not filtered (rank 0, empty or not float)", g.Shape()))
	}
	if !history.Shape().Equal(hShape) {
		panic(fmt.Errorf("spectral.Filter: history has shape %s, want %s for gradient %s", history.Shape(), hShape, g.Shape()))
	}
	if !(q >= 0 && q < 1) {
		panic(fmt.Errorf("spectral.Filter: quantile must be in [0, 1), got %v", q))
	}
	if !(beta >= 0 && beta < 1) {
		panic(fmt.Errorf("spectral.Filter: beta must be in [0, 1), got %v", beta))
	}
	p := batchParts(InsertAxes(g, 0), InsertAxes(history, 0), q, beta, halfSpectrum, opts...)
	p.filtered = Reshape(p.filtered, g.Shape().Dimensions...)
	p.history = Reshape(p.history, hShape.Dimensions...)
	p.mask = Reshape(p.mask, hShape.Dimensions...)
	p.keptEnergy, p.energy = Reshape(p.keptEnergy), Reshape(p.energy)
	if p.tau != nil {
		p.tau = Reshape(p.tau)
	}
	return p
}

func batchParts(g, history *Node, q, beta float64, halfSpectrum bool, opts ...Option) parts {
	return groupsParts([]*Node{g}, []*Node{history}, q, beta, halfSpectrum, "spectral.FilterBatch", opts)[0]
}

// FilterGroups is FilterBatch on several groups of stacked gradients at once: gs[i] is [B_i, S_i...]
// with history hs[i], the shapes S_i may differ, and group i's results are FilterBatch's on
// (gs[i], hs[i]) alone. With compare counting (WithCounting; the default on accelerators) the
// groups' exact quantiles share their passes: every threshold of a model comes from one set of
// reductions instead of one per shape, which on a GPU saves most of the quantile's kernel
// launches. Results do not depend on it.
func FilterGroups(gs, hs []*Node, quantile, beta float64, halfSpectrum bool, opts ...Option) []Filtered {
	if len(gs) != len(hs) || len(gs) == 0 {
		panic(fmt.Errorf("spectral.FilterGroups: %d gradients and %d histories, want the same number, at least 1", len(gs), len(hs)))
	}
	ps := groupsParts(gs, hs, quantile, beta, halfSpectrum, "spectral.FilterGroups", opts)
	out := make([]Filtered, len(ps))
	for i, p := range ps {
		out[i] = Filtered{Filtered: p.filtered, History: p.history, KeptEnergy: p.keptEnergy, Energy: p.energy}
	}
	return out
}

// Filtered are FilterBatch's results for one group of FilterGroups.
type Filtered struct {
	Filtered, History, KeptEnergy, Energy *Node
}

// groupsParts is FilterGroups's parts; who names the caller in its panics.
func groupsParts(gs, hs []*Node, q, beta float64, halfSpectrum bool, who string, opts []Option) []parts {
	if !(q >= 0 && q < 1) {
		panic(fmt.Errorf("%s: quantile must be in [0, 1), got %v", who, q))
	}
	if !(beta >= 0 && beta < 1) {
		panic(fmt.Errorf("%s: beta must be in [0, 1), got %v", who, beta))
	}
	type group struct {
		g                               *Node
		n, d                            int
		spectrum, magnitude, newHistory *Node
	}
	groups := make([]group, len(gs))
	histories := make([]*Node, len(gs))
	ds := make([]int, len(gs))
	for i, g := range gs {
		history := hs[i]
		if g.Rank() < 2 {
			panic(fmt.Errorf("%s: gradient %s has no batch axis and slice of rank >= 1", who, g.Shape()))
		}
		batch := g.Shape().Dim(0)
		slice := shapes.Make(g.DType(), g.Shape().Dimensions[1:]...)
		hSlice, ok := HistoryShape(slice)
		if !ok || batch == 0 {
			panic(fmt.Errorf("%s: gradient %s is not filtered (no slices, or slices of rank 0, empty or not float)", who, g.Shape()))
		}
		hShape := shapes.Make(hSlice.DType, append([]int{batch}, hSlice.Dimensions...)...)
		if !history.Shape().Equal(hShape) {
			panic(fmt.Errorf("%s: history has shape %s, want %s for gradient %s", who, history.Shape(), hShape, g.Shape()))
		}
		n, d, _ := MatrixView(slice)
		spectrum := Spectrum(g)
		magnitude := Magnitude(spectrum)
		groups[i] = group{g: g, n: n, d: d, spectrum: spectrum, magnitude: magnitude,
			newHistory: UpdateHistory(history, magnitude, beta)}
		histories[i], ds[i] = groups[i].newHistory, d
	}
	// q = 0: tau = min(H), and H >= min(H) everywhere, so Mask keeps every bin without a threshold.
	var taus []*Node
	if q > 0 {
		taus = thresholds(histories, ds, q, halfSpectrum, who, opts)
	}
	out := make([]parts, len(groups))
	for i, gr := range groups {
		var tau *Node
		if taus != nil {
			tau = taus[i]
		}
		mask, weight := Mask(gr.newHistory, tau)
		back := InverseMasked(gr.spectrum, weight, gr.d)
		filtered := ConvertDType(Reshape(back, gr.g.Shape().Dimensions...), gr.g.DType())
		keptEnergy, energy := KeptEnergy(gr.spectrum, gr.magnitude, weight, gr.n, gr.d)
		out[i] = parts{filtered: filtered, history: gr.newHistory, keptEnergy: keptEnergy, energy: energy, tau: tau, mask: mask}
	}
	return out
}

// HistoryQuantile returns the threshold tau that Filter uses for a history H ([n, d/2+1], as
// HistoryShape for an n x d gradient; float32 or float64): the q-quantile of the full n x d
// spectrum's history, each stored bin counted as often as it appears there (see Filter), or,
// with halfSpectrum, once. Same semantics, exactness and options as Quantile. It panics
// (graph-building error) if H's shape does not fit d, H is empty (n = 0) or q is outside [0, 1].
func HistoryQuantile(history *Node, d int, q float64, halfSpectrum bool, opts ...Option) *Node {
	if history.Rank() != 2 || d < 1 || history.Shape().Dim(1) != HalfBins(d) || (history.DType() != dtypes.Float32 && history.DType() != dtypes.Float64) {
		panic(fmt.Errorf("spectral.HistoryQuantile: history %s is not the float32/float64 [n, %d] history of an n x %d gradient", history.Shape(), HalfBins(d), d))
	}
	if !(q >= 0 && q <= 1) {
		panic(fmt.Errorf("spectral.HistoryQuantile: q must be in [0, 1], got %v", q))
	}
	if history.Shape().Size() == 0 {
		panic(fmt.Errorf("spectral.HistoryQuantile: history must not be empty, got %s", history.Shape()))
	}
	return Reshape(Threshold(InsertAxes(history, 0), d, q, halfSpectrum, opts...))
}

// historyMultiplicity returns, for each stored bin of an n x d gradient's history (row-major),
// how often the quantile counts it: its multiplicity in the full spectrum, or nil (each once)
// with halfSpectrum.
func historyMultiplicity(n, d int, halfSpectrum bool) []int {
	if halfSpectrum {
		return nil
	}
	row := columnMultiplicity(d)
	m := make([]int, 0, n*len(row))
	for range n {
		m = append(m, row...)
	}
	return m
}

// hermitianWeights returns a 1 x (d/2+1) row with, for each real-FFT column j, the number of
// full-spectrum columns it stands for: 1 for j = 0 and (d even) j = d/2, 2 for the others.
func hermitianWeights(g *Graph, dtype dtypes.DType, d int) *Node {
	m := columnMultiplicity(d)
	w := make([]float64, len(m))
	for j, c := range m {
		w[j] = float64(c)
	}
	return ConvertDType(Const(g, [][]float64{w}), dtype)
}

// columnMultiplicity returns, for each real-FFT column j of a length-d axis, how many
// full-spectrum columns it stands for: 1 for j = 0 and (d even) j = d/2, 2 for the others.
func columnMultiplicity(d int) []int {
	m := make([]int, HalfBins(d))
	for j := range m {
		m[j] = 2
		if j == 0 || 2*j == d {
			m[j] = 1
		}
	}
	return m
}

// Alpha returns the blend weight alpha(t) of the schedule as a scalar of dtype, a float dtype. step
// is a scalar node of any numeric dtype holding t (0-based); s = t/T is clamped to [0, 1] (docs/ALGORITHM.md's
// min(t/T, 1); negative steps do not occur). The interpolations are written so that the end
// points come out exactly: alpha(0) = AlphaStart and alpha(t >= T) = AlphaEnd, in any precision.
// Computed in float64 for a float64 dtype, else in float32. Alpha reads only cfg's Schedule,
// AlphaStart and, unless the schedule is constant, AlphaEnd and TotalSteps; it panics
// (graph-building error) if one of those is out of the range Config.Validate requires (an unknown
// schedule, an alpha outside [0, 1] or NaN, TotalSteps <= 0), and if step is not a scalar or
// dtype not a float dtype.
func Alpha(step *Node, cfg Config, dtype dtypes.DType) *Node {
	if !step.Shape().IsScalar() {
		panic(fmt.Errorf("spectral.Alpha: step must be a scalar, got %s", step.Shape()))
	}
	if !dtype.IsFloat() {
		panic(fmt.Errorf("spectral.Alpha: dtype must be a float dtype, got %s", dtype))
	}
	if !(cfg.AlphaStart >= 0 && cfg.AlphaStart <= 1) { // Also rejects NaN.
		panic(fmt.Errorf("spectral.Alpha: Config.AlphaStart must be in [0, 1], got %v", cfg.AlphaStart))
	}
	if cfg.Schedule != ScheduleConstant && !(cfg.AlphaEnd >= 0 && cfg.AlphaEnd <= 1) {
		panic(fmt.Errorf("spectral.Alpha: Config.AlphaEnd must be in [0, 1], got %v", cfg.AlphaEnd))
	}
	g := step.Graph()
	cdt := computeDType(dtype)
	a0 := Scalar(g, cdt, cfg.AlphaStart)
	a1 := Scalar(g, cdt, cfg.AlphaEnd)
	if cfg.Schedule == ScheduleConstant {
		return ConvertDType(a0, dtype)
	}
	if cfg.TotalSteps <= 0 {
		panic(fmt.Errorf("spectral.Alpha: Config.TotalSteps must be > 0, got %d", cfg.TotalSteps))
	}
	s := ClipScalar(DivScalar(ConvertDType(step, cdt), float64(cfg.TotalSteps)), 0, 1)
	var u *Node // Fraction of the way from a0 to a1, exactly 0 at s = 0 and 1 at s = 1.
	switch cfg.Schedule {
	case ScheduleLinear:
		u = s
	case ScheduleCosine:
		// 1 - (1 + cos(pi*s))/2 = (1 - cos(pi*s))/2.
		u = DivScalar(OneMinus(Cos(MulScalar(s, math.Pi))), 2)
	default:
		panic(fmt.Errorf("spectral.Alpha: unknown schedule %q", cfg.Schedule))
	}
	diff := Sub(a1, a0)
	half := Scalar(g, cdt, 0.5)
	alpha := Where(LessThan(u, half), Add(a0, Mul(diff, u)), Sub(a1, Mul(diff, OneMinus(u))))
	return ConvertDType(alpha, dtype)
}

// Blend returns g' = (1-alpha)*g + alpha*filtered, computed in float64 for float64 gradients and
// float32 otherwise, and cast to g's dtype. alpha is a scalar node of any float dtype, meant to
// hold a weight in [0, 1] (as Alpha's are); it is a value of the graph, not known while the graph
// is built, so it is not checked: outside [0, 1] the result extrapolates beyond g and filtered.
func Blend(g, filtered, alpha *Node) *Node {
	if !g.Shape().Equal(filtered.Shape()) {
		panic(fmt.Errorf("spectral.Blend: filtered has shape %s, want g's %s", filtered.Shape(), g.Shape()))
	}
	if !alpha.Shape().IsScalar() || !alpha.DType().IsFloat() {
		panic(fmt.Errorf("spectral.Blend: alpha must be a float scalar, got %s", alpha.Shape()))
	}
	if !g.DType().IsFloat() {
		panic(fmt.Errorf("spectral.Blend: g must be of a float dtype, got %s", g.DType()))
	}
	cdt := computeDType(g.DType())
	a := ConvertDType(alpha, cdt)
	gc, fc := ConvertDType(g, cdt), ConvertDType(filtered, cdt)
	out := Add(Mul(OneMinus(a), gc), Mul(a, fc))
	return ConvertDType(out, g.DType())
}
