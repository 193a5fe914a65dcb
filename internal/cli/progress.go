package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress shows how far a piece of work of a known number of units has come: on a terminal a
// bar with the count, rate and time left, once the work has run for ProgressDelay; elsewhere (a
// log) a line every ProgressInterval. Quick work shows nothing. Its methods are safe for
// concurrent use; a nil *Progress does nothing.
type Progress struct {
	mu          sync.Mutex
	w           io.Writer
	what, units string
	total, done int
	bar         *progressbar.ProgressBar // w is a terminal; nil: lines
	shown       bool                     // the bar has been drawn
	start, last time.Time
	lines       int // lines written (line mode)
	now         func() time.Time
}

// ProgressDelay is how long work runs before Progress shows it; ProgressInterval, the time
// between two lines in a log.
var (
	ProgressDelay    = 2 * time.Second
	ProgressInterval = time.Minute
)

// NewProgress starts the progress of total units (named by units, e.g. "batches") of the work
// described by what, shown on w: a bar where w is a terminal (lines where it is too narrow for
// one), lines elsewhere.
func NewProgress(w io.Writer, what string, total int, units string) *Progress {
	columns := 0
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if columns, _, _ = term.GetSize(int(f.Fd())); columns <= 0 {
			columns = 80
		}
	}
	return newProgress(w, what, total, units, columns, time.Now)
}

// barWidth is the width of the bar's gauge that keeps its line within columns: at most 40, and 0
// (no bar: lines) when less than 10 would be left. Besides the gauge a line holds the
// description, the percentage, the count (done/total), the rate in units/s and the time left
// ("[10h20m30s]"); a line longer than the terminal wraps, and every redraw then leaves a line
// behind.
func barWidth(columns int, what string, total int, units string) int {
	digits := len(strconv.Itoa(total))
	other := len(what) + len(" 100% []") + len(" (/, ") + 2*digits + len("12345 ") + len(units) + len("/s)") +
		len(" [10h20m30s]") + 2
	width := min(40, columns-other)
	if width < 10 {
		return 0
	}
	return width
}

// newProgress is NewProgress on a terminal of columns columns (0: not a terminal), with the clock now.
func newProgress(w io.Writer, what string, total int, units string, columns int, now func() time.Time) *Progress {
	t := now()
	p := &Progress{w: w, what: what, units: units, total: total, start: t, last: t, now: now}
	// The bar counts from the start (its rate and time left), and is drawn from ProgressDelay on.
	if width := barWidth(columns, what, total, units); width > 0 {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(gate{p}),
			progressbar.OptionSetWidth(width),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(units),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(false), // the time left alone, to fit 80 columns
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetTheme(progressbar.ThemeASCII),
			progressbar.OptionClearOnFinish(),
		)
		p.bar.StartWithoutRender() // its clocks start now, not at its first Add
	}
	return p
}

// Add records n more units done.
func (p *Progress) Add(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	t := p.now()
	elapsed := t.Sub(p.start)
	switch {
	case p.bar != nil:
		p.shown = p.shown || elapsed >= ProgressDelay
		_ = p.bar.Add(n)
	case p.bar == nil && t.Sub(p.last) >= ProgressInterval:
		p.line(elapsed)
		p.last = t
	}
}

// gate passes the bar's output to p's writer once the bar is shown, and drops it before.
type gate struct{ p *Progress }

func (g gate) Write(b []byte) (int, error) {
	if !g.p.shown {
		return len(b), nil
	}
	return g.p.w.Write(b)
}

// line writes one progress line: the count, the time so far and, from the rate so far, the
// time left.
func (p *Progress) line(elapsed time.Duration) {
	left := "?"
	if p.done > 0 {
		left = (elapsed * time.Duration(p.total-p.done) / time.Duration(p.done)).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "%s: %d of %d %s, %s so far, about %s left\n", p.what, p.done, p.total, p.units,
		elapsed.Round(time.Second), left)
	p.lines++
}

// Finish ends the display: a bar is cleared (the work's result follows in its place); a log,
// which had lines, gets a last one with the total time.
func (p *Progress) Finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.shown:
		_ = p.bar.Finish()
	case p.lines > 0:
		fmt.Fprintf(p.w, "%s: %d of %d %s in %s\n", p.what, p.done, p.total, p.units, p.now().Sub(p.start).Round(time.Second))
	}
}
