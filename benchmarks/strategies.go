package benchmarks

import (
	"fmt"
	"math"

	smiopt "github.com/smi-gomlx/smi/optimizers"
	"github.com/smi-gomlx/smi/spectral"
)

// Strategy is one way of computing SMI's filter: how the exact quantile counts and which
// variables are stacked with the others of their shape. Every strategy computes the same
// filter (spectral and optimizers test that); only its speed differs, and by backend.
type Strategy struct {
	// ID names the strategy on the command line (smibench -strategies) and in benchmark names.
	ID       string
	Counting spectral.Counting
	// BatchLimit is optimizers.SMIConfig.BatchLimit: 0 is the backend's default.
	BatchLimit int
	// NoQuantile sets q = 0 (keep every bin: no threshold is computed), a part split rather than
	// a strategy: it prices the rest of the filter (FFTs, history, mask, blend) without the quantile.
	NoQuantile bool
}

// String is the strategy's label in configuration names and reports, e.g. "compare, no limit".
func (s Strategy) String() string {
	counting := string(s.Counting)
	if counting == "" {
		counting = "auto"
	}
	limit := "auto limit"
	switch {
	case s.BatchLimit == math.MaxInt:
		limit = "no limit"
	case s.BatchLimit > 0:
		limit = fmt.Sprintf("limit %d", s.BatchLimit)
	}
	if s.NoQuantile {
		return "q=0, " + limit
	}
	return counting + ", " + limit
}

// Strategies are the combinations the strategy section times: both countings, with the CPU's
// batch limit and with none, the backend's own choice (auto), and the filter without its
// quantile. With compare counting, the quantiles of all shape classes share their passes
// (spectral.FilterGroups).
var Strategies = []Strategy{
	{ID: "scatter-64k", Counting: spectral.CountingScatter, BatchLimit: 1 << 16},
	{ID: "scatter-all", Counting: spectral.CountingScatter, BatchLimit: math.MaxInt},
	{ID: "compare-64k", Counting: spectral.CountingCompare, BatchLimit: 1 << 16},
	{ID: "compare-all", Counting: spectral.CountingCompare, BatchLimit: math.MaxInt},
	{ID: "auto", BatchLimit: 0},
	{ID: "q0-all", NoQuantile: true, BatchLimit: math.MaxInt},
}

// StrategyByID returns the strategy of Strategies with that ID.
func StrategyByID(id string) (Strategy, bool) {
	for _, s := range Strategies {
		if s.ID == id {
			return s, true
		}
	}
	return Strategy{}, false
}

// Configure applies the strategy to an SMI configuration (its Counting and BatchLimit; q = 0 for
// NoQuantile), e.g. s.Configure(optimizers.SMI(adamw).TotalSteps(n)).Done().
func (s Strategy) Configure(c *smiopt.SMIConfig) *smiopt.SMIConfig {
	c = c.Counting(s.Counting).BatchLimit(s.BatchLimit)
	if s.NoQuantile {
		c = c.Quantile(0)
	}
	return c
}
