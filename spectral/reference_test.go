package spectral

// An independent host implementation of the algorithm in docs/ALGORITHM.md, in float64 with
// gonum's FFT and a sort-based quantile. It shares no code with the graph functions.

import (
	"math"
	"math/cmplx"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"
)

// refFFT2 returns the 2-D DFT (forward, unnormalized) or its inverse (normalized by 1/(n*d)) of
// an n x d complex matrix stored row-major.
func refFFT2(x []complex128, n, d int, inverse bool) []complex128 {
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

// refQuantile is numpy.quantile(values, q) with the default linear method: sort, rank
// r = q*(N-1), lerp between the order statistics floor(r) and floor(r)+1.
func refQuantile(values []float64, q float64) float64 {
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
	if f < 0.5 {
		return a + f*(b-a)
	}
	return b - (1-f)*(b-a)
}

// refState is the reference's per-variable state and the last step's intermediate values.
type refState struct {
	n, d int
	half bool
	// history has n*d entries (full) or n*(d/2+1) (half), row-major, float64.
	history []float64
	// Results of the last step.
	spectrum []complex128 // Full n x d spectrum F of the last gradient.
	tau      float64
	mask     []bool // Mask on the history's bins.
	filtered []float64
	kept     float64 // Kept energy fraction.
}

func newRefState(n, d int, half bool) *refState {
	cols := d
	if half {
		cols = d/2 + 1
	}
	return &refState{n: n, d: d, half: half, history: make([]float64, n*cols)}
}

// cols is the number of history columns.
func (s *refState) cols() int { return len(s.history) / s.n }

// step runs steps 1-7 of docs/ALGORITHM.md on g (the n x d matrix view, row-major).
func (s *refState) step(g []float64, q, beta float64) {
	n, d := s.n, s.d
	x := make([]complex128, n*d)
	for i, v := range g {
		x[i] = complex(v, 0)
	}
	s.spectrum = refFFT2(x, n, d, false)
	cols := s.cols()
	for i := 0; i < n; i++ {
		for j := 0; j < cols; j++ {
			a := cmplx.Abs(s.spectrum[i*d+j])
			s.history[i*cols+j] = beta*s.history[i*cols+j] + (1-beta)*a
		}
	}
	s.tau = refQuantile(s.history, q)
	s.mask = make([]bool, len(s.history))
	for i, h := range s.history {
		s.mask[i] = h >= s.tau
	}
	s.filtered, s.kept = s.apply(s.mask)
}

// stored returns the real-FFT bins (n x (d/2+1)) of x given on the reference history's grid:
// what Filter stores. The full-spectrum reference keeps the whole n x d grid, so that its
// quantile is computed independently of Filter's multiplicities.
func (s *refState) stored(x []float64) []float64 { return storedBins(x, s.n, s.d) }

// storedMask is stored for the reference's mask.
func (s *refState) storedMask() []bool { return storedBins(s.mask, s.n, s.d) }

func storedBins[T any](x []T, n, d int) []T {
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

// fullValues expands values on the real-FFT bins (n x (d/2+1)), such as Filter's history, to the
// n x d grid by the mirror symmetry x(-i, -j) = x(i, j); values already on the grid are returned.
func (s *refState) fullValues(x []float64) []float64 { return expandHermitian(x, s.n, s.d) }

// fullMask is fullValues for a mask: column j <= d/2 is the mask's own, and column d-j
// (j = 1 .. ceil(d/2)-1) mirrors bin (-i mod n, j): the Hermitian expansion M'.
func (s *refState) fullMask(mask []bool) []bool { return expandHermitian(mask, s.n, s.d) }

func expandHermitian[T any](x []T, n, d int) []T {
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

// apply returns Re(IFFT2(F*M')) for the last spectrum and a mask on the stored bins, and the
// kept energy fraction sum|F*M'|^2 / sum|F|^2.
func (s *refState) apply(mask []bool) (filtered []float64, kept float64) {
	full := s.fullMask(mask)
	masked := make([]complex128, len(s.spectrum))
	var keptE, totalE, peak float64
	for _, f := range s.spectrum {
		peak = math.Max(peak, cmplx.Abs(f))
	}
	for i, f := range s.spectrum {
		e := cmplx.Abs(f) / peak // Scaled: squares of 1e200 would overflow.
		e *= e
		totalE += e
		if full[i] {
			masked[i] = f
			keptE += e
		}
	}
	back := refFFT2(masked, s.n, s.d, true)
	filtered = make([]float64, len(back))
	for i, v := range back {
		filtered[i] = real(v)
	}
	kept = 1
	if totalE > 0 {
		kept = keptE / totalE
	}
	return
}

// refAlpha is the schedule formula of docs/ALGORITHM.md, written as there.
func refAlpha(t int, cfg Config) float64 {
	a0, a1 := cfg.AlphaStart, cfg.AlphaEnd
	s := math.Min(float64(t)/float64(cfg.TotalSteps), 1)
	switch cfg.Schedule {
	case ScheduleLinear:
		return a0 + (a1-a0)*s
	case ScheduleCosine:
		return a1 + (a0-a1)*(1+math.Cos(math.Pi*s))/2
	}
	return a0
}

// imagNorm returns ||Im(IFFT2(F*M'))||_2 for the last spectrum and a mask on the stored bins:
// what taking the real part discards.
func (s *refState) imagNorm(mask []bool) float64 {
	full := s.fullMask(mask)
	masked := make([]complex128, len(s.spectrum))
	for i, f := range s.spectrum {
		if full[i] {
			masked[i] = f
		}
	}
	sum := 0.0
	for _, v := range refFFT2(masked, s.n, s.d, true) {
		sum += imag(v) * imag(v)
	}
	return math.Sqrt(sum)
}

// mirror returns the index of bin (-i mod n, -j mod d) of bin idx in the full n x d spectrum.
func (s *refState) mirror(idx int) int {
	i, j := idx/s.d, idx%s.d
	return ((s.n-i)%s.n)*s.d + (s.d-j)%s.d
}
