package stats

import (
	"math"
	"testing"
)

// References: SciPy 1.16 (scipy.stats.ttest_1samp, scipy.stats.wilcoxon with its exact
// distribution) and statsmodels 0.14 (TTestPower, the noncentral t), computed for these inputs.
func TestPairedStatistics(t *testing.T) {
	d := []float64{0.012, -0.004, 0.021, 0.008, 0.015}
	if p := PairedT(d); !(math.Abs(p-0.0675623667986586) <= 1e-6) {
		t.Errorf("paired t p = %.10f, want 0.0675623668", p)
	}
	if p := WilcoxonSignedRank(d); p != 0.125 {
		t.Errorf("Wilcoxon p = %g, want 0.125", p)
	}
	// Tied magnitudes (1.5 twice) get their mean rank.
	if p := WilcoxonSignedRank([]float64{0.5, -1.5, 1.5, 2.0, -0.25, 3.0, 1.0}); !(math.Abs(p-0.171875) <= 1e-12) {
		t.Errorf("Wilcoxon p with ties = %g, want 0.171875", p)
	}
	// Five pairs all one way: the smallest two-sided p the test can give, 2/32.
	if p := WilcoxonSignedRank([]float64{1, 2, 3, 4, 5}); p != 0.0625 {
		t.Errorf("Wilcoxon p, all positive = %g, want 0.0625", p)
	}
	for _, tc := range []struct {
		n            int
		power1, mde1 float64 // power at effect size 1 (mean/sd), effect size detected with 80% power
	}{{3, 0.1792553937765517, 3.264043552819638}, {5, 0.4013899173717948, 1.6819970833232674}, {10, 0.8030968566327218, 0.9960019107624178}} {
		if p := PairedTPower(math.Sqrt(float64(tc.n)), tc.n, 0.05); !(math.Abs(p-tc.power1) <= 1e-6) {
			t.Errorf("n=%d: power %.8f, want %.8f", tc.n, p, tc.power1)
		}
		if m := MinDetectable(tc.n, 1); !(math.Abs(m-tc.mde1) <= 1e-5) {
			t.Errorf("n=%d: minimum detectable effect %.8f sd, want %.8f", tc.n, m, tc.mde1)
		}
	}
	if !math.IsNaN(PairedT([]float64{1})) || !math.IsNaN(MinDetectable(1, 1)) || !math.IsNaN(WilcoxonSignedRank([]float64{0, 0})) {
		t.Error("statistics of too few pairs are not NaN")
	}
	// Bootstrap: configuration 1 is lowest for every seed, so it is best in every resample.
	ranks := BootstrapRanks([][]float64{{2, 1, 3}, {2.5, 1.5, 2.6}, {3, 2, 4}}, 1000, false)
	if ranks[1] != 1 || ranks[0] != 0 {
		t.Errorf("bootstrap best fractions %v", ranks)
	}
	if r := BootstrapRanks([][]float64{{2, 1, 3}, {2, 1, 3}}, 100, true); r[2] != 1 {
		t.Errorf("bootstrap best fractions, higher better: %v", r)
	}
}

func TestWelchAndMeanCI95(t *testing.T) {
	// Reference: Welch's test by direct numerical integration of Student's t density.
	if p := Welch([]float64{1, 2, 3, 4}, []float64{2, 3, 4, 5, 6}); math.Abs(p-0.161286) > 1e-4 {
		t.Errorf("Welch p-value %.6f, want 0.161286", p)
	}
	mean, lo, hi := MeanCI95([]float64{3.1, 2.9, 3.3})
	// t(0.975, 2) = 4.302653; sd = 0.2; half-width = 4.302653*0.2/sqrt(3).
	if math.Abs(mean-3.1) > 1e-12 || math.Abs((hi-lo)/2-4.302653*0.2/math.Sqrt(3)) > 1e-5 {
		t.Errorf("MeanCI95 = %g [%g, %g]", mean, lo, hi)
	}
}
