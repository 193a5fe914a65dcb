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
	p := newProgress(&w, "evaluating", 10, "batches", 0, clock.now)
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
	for _, columns := range []int{0, 100} {
		var w bytes.Buffer
		clock := &fakeClock{time.Unix(1e9, 0)}
		p := newProgress(&w, "evaluating", 3, "batches", columns, clock.now)
		for range 3 {
			clock.t = clock.t.Add(ProgressDelay / 4)
			p.Add(1)
		}
		p.Finish()
		if w.Len() != 0 {
			t.Errorf("%d columns: quick work wrote %q", columns, w.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	var w bytes.Buffer
	clock := &fakeClock{time.Unix(1e9, 0)}
	p := newProgress(&w, "evaluating", 400, "batches", 100, clock.now)
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

// TestProgressFitsTheTerminal: a bar's line stays within the terminal's columns (a longer one
// wraps, and each redraw leaves a line behind), with long times, counts and rates; a terminal too
// narrow for a bar gets lines.
func TestProgressFitsTheTerminal(t *testing.T) {
	for _, columns := range []int{60, 80, 120, 300} {
		var w bytes.Buffer
		clock := &fakeClock{time.Unix(1e9, 0)}
		p := newProgress(&w, "evaluating", 4000, "batches", columns, clock.now)
		if p.bar == nil {
			if columns >= 80 {
				t.Errorf("%d columns: no bar", columns)
			}
			continue
		}
		// The longest line: the times at their widest, as many digits as the total, a fast rate.
		p.start = p.start.Add(-(10*time.Hour + 20*time.Minute))
		clock.t = clock.t.Add(ProgressDelay)
		for _, n := range []int{1, 3998} {
			p.Add(n)
			time.Sleep(150 * time.Millisecond) // the bar draws at most every 100 ms
		}
		for _, line := range strings.FieldsFunc(w.String(), func(r rune) bool { return r == '\r' || r == '\n' }) {
			if len(line) > columns {
				t.Errorf("%d columns: a line of %d: %q", columns, len(line), line)
			}
		}
	}
	if barWidth(60, "evaluating", 400, "batches") != 0 || barWidth(80, "evaluating", 16000, "batches") == 0 {
		t.Error("a bar on 60 columns, too narrow for one, or none on 80")
	}
}
