// Package reference is the host reference of docs/ALGORITHM.md that the tests of packages spectral
// and optimizers compare the graph with: an independent implementation in float64, with gonum's
// FFT and a sort-based quantile, written from docs/ALGORITHM.md as it states each step. It shares
// no code with the graph functions, and it is for tests only: it is slow and allocates freely.
//
// Matrices are n x d, row-major. A history or mask is either on the full n x d grid or on the
// real FFT's n x (d/2+1) bins (the stored bins, what spectral keeps); StoredBins and
// ExpandHermitian convert between the two.
package reference

import (
	"math"
	"math/cmplx"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"
)

// FFT2 returns the 2-D DFT (forward, unnormalized) or its inverse (normalized by 1/(n*d)) of an
// n x d complex matrix: 1-D transforms along the rows, then along the columns.
func FFT2(x []complex128, n, d int, inverse bool) []complex128 {
	out := slices.Clone(x)
	transform := func(f *fourier.CmplxFFT, seq []complex128) []complex128 {
		if inverse {
			return f.Sequence(nil, seq) // Unnormalized inverse.
		}
		return f.Coefficients(nil, seq)
	}
	rowFFT := fourier.NewCmplxFFT(d)
	for i := 0; i < n; i++ {
		copy(out[i*d:(i+1)*d], transform(rowFFT, out[i*d:(i+1)*d]))
	}
	colFFT := fourier.NewCmplxFFT(n)
	col := make([]complex128, n)
	for j := 0; j < d; j++ {
		for i := 0; i < n; i++ {
			col[i] = out[i*d+j]
		}
		res := transform(colFFT, col)
		for i := 0; i < n; i++ {
			out[i*d+j] = res[i]
		}
	}
	if inverse {
		scale := complex(1/float64(n*d), 0)
		for i := range out {
			out[i] *= scale
		}
	}
	return out
}

// RealFFT2 is FFT2 (forward) of a real n x d matrix.
func RealFFT2(g []float64, n, d int) []complex128 {
	x := make([]complex128, len(g))
	for i, v := range g {
		x[i] = complex(v, 0)
	}
	return FFT2(x, n, d, false)
}

// Quantile is numpy.quantile(values, q) with the default linear method: sort, rank
// r = q*(N-1), and the lerp between the order statistics floor(r) and floor(r)+1, written as
// numpy's two-sided lerp. It is NaN when any value is.
func Quantile(values []float64, q float64) float64 {
	sorted := slices.Clone(values)
	for _, v := range sorted {
		if math.IsNaN(v) {
			return math.NaN()
		}
	}
	slices.Sort(sorted)
	r := q * float64(len(sorted)-1)
	k := int(math.Floor(r))
	f := r - float64(k)
	if k >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	a, b := sorted[k], sorted[k+1]
	// numpy's arithmetic: the product is rounded before the sum (the conversions keep Go from
	// fusing them into one multiply-add, which it may do on some architectures).
	if f < 0.5 {
		return a + float64(f*(b-a))
	}
	return b - float64((1-f)*(b-a))
}

// Quantile32 is Quantile of float32 values, with the lerp rounded as the graph rounds it (see
// the comment in its body), so that both sides give the same bits.
func Quantile32(values []float32, q float64) float32 {
	for _, v := range values {
		if v != v {
			return float32(math.NaN())
		}
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	r := q * float64(len(sorted)-1)
	k := int(math.Floor(r))
	if k >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := r - float64(k)
	a, b := sorted[k], sorted[k+1]
	if f == 0 {
		return a
	}
	// As the graph computes it (spectral's lerpRows): b-a and the weight rounded to float32,
	// their product (exact in float64) added in float64, the sum rounded to float32 once.
	d := float64(b - a)
	if f < 0.5 {
		return float32(float64(a) + float64(float32(f))*d)
	}
	return float32(float64(b) - float64(float32(1-f))*d)
}

// Alpha is the blend schedule of docs/ALGORITHM.md ("Blend schedules"), written as there: with
// s = min(t/total, 1), "linear" is a0 + (a1-a0)*s, "cosine" is a1 + (a0-a1)*(1 + cos(pi*s))/2,
// and any other schedule ("constant") is a0.
func Alpha(t, total int, schedule string, a0, a1 float64) float64 {
	s := math.Min(float64(t)/float64(total), 1)
	switch schedule {
	case "linear":
		return a0 + (a1-a0)*s
	case "cosine":
		return a1 + (a0-a1)*(1+math.Cos(math.Pi*s))/2
	}
	return a0
}

// StoredBins returns the real-FFT bins (n x (d/2+1)) of x given on the full n x d grid; x already
// on the stored bins is returned as is.
func StoredBins[T any](x []T, n, d int) []T {
	bins := d/2 + 1
	if len(x) == n*bins {
		return x
	}
	out := make([]T, 0, n*bins)
	for i := 0; i < n; i++ {
		out = append(out, x[i*d:i*d+bins]...)
	}
	return out
}

// ExpandHermitian expands x on the real-FFT bins (n x (d/2+1)), such as a stored history or mask,
// to the full n x d grid by the mirror symmetry x(-i, -j) = x(i, j): column j <= d/2 is x's own,
// and column d-j (j = 1 .. ceil(d/2)-1) is bin (-i mod n, j). x already on the grid is returned.
func ExpandHermitian[T any](x []T, n, d int) []T {
	cols := d/2 + 1
	if len(x) == n*d {
		return x
	}
	full := make([]T, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			if j < cols {
				full[i*d+j] = x[i*cols+j]
			} else {
				full[i*d+j] = x[((n-i)%n)*cols+(d-j)]
			}
		}
	}
	return full
}

// Mirror returns the index of bin (-i mod n, -j mod d) for the bin (i, j) at index idx of the full
// n x d grid.
func Mirror(idx, n, d int) int {
	i, j := idx/d, idx%d
	return ((n-i)%n)*d + (d-j)%d
}

// State is one variable's spectral history, and the last step's intermediate values.
type State struct {
	N, D int
	// Half: the history has the real FFT's n x (d/2+1) bins, and the quantile counts each once
	// (the half-spectrum variant); otherwise it has the full n x d grid, so that its quantile is
	// computed independently of the multiplicities spectral gives the stored bins.
	Half bool
	// ExactTwins: the magnitude of bin k is the mean of |F(k)| and |F(-k)|, equal in exact
	// arithmetic for a real gradient, so that twins tie exactly rather than by float64 rounding.
	ExactTwins bool
	History    []float64 // row-major, float64; zero before the first step

	// The last step's values.
	Spectrum []complex128 // the full n x d spectrum F of the last gradient
	Tau      float64      // the threshold
	Mask     []bool       // the mask on the history's bins
	Filtered []float64    // Re(IFFT2(F*M')), the n x d filtered gradient
	Kept     float64      // the kept energy fraction
}

// NewState returns the state of an n x d variable before its first step.
func NewState(n, d int, half bool) *State {
	cols := d
	if half {
		cols = d/2 + 1
	}
	return &State{N: n, D: d, Half: half, History: make([]float64, n*cols)}
}

// Cols is the number of history columns.
func (s *State) Cols() int { return len(s.History) / s.N }

// Step runs steps 1-7 of docs/ALGORITHM.md on g (the n x d matrix view, row-major) with quantile
// q and decay beta.
func (s *State) Step(g []float64, q, beta float64) {
	s.UpdateHistory(g, beta)
	s.Tau = Quantile(s.History, q)
	s.Mask = make([]bool, len(s.History))
	for i, h := range s.History {
		s.Mask[i] = h >= s.Tau
	}
	s.Filtered, s.Kept = s.Apply(s.Mask)
}

// UpdateHistory runs steps 2-4 of docs/ALGORITHM.md on g: the spectrum, its magnitudes and
// H <- beta*H + (1-beta)*|F|. It returns max(H).
func (s *State) UpdateHistory(g []float64, beta float64) (maxH float64) {
	n, d := s.N, s.D
	s.Spectrum = RealFFT2(g, n, d)
	cols := s.Cols()
	for i := 0; i < n; i++ {
		for j := 0; j < cols; j++ {
			a := cmplx.Abs(s.Spectrum[i*d+j])
			if s.ExactTwins {
				a = (a + cmplx.Abs(s.Spectrum[Mirror(i*d+j, n, d)])) / 2
			}
			h := &s.History[i*cols+j]
			*h = beta**h + (1-beta)*a
			maxH = math.Max(maxH, *h)
		}
	}
	return maxH
}

// Stored returns the stored bins (n x (d/2+1)) of x given on the history's grid.
func (s *State) Stored(x []float64) []float64 { return StoredBins(x, s.N, s.D) }

// StoredMask is Stored for the last step's mask.
func (s *State) StoredMask() []bool { return StoredBins(s.Mask, s.N, s.D) }

// FullValues is ExpandHermitian for the variable's shape.
func (s *State) FullValues(x []float64) []float64 { return ExpandHermitian(x, s.N, s.D) }

// FullMask is ExpandHermitian for a mask: its Hermitian expansion M'.
func (s *State) FullMask(mask []bool) []bool { return ExpandHermitian(mask, s.N, s.D) }

// Mirror is Mirror for the variable's shape.
func (s *State) Mirror(idx int) int { return Mirror(idx, s.N, s.D) }

// Apply returns Re(IFFT2(F*M')) for the last spectrum and a mask on the stored bins or the full
// grid (M' its Hermitian expansion), and the kept energy fraction sum|F*M'|^2 / sum|F|^2 (1 when
// F = 0).
func (s *State) Apply(mask []bool) (filtered []float64, kept float64) {
	full := s.FullMask(mask)
	masked := make([]complex128, len(s.Spectrum))
	var keptE, totalE, peak float64
	for _, f := range s.Spectrum {
		peak = math.Max(peak, cmplx.Abs(f))
	}
	for i, f := range s.Spectrum {
		e := cmplx.Abs(f) / peak // Scaled: squares of 1e200 would overflow.
		e *= e
		totalE += e
		if full[i] {
			masked[i] = f
			keptE += e
		}
	}
	back := FFT2(masked, s.N, s.D, true)
	filtered = make([]float64, len(back))
	for i, v := range back {
		filtered[i] = real(v)
	}
	kept = 1
	if totalE > 0 {
		kept = keptE / totalE
	}
	return filtered, kept
}

// ImagNorm returns ||Im(IFFT2(F*M'))||_2 for the last spectrum and a mask on the stored bins:
// what taking the real part discards.
func (s *State) ImagNorm(mask []bool) float64 {
	full := s.FullMask(mask)
	masked := make([]complex128, len(s.Spectrum))
	for i, f := range s.Spectrum {
		if full[i] {
			masked[i] = f
		}
	}
	sum := 0.0
	for _, v := range FFT2(masked, s.N, s.D, true) {
		sum += imag(v) * imag(v)
	}
	return math.Sqrt(sum)
}
