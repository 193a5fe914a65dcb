package spectral

import "fmt"

// Schedule names how the blend weight alpha(t) moves from AlphaStart to AlphaEnd.
type Schedule string

const (
	// ScheduleConstant uses AlphaStart at every step (AlphaEnd is ignored).
	ScheduleConstant Schedule = "constant"
	// ScheduleLinear is alpha(t) = a0 + (a1 - a0) * s, with s = min(t/T, 1).
	ScheduleLinear Schedule = "linear"
	// ScheduleCosine is alpha(t) = a1 + (a0 - a1) * (1 + cos(pi*s)) / 2: flat at both ends.
	ScheduleCosine Schedule = "cosine"
)

// Config holds SMI's hyperparameters (see the package documentation for their meaning). The
// paper's settings for each base optimizer are optimizers.PaperDefaults.
type Config struct {
	// Quantile q in [0, 1): the fraction of frequencies dropped; 1-q is kept. 0 keeps everything.
	Quantile float64
	// Beta is the decay in [0, 1) of the exponential moving average of the spectral magnitudes.
	Beta float64
	// Schedule of the blend weight alpha(t).
	Schedule Schedule
	// AlphaStart and AlphaEnd, both in [0, 1], are alpha at step 0 and at step TotalSteps.
	AlphaStart, AlphaEnd float64
	// TotalSteps T > 0: the step at which the schedule reaches AlphaEnd (it stays there afterwards).
	TotalSteps int
	// HalfSpectrum selects the real-FFT history of shape n x (d/2+1): an extension, not the
	// paper's method (see the package documentation for how its kept set differs).
	HalfSpectrum bool
}

// Validate returns an error naming the first field out of its valid range, or nil.
func (c Config) Validate() error {
	if !(c.Quantile >= 0 && c.Quantile < 1) { // Also rejects NaN.
		return fmt.Errorf("spectral: Config.Quantile must be in [0, 1), got %v", c.Quantile)
	}
	if !(c.Beta >= 0 && c.Beta < 1) {
		return fmt.Errorf("spectral: Config.Beta must be in [0, 1), got %v", c.Beta)
	}
	switch c.Schedule {
	case ScheduleConstant, ScheduleLinear, ScheduleCosine:
	default:
		return fmt.Errorf("spectral: Config.Schedule must be one of %q, %q or %q, got %q",
			ScheduleConstant, ScheduleLinear, ScheduleCosine, c.Schedule)
	}
	if !(c.AlphaStart >= 0 && c.AlphaStart <= 1) {
		return fmt.Errorf("spectral: Config.AlphaStart must be in [0, 1], got %v", c.AlphaStart)
	}
	if !(c.AlphaEnd >= 0 && c.AlphaEnd <= 1) {
		return fmt.Errorf("spectral: Config.AlphaEnd must be in [0, 1], got %v", c.AlphaEnd)
	}
	if c.TotalSteps <= 0 {
		return fmt.Errorf("spectral: Config.TotalSteps must be > 0, got %d", c.TotalSteps)
	}
	return nil
}
