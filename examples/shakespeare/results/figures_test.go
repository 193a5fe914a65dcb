package results

import (
	"math"
	"testing"
)

func TestSmoothAndThresholds(t *testing.T) {
	s := Smooth([]float64{4, 2, 3, 1, 5}, 2)
	if !math.IsNaN(s[0]) || s[1] != 3 || s[4] != 3 {
		t.Errorf("Smooth = %v", s)
	}
	th := ItersToThresholds([]float64{5, 5, 5, 5, 1, 1, 1, 1, 1, 1}, []float64{2})
	// Trailing means over 50 iterations need 50 values: none here.
	if th[0].Iter != nil {
		t.Errorf("threshold reached before the smoothing window filled: %v", *th[0].Iter)
	}
	// 50 losses of 5 then 1s: the trailing mean of 50 is 5 - 4k/50 after k ones, below 4.5
	// from k = 7, the 57th iteration.
	losses := make([]float64, 60)
	for i := range losses {
		losses[i] = 5
		if i >= 50 {
			losses[i] = 1
		}
	}
	if th := ItersToThresholds(losses, []float64{4.5}); th[0].Iter == nil || *th[0].Iter != 57 {
		t.Errorf("iterations to 4.5: %v, want 57", th[0].Iter)
	}
}
