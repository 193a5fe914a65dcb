package optimizers

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/smi-gomlx/smi/spectral"
)

// refSMI is an independent host reference of SMI for one variable, in float64, written from
// docs/ALGORITHM.md with gonum's FFT and a sort-based quantile. It shares no code with package spectral.
type refSMI struct {
	cfg     spectral.Config
	n, d    int
	history []float64 // n x d, or n x (d/2+1) with HalfSpectrum.
}

func newRefSMI(cfg spectral.Config, dims ...int) *refSMI {
	d := dims[len(dims)-1]
	n := 1
	for _, x := range dims[:len(dims)-1] {
		n *= x
	}
	cols := d
	if cfg.HalfSpectrum {
		cols = d/2 + 1
	}
	return &refSMI{cfg: cfg, n: n, d: d, history: make([]float64, n*cols)}
}

// stored returns the history's real-FFT bins (n x (d/2+1)): what SMI stores. For the full spectrum the
// reference keeps the whole n x d grid, so that its quantile does not rely on the symmetry SMI uses.
func (r *refSMI) stored() []float64 {
	bins := r.d/2 + 1
	if len(r.history) == r.n*bins {
		return r.history
	}
	out := make([]float64, 0, r.n*bins)
	for i := 0; i < r.n; i++ {
		out = append(out, r.history[i*r.d:i*r.d+bins]...)
	}
	return out
}

// alpha is the schedule at step t (docs/ALGORITHM.md, "Blend schedules").
func refAlpha(cfg spectral.Config, t int) float64 {
	s := math.Min(float64(t)/float64(cfg.TotalSteps), 1)
	a0, a1 := cfg.AlphaStart, cfg.AlphaEnd
	switch cfg.Schedule {
	case spectral.ScheduleLinear:
		return a0 + (a1-a0)*s
	case spectral.ScheduleCosine:
		return a1 + (a0-a1)*(1+math.Cos(math.Pi*s))/2
	}
	return a0
}

// refResult is one admissible outcome of a step: the blended gradient and the fraction of spectral energy kept.
type refResult struct {
	blended []float64
	kept    float64
}

// tieTolerance: history bins within this fraction of max(H) from the threshold are "at a tie": the float32
// graph's rounding may put them on either side of its threshold, so the reference accepts either decision
// for those bins, and nowhere else. Twins (|F(k)| = |F(-k)|) tie exactly and are common at the threshold.
const tieTolerance = 1e-5

// step returns the admissible outcomes for gradient g (flattened, row-major) at step t (one per keep/drop
// choice of the bins at a tie; usually just one), updating the history.
func (r *refSMI) step(g []float64, t int) []refResult {
	n, d := r.n, r.d
	F := fft2(g, n, d)
	cols := d
	if r.cfg.HalfSpectrum {
		cols = d/2 + 1
	}
	maxH := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < cols; j++ {
			// docs/ALGORITHM.md: |F(k)| = |F(-k)| for a real gradient. Averaging the twins makes that exact here too, so
			// twins tie exactly, as in exact arithmetic, rather than by float64 rounding.
			twin := ((n-i)%n)*d + (d-j)%d
			a := (cmplx.Abs(F[i*d+j]) + cmplx.Abs(F[twin])) / 2
			h := &r.history[i*cols+j]
			*h = r.cfg.Beta**h + (1-r.cfg.Beta)*a
			maxH = math.Max(maxH, *h)
		}
	}
	tau := refQuantile(r.history, r.cfg.Quantile)
	var ties []int
	for k, h := range r.history {
		if r.cfg.Quantile > 0 && math.Abs(h-tau) <= tieTolerance*maxH {
			ties = append(ties, k)
		}
	}
	if len(ties) > 8 {
		panic(fmt.Sprintf("reference: %d history bins tie at the threshold, too many to enumerate", len(ties)))
	}
	var results []refResult
	for choice := 0; choice < 1<<len(ties); choice++ {
		keepH := make([]bool, len(r.history))
		for k, h := range r.history {
			keepH[k] = h >= tau
		}
		for b, k := range ties {
			keepH[k] = choice&(1<<b) != 0
		}
		results = append(results, r.apply(g, F, keepH, t))
	}
	return results
}

// apply masks spectrum F with the mask on the history's bins (expanded to the full spectrum by Hermitian
// symmetry for the half spectrum), inverts it and blends.
func (r *refSMI) apply(g []float64, F []complex128, keepH []bool, t int) refResult {
	n, d := r.n, r.d
	cols := len(r.history) / n
	keep := func(i, j int) bool {
		if j >= cols {
			// Half spectrum: the mirror bin of (i, j) is (-i mod n, d-j), which the real FFT holds.
			i, j = (n-i)%n, d-j
		}
		return keepH[i*cols+j]
	}
	masked := make([]complex128, n*d)
	total, keptE := 0.0, 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			e := cmplx.Abs(F[i*d+j]) * cmplx.Abs(F[i*d+j])
			total += e
			if keep(i, j) {
				masked[i*d+j] = F[i*d+j]
				keptE += e
			}
		}
	}
	back := ifft2(masked, n, d)
	alpha := refAlpha(r.cfg, t)
	res := refResult{blended: make([]float64, n*d), kept: 1}
	for k := range res.blended {
		res.blended[k] = (1-alpha)*g[k] + alpha*real(back[k])
	}
	if total > 0 {
		res.kept = keptE / total
	}
	return res
}

// refQuantile is numpy.quantile's default (linear) method: sort, then interpolate at rank q*(N-1).
func refQuantile(x []float64, q float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}

// fft2 is the 2-D DFT of a real n x d matrix: 1-D transforms along rows, then along columns.
func fft2(g []float64, n, d int) []complex128 {
	out := make([]complex128, n*d)
	for k, v := range g {
		out[k] = complex(v, 0)
	}
	transform2(out, n, d, false)
	return out
}

// ifft2 is the inverse 2-D DFT, normalized by 1/(n*d).
func ifft2(f []complex128, n, d int) []complex128 {
	out := slices.Clone(f)
	transform2(out, n, d, true)
	for k := range out {
		out[k] /= complex(float64(n*d), 0)
	}
	return out
}

func transform2(x []complex128, n, d int, inverse bool) {
	apply := func(t *fourier.CmplxFFT, v []complex128) []complex128 {
		if inverse {
			return t.Sequence(nil, v)
		}
		return t.Coefficients(nil, v)
	}
	rowT := fourier.NewCmplxFFT(d)
	for i := 0; i < n; i++ {
		copy(x[i*d:(i+1)*d], apply(rowT, x[i*d:(i+1)*d]))
	}
	colT := fourier.NewCmplxFFT(n)
	col := make([]complex128, n)
	for j := 0; j < d; j++ {
		for i := 0; i < n; i++ {
			col[i] = x[i*d+j]
		}
		res := apply(colT, col)
		for i := 0; i < n; i++ {
			x[i*d+j] = res[i]
		}
	}
}
