package optimizers

import (
	"fmt"
	"math"

	"github.com/smi-gomlx/smi/internal/reference"
	"github.com/smi-gomlx/smi/spectral"
)

// refSMI is SMI for one variable on the host reference (internal/reference: float64, written from
// docs/ALGORITHM.md with gonum's FFT and a sort-based quantile), which shares no code with package
// spectral; it adds the blend and the enumeration of the bins at a tie with the threshold.
type refSMI struct {
	cfg spectral.Config
	st  *reference.State // n x d, or n x (d/2+1) with HalfSpectrum
}

func newRefSMI(cfg spectral.Config, dims ...int) *refSMI {
	d := dims[len(dims)-1]
	n := 1
	for _, x := range dims[:len(dims)-1] {
		n *= x
	}
	st := reference.NewState(n, d, cfg.HalfSpectrum)
	// |F(k)| = |F(-k)| for a real gradient: twins tie exactly, as in exact arithmetic, rather than by
	// float64 rounding.
	st.ExactTwins = true
	return &refSMI{cfg: cfg, st: st}
}

// stored returns the history's real-FFT bins (n x (d/2+1)): what SMI stores. For the full spectrum the
// reference keeps the whole n x d grid, so that its quantile does not rely on the symmetry SMI uses.
func (r *refSMI) stored() []float64 { return r.st.Stored(r.st.History) }

// refAlpha is the schedule at step t (docs/ALGORITHM.md, "Blend schedules").
func refAlpha(cfg spectral.Config, t int) float64 {
	return reference.Alpha(t, cfg.TotalSteps, string(cfg.Schedule), cfg.AlphaStart, cfg.AlphaEnd)
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
	maxH := r.st.UpdateHistory(g, r.cfg.Beta)
	history := r.st.History
	tau := reference.Quantile(history, r.cfg.Quantile)
	var ties []int
	for k, h := range history {
		if r.cfg.Quantile > 0 && math.Abs(h-tau) <= tieTolerance*maxH {
			ties = append(ties, k)
		}
	}
	if len(ties) > 8 {
		panic(fmt.Sprintf("reference: %d history bins tie at the threshold, too many to enumerate", len(ties)))
	}
	alpha := refAlpha(r.cfg, t)
	var results []refResult
	for choice := 0; choice < 1<<len(ties); choice++ {
		keep := make([]bool, len(history))
		for k, h := range history {
			keep[k] = h >= tau
		}
		for b, k := range ties {
			keep[k] = choice&(1<<b) != 0
		}
		// The mask on the history's bins, expanded to the full spectrum by Hermitian symmetry for the
		// half spectrum.
		filtered, kept := r.st.Apply(keep)
		res := refResult{blended: make([]float64, len(g)), kept: kept}
		for k := range res.blended {
			res.blended[k] = (1-alpha)*g[k] + alpha*filtered[k]
		}
		results = append(results, res)
	}
	return results
}
