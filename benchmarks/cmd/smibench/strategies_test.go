package main

import (
	"strings"
	"testing"
)

// TestGoalLine: the fastest strategy per preset is judged against the goal by its interval,
// q=0 never counts as the fastest, and a preset with q=0 alone is said not to be judged.
func TestGoalLine(t *testing.T) {
	adamW := func(preset string) strategyRecord { return strategyRecord{Preset: preset, Name: "AdamW", MedianMS: 10} }
	rec := func(preset, name string, ratio, lo, hi float64) strategyRecord {
		return strategyRecord{Preset: preset, Name: name, Ratio: ratio, RatioLo: lo, RatioHi: hi}
	}
	for _, c := range []struct {
		records []strategyRecord
		want    []string
	}{
		{[]strategyRecord{adamW("paper"), rec("paper", "SMI(AdamW) [compare, no limit]", 1.03, 1.02, 1.04),
			rec("paper", "SMI(AdamW) [scatter, no limit]", 1.3, 1.2, 1.4), rec("paper", "SMI(AdamW) [q=0, no limit]", 0.98, 0.97, 0.99)},
			[]string{"`paper`: fastest SMI(AdamW) [compare, no limit] at 1.030x [1.020, 1.040], goal <= 1.05x met"}},
		{[]strategyRecord{adamW("paper"), rec("paper", "SMI(AdamW) [compare, no limit]", 1.04, 1.02, 1.07)},
			[]string{"goal <= 1.05x met by the median only, not by the interval"}},
		{[]strategyRecord{adamW("cpu"), rec("cpu", "SMI(AdamW) [auto, auto limit]", 1.18, 1.17, 1.19),
			adamW("paper"), rec("paper", "SMI(AdamW) [q=0, no limit]", 1.005, 0.97, 1.05)},
			[]string{"`cpu`: fastest SMI(AdamW) [auto, auto limit] at 1.180x [1.170, 1.190], goal <= 1.05x not met; " +
				"`paper`: not judged, no strategy that computes the threshold was timed"}},
	} {
		got := goalLine(c.records)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("goalLine = %q, want it to contain %q", got, w)
			}
		}
		if strings.Contains(got, ": .") || strings.HasSuffix(got, ": .") {
			t.Errorf("goalLine = %q: an empty verdict", got)
		}
	}
}
