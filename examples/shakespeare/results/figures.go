package results

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// The figures a run's metrics compute from its per-iteration losses.

// DefaultThresholds are the training-loss thresholds of iterations-to-threshold: the paper's 1.0
// and the higher ones the smaller presets reach.
const DefaultThresholds = "2.5,2.0,1.8,1.5,1.2,1.0"

// ParseThresholds reads a comma-separated list of positive thresholds (the train command's
// -thresholds), highest first.
func ParseThresholds(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("-thresholds: %q is not a positive finite number", f)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

// SmoothWindow is the trailing window of the smoothed training-loss curve.
const SmoothWindow = 50

// SmoothingDoc says what the smoothed loss is, in the metrics and the report.
var SmoothingDoc = fmt.Sprintf("trailing mean of the last %d per-iteration training losses; defined from iteration %d on", SmoothWindow, SmoothWindow)

// Smooth returns the trailing mean of window values ending at each index (NaN before the
// window is full).
func Smooth(xs []float64, window int) []float64 {
	out := make([]float64, len(xs))
	sum := 0.0
	for i, x := range xs {
		sum += x
		if i >= window {
			sum -= xs[i-window]
		}
		if i+1 >= window {
			out[i] = sum / float64(window)
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}

// ItersToThresholds returns, for each threshold, the first iteration (1-based: the number of
// updates made) whose smoothed loss is below it.
func ItersToThresholds(iterLoss, thresholds []float64) []Threshold {
	s := Smooth(iterLoss, SmoothWindow)
	out := make([]Threshold, len(thresholds))
	for k, th := range thresholds {
		out[k].Loss = th
		for i, v := range s {
			if !math.IsNaN(v) && v < th {
				iter := i + 1
				out[k].Iter = &iter
				break
			}
		}
	}
	return out
}

// FinalVariance is the sample variance of the last 20% of the per-iteration losses (the paper:
// the final 1,000 of 5,000 iterations).
func FinalVariance(iterLoss []float64) (float64, int) {
	n := max(len(iterLoss)/5, 2)
	n = min(n, len(iterLoss))
	if n < 2 {
		return math.NaN(), n
	}
	return stat.Variance(iterLoss[len(iterLoss)-n:], nil), n
}

// UndefinedMetrics names the metrics a run of iters iterations leaves undefined, with the reason
// (nil: none); window is FinalVariance's.
func UndefinedMetrics(iters, window int) map[string]string {
	out := map[string]string{}
	if window < 2 {
		out["final_loss_variance"] = fmt.Sprintf("a variance needs 2 losses, and the window (the final 20%% of "+
			"iterations, at least 2) holds %d: the run has %d iteration(s)", window, iters)
	}
	if iters < SmoothWindow {
		out["iters_to_threshold"] = fmt.Sprintf("the smoothed loss (a trailing mean of %d iterations) is not defined "+
			"in a run of %d iteration(s): every threshold's iteration is null, not because it was never reached", SmoothWindow, iters)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
