package benchmarks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Case is one thing to time: Run performs exactly one call (one filter step, one training
// step, ...) and must wait for the result. A case timed by someone else (another process)
// sets Timed instead, which performs one call and returns how long it took.
type Case struct {
	Name  string
	Run   func() error
	Timed func() (time.Duration, error)
}

// call performs one call of the case and returns its duration.
func (c Case) call() (time.Duration, error) {
	if c.Timed != nil {
		return c.Timed()
	}
	start := time.Now()
	err := c.Run()
	return time.Since(start), err
}

// Await waits for a computation's outputs and frees them, the end of a timed call: execution is
// asynchronous until an output is read, so a call is done once its outputs are on the host. It
// takes an Exec's (or a TrainStep's) two results as they come and returns the first error.
func Await(outputs []*tensors.Tensor, err error) error {
	if err != nil {
		return err
	}
	for _, t := range outputs {
		if err := t.FinalizeAll(); err != nil {
			return err
		}
	}
	return nil
}

// Options controls Interleave. No field may be negative; zero values mean the defaults stated.
type Options struct {
	// Warmup calls per case before timing (at least one is made: the first call also compiles).
	Warmup int
	// Rounds of interleaved samples: each round takes one sample of every case (zero means 1).
	Rounds int
	// MinSample: a sample repeats Run until at least this long, so short calls are not
	// dominated by timer and dispatch noise. Zero means one call per sample.
	MinSample time.Duration
	// Budget stops adding rounds once the timed rounds have taken this long (MinRounds still
	// run). Zero means no budget.
	Budget time.Duration
	// MinRounds is the least number of rounds kept under a Budget (default 3).
	MinRounds int
	// Settle pauses before each sample, untimed, so that threads still spinning after the
	// previous case (XLA's and PyTorch's pools both spin a while before they sleep) do not
	// take the cores from the next one when the cases run in different processes.
	Settle time.Duration
	// WarmEach starts each sample with one untimed call, so a case is timed warm (threads awake,
	// its data in the caches), as in a loop of its own, not cold after another case ran.
	WarmEach bool
}

// Result holds the per-call time of each round for one case.
//
// A Result without samples (the zero Result, which FilterResult.Time returns for a part that was
// not timed) has Median, Quantile and Spread 0: a zero duration stands for "not timed", never for
// a measured time. Quantile's q must be in [0, 1]; any other q, NaN included, panics, with or
// without samples.
type Result struct {
	Name string
	// Samples[i] is the mean time of one call in round i.
	Samples []time.Duration
	// Calls per sample, fixed after warm-up.
	Calls int
}

// Interleave times the cases in rounds: every round samples each case once, so drift in machine
// load (other processes, thermal state) falls on all cases alike and paired per-round ratios
// cancel most of it. The order within a round changes from round to round as RoundOrder says:
// no case always follows the same one (a case timed right after another process, or after a
// case that shares its data, would otherwise carry that neighbour's effect into every ratio).
//
// It returns an error, before any call, if a case has neither Run nor Timed or a field of opt is
// negative.
func Interleave(cases []Case, opt Options) ([]Result, error) {
	if err := checkInterleave(cases, opt); err != nil {
		return nil, err
	}
	if len(cases) == 0 {
		return nil, nil
	}
	if opt.Rounds < 1 {
		opt.Rounds = 1
	}
	if opt.MinRounds < 1 {
		opt.MinRounds = 3
	}
	results := make([]Result, len(cases))
	for i, c := range cases {
		results[i].Name = c.Name
		results[i].Calls = 1
		warm := max(opt.Warmup, 1)
		var last time.Duration
		for range warm {
			d, err := c.call()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Name, err)
			}
			last = d
		}
		if opt.MinSample > 0 && last > 0 && last < opt.MinSample {
			results[i].Calls = int(math.Ceil(float64(opt.MinSample) / float64(last)))
		}
	}
	// Which case gets which row of the balanced design is drawn at random, so that over rounds
	// too few to complete it no case is favoured by its place in the list.
	labels := rand.Perm(len(cases))
	start := time.Now()
	for round := range opt.Rounds {
		if round >= opt.MinRounds && opt.Budget > 0 && time.Since(start) > opt.Budget {
			break
		}
		// A collection between samples, not inside one: Go garbage from one case should not
		// be charged to the next.
		runtime.GC()
		for _, j := range RoundOrder(len(cases), round) {
			i := labels[j]
			if opt.Settle > 0 {
				time.Sleep(opt.Settle)
			}
			if opt.WarmEach {
				if _, err := cases[i].call(); err != nil {
					return nil, fmt.Errorf("%s: %w", cases[i].Name, err)
				}
			}
			var total time.Duration
			for range results[i].Calls {
				d, err := cases[i].call()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", cases[i].Name, err)
				}
				total += d
			}
			results[i].Samples = append(results[i].Samples, total/time.Duration(results[i].Calls))
		}
	}
	return results, nil
}

// checkInterleave returns Interleave's error for cases and opt, or nil.
func checkInterleave(cases []Case, opt Options) error {
	for i, c := range cases {
		if c.Run == nil && c.Timed == nil {
			return fmt.Errorf("benchmarks.Interleave: case %d %q has neither Run nor Timed", i, c.Name)
		}
	}
	for _, f := range []struct {
		name     string
		negative bool
		value    any
	}{
		{"Warmup", opt.Warmup < 0, opt.Warmup},
		{"Rounds", opt.Rounds < 0, opt.Rounds},
		{"MinSample", opt.MinSample < 0, opt.MinSample},
		{"Budget", opt.Budget < 0, opt.Budget},
		{"MinRounds", opt.MinRounds < 0, opt.MinRounds},
		{"Settle", opt.Settle < 0, opt.Settle},
	} {
		if f.negative {
			return fmt.Errorf("benchmarks.Interleave: Options.%s must not be negative, got %v", f.name, f.value)
		}
	}
	return nil
}

// RoundOrder is the order in which round r times n cases (indices 0..n-1): row r of a Williams
// design, a Latin square balanced for first-order carry-over. Every case comes once in every
// round and once in every position, and every case directly follows every other case equally
// often: once each over n rounds for even n, twice each over 2n rounds for odd n (the square's
// rows interleaved with their mirror images). A fixed order, or the same order rotated, makes
// the same case follow the same one in (nearly) every round, which biases paired ratios.
//
// n and r must not be negative; RoundOrder panics otherwise.
func RoundOrder(n, r int) []int {
	if n < 0 || r < 0 {
		panic(fmt.Errorf("benchmarks.RoundOrder: n and r must not be negative, got n = %d, r = %d", n, r))
	}
	order := make([]int, n)
	if n == 0 {
		return order
	}
	row, reverse := r%n, false
	if n%2 == 1 {
		row, reverse = (r/2)%n, r%2 == 1
	}
	for k := range n {
		// The first row is 0, 1, n-1, 2, n-2, ...; row r adds r to each entry (mod n).
		v := (k + 1) / 2
		if k%2 == 0 && k > 0 {
			v = n - k/2
		}
		order[k] = (v + row) % n
	}
	if reverse {
		slices.Reverse(order)
	}
	return order
}

// Median of the samples; 0 without samples.
func (r Result) Median() time.Duration { return r.Quantile(0.5) }

// Quantile q of the samples (linear interpolation between order statistics, as numpy.quantile's
// default); 0 without samples. q must be in [0, 1]: Quantile panics otherwise, NaN included.
func (r Result) Quantile(q float64) time.Duration {
	if !(q >= 0 && q <= 1) { // Also rejects NaN.
		panic(fmt.Errorf("benchmarks.Result.Quantile: q must be in [0, 1], got %v", q))
	}
	if len(r.Samples) == 0 {
		return 0
	}
	return time.Duration(quantileSorted(durations(r.Samples), q))
}

// Spread is the interquartile range relative to the median; 0 without samples (or with a zero
// median).
func (r Result) Spread() float64 {
	m := float64(r.Median())
	if m == 0 {
		return 0
	}
	return float64(r.Quantile(0.75)-r.Quantile(0.25)) / m
}

// Ratio summarises the paired per-round ratios b/a of two results taken in the same rounds.
type Ratio struct {
	Median float64
	// Lo and Hi bound the median ratio: order statistics that form an approximately 95%
	// distribution-free confidence interval (the whole range for 5 or fewer rounds).
	Lo, Hi float64
	N      int
}

// PairedRatio returns the ratio b/a round by round, so slow rounds (load from other users of
// the machine) affect both sides of the ratio.
func PairedRatio(a, b Result) Ratio {
	n := min(len(a.Samples), len(b.Samples))
	if n == 0 {
		return Ratio{Median: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	rs := make([]float64, n)
	for i := range n {
		rs[i] = float64(b.Samples[i]) / float64(a.Samples[i])
	}
	slices.Sort(rs)
	lo, hi := medianCIRanks(n)
	return Ratio{Median: quantileSorted(rs, 0.5), Lo: rs[lo], Hi: rs[hi], N: n}
}

// String is the ratio with its interval, e.g. "1.031x [1.012, 1.050]", or "n/a" without rounds.
func (r Ratio) String() string {
	if r.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3fx [%.3f, %.3f]", r.Median, r.Lo, r.Hi)
}

// Diff summarises the paired per-round differences b - a of two results taken in the same
// rounds, with the distribution-free interval of PairedRatio.
type Diff struct {
	Median, Lo, Hi time.Duration
	N              int
}

// PairedDiff returns b - a round by round: what b adds to a (the SMI filter's share of a step,
// say), with the interval of that median.
func PairedDiff(a, b Result) Diff {
	n := min(len(a.Samples), len(b.Samples))
	if n == 0 {
		return Diff{}
	}
	ds := make([]float64, n)
	for i := range n {
		ds[i] = float64(b.Samples[i] - a.Samples[i])
	}
	slices.Sort(ds)
	lo, hi := medianCIRanks(n)
	return Diff{Median: time.Duration(quantileSorted(ds, 0.5)), Lo: time.Duration(ds[lo]), Hi: time.Duration(ds[hi]), N: n}
}

// medianCIRanks gives 0-based ranks j <= k with P(x_(j) <= median <= x_(k)) about 0.95, by the
// normal approximation to the binomial, clamped to the sample.
func medianCIRanks(n int) (int, int) {
	h := 0.98 * math.Sqrt(float64(n))
	lo := int(math.Floor(float64(n)/2 - h))
	hi := int(math.Ceil(float64(n)/2+h)) - 1
	return max(lo, 0), min(max(hi, 0), n-1)
}

func durations(ds []time.Duration) []float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	slices.Sort(xs)
	return xs
}

// quantileSorted interpolates linearly between order statistics at rank q*(n-1), as
// numpy.quantile does by default.
func quantileSorted(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(xs)-1)
	i := int(math.Floor(pos))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	f := pos - float64(i)
	return xs[i]*(1-f) + xs[i+1]*f
}
