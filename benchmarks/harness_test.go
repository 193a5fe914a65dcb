package benchmarks

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/internal/backend"
)

func TestPairedRatio(t *testing.T) {
	a := Result{Samples: []time.Duration{10, 20, 10, 10, 10}}
	b := Result{Samples: []time.Duration{11, 22, 12, 10, 11}}
	r := PairedRatio(a, b)
	if r.Median != 1.1 || r.Lo != 1.0 || r.Hi != 1.2 || r.N != 5 {
		t.Fatalf("PairedRatio = %+v", r)
	}
	if m := b.Median(); m != 11 {
		t.Fatalf("Median = %v", m)
	}
}

// Interleave's order, with cases that report a fixed time (no clock read): warm-ups first, in
// the list's order, then rounds in which every case is sampled once, and over a full period of
// the design each case is first equally often and directly follows every other case equally
// often. The former rotation (round r starting at case r, the cyclic order fixed) fails this:
// with 3 cases (abc, bca, cab), b followed a in 2 rounds of 3 and a never followed b.
func TestInterleaveOrder(t *testing.T) {
	for n := 1; n <= 7; n++ {
		var order []int
		cases := make([]Case, n)
		for i := range cases {
			cases[i] = Case{Name: string(rune('a' + i)), Timed: func() (time.Duration, error) {
				order = append(order, i)
				return time.Millisecond, nil
			}}
		}
		period := n
		if n%2 == 1 {
			period = 2 * n
		}
		res, err := Interleave(cases, Options{Warmup: 1, Rounds: 2 * period})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if order[i] != i {
				t.Fatalf("n=%d: warm-ups %v, want each case once in the list's order", n, order[:n])
			}
			if len(res[i].Samples) != 2*period {
				t.Fatalf("n=%d: case %d has %d samples, want %d", n, i, len(res[i].Samples), 2*period)
			}
		}
		rounds := order[n:]
		first := make([]int, n)
		follows := make(map[[2]int]int) // {previous, next} within a round
		for r := range period {
			round := rounds[r*n : (r+1)*n]
			seen := make([]bool, n)
			for k, i := range round {
				if seen[i] {
					t.Fatalf("n=%d: round %d is %v: case %d twice", n, r, round, i)
				}
				seen[i] = true
				if k > 0 {
					follows[[2]int{round[k-1], i}]++
				}
			}
			first[round[0]]++
		}
		for i := range n {
			if first[i] != period/n {
				t.Fatalf("n=%d: case %d first in %d of %d rounds, want %d (rounds %v)", n, i, first[i], period, period/n, rounds[:period*n])
			}
			for j := range n {
				if want := (period / n); i != j && follows[[2]int{i, j}] != want {
					t.Fatalf("n=%d: case %d directly after case %d in %d rounds, want %d (rounds %v)", n, j, i, follows[[2]int{i, j}], want, rounds[:period*n])
				}
			}
		}
	}
}

// RoundOrder's design itself: rows are permutations, and the first-order carry-over is balanced.
func TestRoundOrder(t *testing.T) {
	if got := fmt.Sprint(RoundOrder(4, 0), RoundOrder(4, 1), RoundOrder(3, 0), RoundOrder(3, 1)); got != "[0 1 3 2] [1 2 0 3] [0 1 2] [2 1 0]" {
		t.Fatalf("rows %s", got)
	}
	if got := fmt.Sprint(RoundOrder(2, 0), RoundOrder(2, 1), RoundOrder(2, 2), RoundOrder(1, 5), RoundOrder(0, 0)); got != "[0 1] [1 0] [0 1] [0] []" {
		t.Fatalf("rows %s", got)
	}
}

func TestBandwidthSmall(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	res, err := MeasureBandwidth(b, 1<<16, Options{Warmup: 1, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.BytesPerSecond() <= 0 {
			t.Fatalf("%s: %v B/s", r.Op.Name, r.BytesPerSecond())
		}
	}
}

// A Timed case is timed by what it reports, and WarmEach adds one untimed call per sample.
func TestInterleaveTimedWarmEach(t *testing.T) {
	calls := 0
	c := Case{Name: "timed", Timed: func() (time.Duration, error) {
		calls++
		return time.Duration(calls) * time.Millisecond, nil // warm-up 1, then (2 untimed, 3), (4, 5)
	}}
	res, err := Interleave([]Case{c}, Options{Warmup: 1, Rounds: 2, WarmEach: true})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 5 {
		t.Fatalf("%d calls, want 5 (1 warm-up, then 2 per sample)", calls)
	}
	if got := res[0].Samples; len(got) != 2 || got[0] != 3*time.Millisecond || got[1] != 5*time.Millisecond {
		t.Fatalf("samples %v, want [3ms 5ms]: the reported times of the timed calls", got)
	}
}

// Await passes an execution's error on untouched and frees every output it is given.
func TestAwait(t *testing.T) {
	failed := errors.New("exec failed")
	if err := Await(nil, failed); err != failed {
		t.Fatalf("Await(nil, err) = %v, want %v", err, failed)
	}
	outs := []*tensors.Tensor{tensors.FromValue([]float32{1, 2}), tensors.FromValue(int32(3))}
	if err := Await(outs, nil); err != nil {
		t.Fatalf("Await: %v", err)
	}
	for i, o := range outs {
		if o.Ok() {
			t.Errorf("output %d not freed", i)
		}
	}
}
