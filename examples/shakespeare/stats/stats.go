// Package stats holds the statistics the Shakespeare experiment reports: means with Student-t
// intervals, Welch's unpaired test, and the paired comparisons of the study (the paired t-test
// and its power, Wilcoxon's exact signed-rank test, bootstrap rankings). Each is checked
// against an independent reference in the tests (scipy, statsmodels, or direct integration).
package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// MeanCI95 returns the mean and the two-sided 95% Student-t confidence interval of xs.
func MeanCI95(xs []float64) (mean, lo, hi float64) {
	mean = stat.Mean(xs, nil)
	if len(xs) < 2 {
		return mean, math.NaN(), math.NaN()
	}
	half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(xs) - 1)}.Quantile(0.975) *
		stat.StdDev(xs, nil) / math.Sqrt(float64(len(xs)))
	return mean, mean - half, mean + half
}

// Welch returns the two-sided p-value of Welch's t-test for equal means (NaN if either sample
// has fewer than two values or both have zero variance).
func Welch(a, b []float64) float64 {
	if len(a) < 2 || len(b) < 2 {
		return math.NaN()
	}
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	sa, sb := va/float64(len(a)), vb/float64(len(b))
	if sa+sb == 0 {
		return math.NaN()
	}
	t := (ma - mb) / math.Sqrt(sa+sb)
	df := (sa + sb) * (sa + sb) / (sa*sa/float64(len(a)-1) + sb*sb/float64(len(b)-1))
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.CDF(-math.Abs(t))
}

// Format writes a figure as the reports do: 4 significant digits, in scientific notation
// below 1e-3 and from 1e5 on, and "n/a" for NaN (undefined).
func Format(x float64) string {
	switch {
	case math.IsNaN(x):
		return "n/a"
	case x != 0 && (math.Abs(x) < 1e-3 || math.Abs(x) >= 1e5):
		return fmt.Sprintf("%.3e", x)
	default:
		return fmt.Sprintf("%.4g", x)
	}
}

// Statistics of the paired comparisons: a seed gives every configuration the same initial
// weights and batches, so configuration k and run 0 are compared seed by seed through the
// differences d_s = x_k(s) - x_0(s).

// PairedT returns the two-sided p-value of the paired t-test of mean(d) = 0 (NaN for fewer than
// two pairs, or when every difference is the same).
func PairedT(d []float64) float64 {
	n := float64(len(d))
	if len(d) < 2 {
		return math.NaN()
	}
	mean, sd := stat.MeanStdDev(d, nil)
	if sd == 0 {
		if mean == 0 {
			return 1
		}
		return math.NaN()
	}
	t := mean / (sd / math.Sqrt(n))
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.CDF(-math.Abs(t))
}

// WilcoxonSignedRank returns the exact two-sided p-value of Wilcoxon's signed-rank test of d
// (zero differences dropped, tied magnitudes given their mean rank), from the full
// distribution of the statistic over the 2^n sign assignments. With n pairs no p-value is below
// 2^(1-n): 0.0625 for 5 pairs. NaN without non-zero differences or for more than 24 of them.
func WilcoxonSignedRank(d []float64) float64 {
	var nz []float64
	for _, x := range d {
		if x != 0 {
			nz = append(nz, x)
		}
	}
	n := len(nz)
	if n == 0 || n > 24 {
		return math.NaN()
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return math.Abs(nz[idx[a]]) < math.Abs(nz[idx[b]]) })
	ranks := make([]float64, n)
	for i := 0; i < n; {
		j := i
		for j+1 < n && math.Abs(nz[idx[j+1]]) == math.Abs(nz[idx[i]]) {
			j++
		}
		for k := i; k <= j; k++ {
			ranks[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	total, wPlus := 0.0, 0.0
	for i, x := range nz {
		total += ranks[i]
		if x > 0 {
			wPlus += ranks[i]
		}
	}
	// Two-sided: assignments at least as far from total/2 as the observed W+.
	obs := math.Abs(wPlus - total/2)
	extreme := 0
	for mask := 0; mask < 1<<n; mask++ {
		w := 0.0
		for i := range n {
			if mask&(1<<i) != 0 {
				w += ranks[i]
			}
		}
		if math.Abs(w-total/2) >= obs-1e-9 {
			extreme++
		}
	}
	return float64(extreme) / float64(int(1)<<n)
}

// PairedTPower is the power of the two-sided paired t-test at level alpha with n pairs when the
// true mean difference is ncp/sqrt(n) standard deviations, from the noncentral t distribution:
// P(|T| > c) with T = (Z + ncp) / sqrt(V/df), V ~ chi^2(df), integrated over V numerically
// (agrees with statsmodels' TTestPower to 1e-6).
func PairedTPower(ncp float64, n int, alpha float64) float64 {
	df := float64(n - 1)
	c := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1 - alpha/2)
	chi := distuv.ChiSquared{K: df}
	norm := distuv.UnitNormal
	// Over u = sqrt(V), where the integrand is smooth (in V it has a square-root cusp at 0).
	hi := math.Sqrt(df + 60*math.Sqrt(2*df) + 60)
	const steps = 4000 // Simpson's rule; the density is negligible beyond hi
	h := hi / steps
	sum := 0.0
	for i := 0; i <= steps; i++ {
		u := max(float64(i)*h, 1e-9) // the integrand's limit at 0 (chi^2's density is 0*inf there)
		s := c * u / math.Sqrt(df)
		f := (1 - norm.CDF(s-ncp) + norm.CDF(-s-ncp)) * chi.Prob(u*u) * 2 * u
		w := 2.0
		if i == 0 || i == steps {
			w = 1
		} else if i%2 == 1 {
			w = 4
		}
		sum += w * f
	}
	return sum * h / 3
}

// MinDetectable returns the smallest true mean difference that the two-sided paired t-test at
// level 0.05 detects with 80% power with n pairs whose differences have standard deviation sd
// (the sample's, taken as the truth): ncp*sd/sqrt(n), with ncp solved by bisection.
func MinDetectable(n int, sd float64) float64 {
	if n < 2 || math.IsNaN(sd) {
		return math.NaN()
	}
	lo, hi := 0.0, 100.0
	for range 60 {
		mid := (lo + hi) / 2
		if PairedTPower(mid, n, 0.05) < 0.8 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi * sd / math.Sqrt(float64(n))
}

// BootstrapRanks resamples the seeds (rows of x: x[s][k] is configuration k's value for seed
// s) with replacement, b times with a fixed seed, and returns for each configuration the
// fraction of resamples in which its mean is the best (lowest, or highest when higherBetter).
func BootstrapRanks(x [][]float64, b int, higherBetter bool) []float64 {
	if len(x) == 0 {
		return nil
	}
	k := len(x[0])
	best := make([]float64, k)
	rng := rand.New(rand.NewPCG(1, 2))
	means := make([]float64, k)
	for range b {
		clear(means)
		for range x {
			row := x[rng.IntN(len(x))]
			for j, v := range row {
				means[j] += v
			}
		}
		top := 0
		for j := range means {
			if higherBetter && means[j] > means[top] || !higherBetter && means[j] < means[top] {
				top = j
			}
		}
		best[top]++
	}
	for j := range best {
		best[j] /= float64(b)
	}
	return best
}
