package results

import "fmt"

// Run is one of the configurations of the paper's experiment (docs/ALGORITHM.md).
type Run struct {
	Name       string
	SMI        bool
	Schedule   string // alpha schedule: "linear" or "cosine"
	AlphaStart float64
	AlphaEnd   float64
	Beta       float64 // EMA decay of the spectral history
	Quantile   float64 // q: the fraction of frequencies masked out
}

// Runs are the paper's six configurations, by number (section 4).
var Runs = []Run{
	{Name: "AdamW alone"},
	{Name: "basic SMI", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.9, Beta: 0.9, Quantile: 0.5},
	{Name: "conservative alpha", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.9, Quantile: 0.5},
	{Name: "higher EMA decay", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.99, Quantile: 0.5},
	{Name: "top 75% frequencies", SMI: true, Schedule: "linear", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.99, Quantile: 0.25},
	{Name: "cosine alpha", SMI: true, Schedule: "cosine", AlphaStart: 0.1, AlphaEnd: 0.5, Beta: 0.99, Quantile: 0.25},
}

// LookupRun returns run n of Runs, or an error naming the runs there are.
func LookupRun(n int) (Run, error) {
	if n < 0 || n >= len(Runs) {
		return Run{}, fmt.Errorf("unknown run %d: the paper's runs are 0 (AdamW alone) to %d", n, len(Runs)-1)
	}
	return Runs[n], nil
}
