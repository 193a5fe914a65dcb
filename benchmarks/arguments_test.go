package benchmarks

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/smi-gomlx/smi/internal/backend"
)

// panicsWith fails unless fn panics with a message containing want.
func panicsWith(t *testing.T, what string, fn func(), want string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic, want one containing %q", what, want)
			return
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Errorf("%s: panic %q does not contain %q", what, msg, want)
		}
	}()
	fn()
}

// errorWith fails unless err is an error containing want.
func errorWith(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, want)
	} else if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q does not contain %q", what, err, want)
	}
}

// TestResultDomain checks Result's documented domain: without samples (an untimed part) Median,
// Quantile, Spread and BytesPerSecond are 0; q outside [0, 1] or NaN panics naming the method,
// with samples or without.
func TestResultDomain(t *testing.T) {
	untimed, ok := FilterResult{Results: []Result{{Name: PartFFT, Samples: []time.Duration{5}}}}.Time(PartQuantile)
	if ok {
		t.Fatalf("Time of an untimed part: ok")
	}
	for name, r := range map[string]Result{"zero": {}, "untimed part": untimed} {
		if m, q, s := r.Median(), r.Quantile(0.9), r.Spread(); m != 0 || q != 0 || s != 0 {
			t.Errorf("%s Result: Median %v, Quantile(0.9) %v, Spread %v; want 0, 0, 0", name, m, q, s)
		}
	}
	if bps := (BandwidthResult{Op: StreamOps[0], Elems: 1 << 10}).BytesPerSecond(); bps != 0 {
		t.Errorf("BytesPerSecond without samples = %v, want 0", bps)
	}
	timed := Result{Samples: []time.Duration{40, 10, 30, 20}}
	if got := fmt.Sprint(timed.Quantile(0), timed.Median(), timed.Quantile(1)); got != "10ns 25ns 40ns" {
		t.Errorf("Quantile(0), Median, Quantile(1) = %s, want 10ns 25ns 40ns", got)
	}
	for _, q := range []float64{-0.5, 1.5, math.NaN(), math.Inf(1)} {
		for name, r := range map[string]Result{"timed": timed, "zero": {}} {
			panicsWith(t, fmt.Sprintf("%s Quantile(%v)", name, q), func() { r.Quantile(q) },
				"benchmarks.Result.Quantile: q must be in [0, 1]")
		}
	}
}

// TestInterleaveArguments checks that Interleave rejects a case it cannot call and negative
// options with an error naming them, before calling any case.
func TestInterleaveArguments(t *testing.T) {
	calls := 0
	ok := Case{Name: "ok", Timed: func() (time.Duration, error) { calls++; return time.Millisecond, nil }}
	_, err := Interleave([]Case{ok, {Name: "none"}}, Options{Rounds: 2})
	errorWith(t, "case without Run or Timed", err, `case 1 "none" has neither Run nor Timed`)
	for field, opt := range map[string]Options{
		"Warmup":    {Warmup: -1},
		"Rounds":    {Rounds: -2},
		"MinSample": {MinSample: -time.Millisecond},
		"Budget":    {Budget: -time.Second},
		"MinRounds": {MinRounds: -1},
		"Settle":    {Settle: -time.Nanosecond},
	} {
		_, err := Interleave([]Case{ok}, opt)
		errorWith(t, field, err, "benchmarks.Interleave: Options."+field+" must not be negative")
	}
	if calls != 0 {
		t.Errorf("%d calls before the errors, want none", calls)
	}
	if _, err := Interleave([]Case{ok}, Options{}); err != nil || calls != 2 {
		t.Errorf("zero Options: %v after %d calls, want nil after 2 (a warm-up and one round)", err, calls)
	}
}

// TestRoundOrderDomain checks that RoundOrder panics, naming itself, for a negative n or r.
func TestRoundOrderDomain(t *testing.T) {
	for _, nr := range [][2]int{{4, -1}, {-1, 0}} {
		panicsWith(t, fmt.Sprintf("RoundOrder(%d, %d)", nr[0], nr[1]), func() { RoundOrder(nr[0], nr[1]) },
			"benchmarks.RoundOrder: n and r must not be negative")
	}
}

// TestShapeArguments checks the shape arguments of the case builders: negative dimensions,
// counts below 1 and models without a filtered shape are errors (panics, naming the method, for
// FilterSpec's methods, which return no error), reported when the case is built, not when it runs.
func TestShapeArguments(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	spec := FilterSpec{Dims: []int{-1, 4}}
	panicsWith(t, "Elems", func() { spec.Elems() }, "benchmarks.FilterSpec.Elems: dimensions [-1 4]: -1 is negative")
	panicsWith(t, "Bins", func() { spec.Bins() }, "benchmarks.FilterSpec.Bins: dimensions [-1 4]: -1 is negative")
	if e, n := (FilterSpec{Dims: []int{3, 0}}).Elems(), (FilterSpec{Dims: []int{3, 0}}).Bins(); e != 0 || n != 0 {
		t.Errorf("empty spec: Elems %d, Bins %d; want 0, 0", e, n)
	}
	_, _, err = FilterCases(b, spec)
	errorWith(t, "FilterCases", err, "benchmarks.FilterCases: dimensions [-1 4]: -1 is negative")

	for _, elems := range []int{-1, 0} {
		_, _, _, err := BandwidthCases(b, elems)
		errorWith(t, fmt.Sprintf("BandwidthCases(%d)", elems), err, "benchmarks.BandwidthCases: elems must be >= 1")
		_, err = MeasureBandwidth(b, elems, Options{})
		errorWith(t, fmt.Sprintf("MeasureBandwidth(%d)", elems), err, "benchmarks.BandwidthCases: elems must be >= 1")
	}

	for name, tc := range map[string]struct {
		shapes []ModelShape
		want   string
	}{
		"nil":      {nil, "no filtered shape among 0"},
		"scalars":  {[]ModelShape{{Count: 2}, {Dims: []int{}, Count: 1}, {Dims: []int{0, 4}, Count: 1}}, "no filtered shape among 3"},
		"count 0":  {[]ModelShape{{Dims: []int{4, 4}, Count: 0}}, "shape [4 4] has Count 0, want >= 1"},
		"count -1": {[]ModelShape{{Dims: []int{4, 4}, Count: 1}, {Dims: []int{8}, Count: -1}}, "shape [8] has Count -1, want >= 1"},
		"negative": {[]ModelShape{{Dims: []int{-1, 4}, Count: 1}}, "dimensions [-1 4]: -1 is negative"},
	} {
		for who, build := range map[string]func() (Case, func(), error){
			"ModelFilterCase": func() (Case, func(), error) { return ModelFilterCase(b, "m", tc.shapes, false) },
			"ModelFFTCase":    func() (Case, func(), error) { return ModelFFTCase(b, "m", tc.shapes) },
		} {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s %s: panic %v, want an error", who, name, r)
					}
				}()
				_, cleanup, err := build()
				if cleanup != nil {
					defer cleanup()
				}
				errorWith(t, who+" "+name, err, "benchmarks."+who+" m: "+tc.want)
			}()
		}
	}
}
