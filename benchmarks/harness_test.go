package benchmarks

import (
	"testing"
	"time"

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

func TestInterleaveOrder(t *testing.T) {
	var order []string
	mk := func(name string) Case {
		return Case{Name: name, Run: func() error { order = append(order, name); return nil }}
	}
	res, err := Interleave([]Case{mk("a"), mk("b")}, Options{Warmup: 1, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := "a b a b b a"
	if got := join(order); got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	if len(res[0].Samples) != 2 || len(res[1].Samples) != 2 {
		t.Fatalf("samples: %+v", res)
	}
}

func join(xs []string) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
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
