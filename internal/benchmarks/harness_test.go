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
