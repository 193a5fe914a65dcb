package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressLines(t *testing.T) {
	var w bytes.Buffer
	clock := &fakeClock{time.Unix(1e9, 0)}
	p := newProgress(&w, "evaluating", 10, "batches", false, clock.now)
	clock.t = clock.t.Add(30 * time.Second)
	p.Add(2)
	if w.Len() != 0 {
		t.Fatalf("a line before a minute: %q", w.String())
	}
	clock.t = clock.t.Add(30 * time.Second) // 60 s, 4 done: 90 s left at that rate
	p.Add(2)
	if got, want := w.String(), "evaluating: 4 of 10 batches, 1m0s so far, about 1m30s left\n"; got != want {
		t.Fatalf("line %q, want %q", got, want)
	}
	clock.t = clock.t.Add(59 * time.Second)
	p.Add(1)
	if n := strings.Count(w.String(), "\n"); n != 1 {
		t.Fatalf("%d lines within a minute of the last, want 1: %q", n, w.String())
	}
	clock.t = clock.t.Add(time.Second)
	p.Add(5)
	clock.t = clock.t.Add(3 * time.Second)
	p.Finish()
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	want := []string{
		"evaluating: 4 of 10 batches, 1m0s so far, about 1m30s left",
		"evaluating: 10 of 10 batches, 2m0s so far, about 0s left",
		"evaluating: 10 of 10 batches in 2m3s",
	}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", lines, want)
	}
}

func TestProgressQuickWorkShowsNothing(t *testing.T) {
	for _, bar := range []bool{false, true} {
		var w bytes.Buffer
		clock := &fakeClock{time.Unix(1e9, 0)}
		p := newProgress(&w, "evaluating", 3, "batches", bar, clock.now)
		for range 3 {
			clock.t = clock.t.Add(ProgressDelay / 4)
			p.Add(1)
		}
		p.Finish()
		if w.Len() != 0 {
			t.Errorf("bar %v: quick work wrote %q", bar, w.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	var w bytes.Buffer
	clock := &fakeClock{time.Unix(1e9, 0)}
	p := newProgress(&w, "evaluating", 400, "batches", true, clock.now)
	clock.t = clock.t.Add(ProgressDelay)
	p.Add(37)
	if !strings.Contains(w.String(), "37/400") || !strings.Contains(w.String(), "evaluating") {
		t.Fatalf("bar %q lacks the description or the count 37/400", w.String())
	}
	p.Finish()
	if strings.Contains(w.String(), "\n") {
		t.Errorf("the bar wrote lines, not one redrawn line: %q", w.String())
	}
	var none *Progress // a nil Progress does nothing
	none.Add(1)
	none.Finish()
}
