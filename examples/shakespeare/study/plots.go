package study

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/stats"
)

// plotNames are the report's plots, written in each section's plot folder.
const (
	plotTrainCurves = "loss_train.png"
	plotTrainDiff   = "loss_train_minus_run0.png"
	plotValCurves   = "loss_val.png"
	plotClaims      = "claims.png"
)

func plotFile(m measure) string {
	return "interval_" + strings.NewReplacer(" ", "_", "/", "_", "%", "pct", ",", "", "(", "", ")", "", "<", "lt", ".", "_").Replace(m.name) + ".png"
}

// reproductionPlots draws the report's plots into dir: mean loss curves with a 95% band per
// configuration, an interval plot per claim's measure, and the claims' paired changes.
func reproductionPlots(d *studyData, dir string) error {
	train := func(r *runRecord) ([]float64, []float64) {
		s := results.Smooth(r.metrics.IterLoss, results.SmoothWindow)
		xs := make([]float64, len(s))
		for i := range s {
			xs[i] = float64(i + 1)
		}
		return xs, s
	}
	val := func(r *runRecord) ([]float64, []float64) {
		xs, ys := make([]float64, len(r.metrics.Evals)), make([]float64, len(r.metrics.Evals))
		for i, e := range r.metrics.Evals {
			xs[i], ys[i] = float64(e.Iter), e.Val
		}
		return xs, ys
	}
	if err := d.curvePlot(filepath.Join(dir, plotTrainCurves),
		fmt.Sprintf("training loss (trailing mean of %d iterations): mean over seeds, 95%% band", results.SmoothWindow), train); err != nil {
		return err
	}
	if err := d.curvePlot(filepath.Join(dir, plotValCurves), "validation loss: mean over seeds, 95% band", val); err != nil {
		return err
	}
	if err := d.diffCurvePlot(filepath.Join(dir, plotTrainDiff), train); err != nil {
		return err
	}
	for _, c := range d.claims() {
		if err := d.intervalPlot(filepath.Join(dir, plotFile(c.m)), c.m); err != nil {
			return err
		}
	}
	return d.claimsPlot(filepath.Join(dir, plotClaims))
}

// curvePlot draws, per configuration, the mean over seeds of curve(run) with its 95% Student-t
// band. The bands are wide early and narrow late, so the y axis shows the second half's range
// with margin; the first points are off the top.
func (d *studyData) curvePlot(path, title string, curve func(*runRecord) ([]float64, []float64)) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = "cross-entropy (nats/char)"
	p.Add(plotter.NewGrid())
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for k, run := range d.runs {
		var xs []float64
		var curves [][]float64
		for _, seed := range d.seeds {
			if r := d.byRun[run][seed]; r != nil {
				x, y := curve(r)
				if xs == nil || len(x) < len(xs) {
					xs = x
				}
				curves = append(curves, y)
			}
		}
		if len(curves) == 0 {
			continue
		}
		r, _ := results.LookupRun(run)
		lo, hi, err := addMeanBand(p, xs, curves, withAlpha(plotutil.Color(k), 255), 50, fmt.Sprintf("run %d (%s)", run, r.Name))
		if err != nil {
			return err
		}
		yMin, yMax = math.Min(yMin, lo), math.Max(yMax, hi)
	}
	if !math.IsInf(yMin, 0) {
		margin := 0.15 * (yMax - yMin)
		p.Y.Min, p.Y.Max = yMin-margin, yMax+3*margin
	}
	p.Legend.Top = true
	return results.SavePlot(p, 9*vg.Inch, 5.5*vg.Inch, path)
}

// diffCurvePlot draws, per SMI configuration, the mean over seeds of its curve minus run 0's
// for the same seed, with its 95% band: the paired comparison, drawn.
func (d *studyData) diffCurvePlot(path string, curve func(*runRecord) ([]float64, []float64)) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("training loss minus run 0's, same seed (trailing mean of %d): mean over seeds, 95%% band", results.SmoothWindow)
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = "difference (nats/char; below 0: lower than run 0)"
	p.Add(plotter.NewGrid())
	for k, run := range d.runs {
		if run == 0 {
			continue
		}
		var xs []float64
		var diffs [][]float64
		for _, seed := range d.seeds {
			r, r0 := d.byRun[run][seed], d.byRun[0][seed]
			if r == nil || r0 == nil {
				continue
			}
			x, y := curve(r)
			_, y0 := curve(r0)
			n := min(len(y), len(y0))
			if xs == nil || n < len(xs) {
				xs = x[:n]
			}
			dy := make([]float64, n)
			for i := range n {
				dy[i] = y[i] - y0[i]
			}
			diffs = append(diffs, dy)
		}
		if len(diffs) == 0 {
			continue
		}
		r, _ := results.LookupRun(run)
		if _, _, err := addMeanBand(p, xs, diffs, withAlpha(plotutil.Color(k), 255), 40, fmt.Sprintf("run %d (%s)", run, r.Name)); err != nil {
			return err
		}
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: float64(d.maxIters()), Y: 0}})
	if err != nil {
		return err
	}
	zero.Color = color.Black
	p.Add(zero)
	p.Legend.Top = true
	return results.SavePlot(p, 9*vg.Inch, 5.5*vg.Inch, path)
}

func (d *studyData) maxIters() int {
	n := 0
	for _, r := range d.records {
		n = max(n, len(r.metrics.IterLoss))
	}
	return n
}

// addMeanBand draws the mean over series (each indexed like xs) as a line and its 95%
// Student-t interval as a band of the given opacity, and returns the range they span over the
// second half of xs.
func addMeanBand(p *plot.Plot, xs []float64, series [][]float64, col color.Color, alpha uint8, label string) (lo, hi float64, err error) {
	lo, hi = math.Inf(1), math.Inf(-1)
	var mean, upper, lower plotter.XYs
	vals := make([]float64, len(series))
	for i := range xs {
		for j, s := range series {
			vals[j] = s[i]
		}
		m, l, h := stats.MeanCI95(vals)
		if math.IsNaN(m) {
			continue
		}
		mean = append(mean, plotter.XY{X: xs[i], Y: m})
		if !math.IsNaN(l) {
			upper = append(upper, plotter.XY{X: xs[i], Y: h})
			lower = append(lower, plotter.XY{X: xs[i], Y: l})
		} else {
			l, h = m, m
		}
		if i >= len(xs)/2 {
			lo, hi = math.Min(lo, l), math.Max(hi, h)
		}
	}
	if len(upper) > 1 {
		poly := append(plotter.XYs{}, upper...)
		for i := len(lower) - 1; i >= 0; i-- {
			poly = append(poly, lower[i])
		}
		band, err := plotter.NewPolygon(poly)
		if err != nil {
			return lo, hi, err
		}
		band.Color = withAlpha(col, alpha)
		band.LineStyle.Width = 0
		p.Add(band)
	}
	if len(mean) > 1 {
		if err := results.AddLine(p, mean, col, 1.5, label); err != nil {
			return lo, hi, err
		}
	}
	return lo, hi, nil
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}

// intervalPlot draws every configuration's mean on m with its 95% interval, and each seed's
// (or, for the step times, each round's) value beside it.
func (d *studyData) intervalPlot(path string, m measure) error {
	p := plot.New()
	p.Title.Text = m.name + ": mean over seeds with 95% CI (dots: seeds)"
	if m.stepTime {
		p.Title.Text = m.name + ": mean over interleaved rounds with 95% CI (dots: rounds)"
	}
	p.Add(plotter.NewGrid())
	var names []string
	var means plotter.XYs
	var errs plotter.YErrors
	var seeds plotter.XYs
	for i, run := range d.runs {
		xs := d.allValues(run, m)
		names = append(names, fmt.Sprintf("run %d", run))
		if len(xs) == 0 {
			continue
		}
		mean, lo, hi := stats.MeanCI95(xs)
		half := 0.0
		if !math.IsNaN(lo) {
			half = (hi - lo) / 2
		}
		means = append(means, plotter.XY{X: float64(i), Y: mean})
		errs = append(errs, struct{ Low, High float64 }{half, half})
		for j, x := range xs {
			seeds = append(seeds, plotter.XY{X: float64(i) + 0.12 + 0.04*float64(j), Y: x})
		}
	}
	if len(means) == 0 {
		return nil
	}
	pts, err := plotter.NewScatter(means)
	if err != nil {
		return err
	}
	pts.Color, pts.Radius = results.ColorTrain, vg.Points(4)
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{means, errs})
	if err != nil {
		return err
	}
	eb.Color = results.ColorTrain
	sp, err := plotter.NewScatter(seeds)
	if err != nil {
		return err
	}
	sp.Color, sp.Radius = results.ColorRaw, vg.Points(2)
	p.Add(sp, pts, eb)
	p.X.Min, p.X.Max = -0.5, float64(len(d.runs))-0.5
	p.Y.Tick.Marker = preciseTicks{}
	p.NominalX(names...)
	return results.SavePlot(p, 7*vg.Inch, 4*vg.Inch, path)
}

// claimsPlot draws each claim's paired change from run 0 (percent of run 0, 95% CI) beside
// the paper's figure.
func (d *studyData) claimsPlot(path string) error {
	claims := d.claims()
	p := plot.New()
	p.Title.Text = "change from run 0, % (blue: ours, paired, 95% CI; red: the paper)"
	p.Add(plotter.NewGrid())
	var ours, paper plotter.XYs
	var errs plotter.XErrors
	var names []string
	for i, c := range claims {
		y := float64(len(claims) - 1 - i)
		names = append(names, fmt.Sprintf("%s (run %d)", c.text, c.run))
		paper = append(paper, plotter.XY{X: c.paperPct, Y: y})
		cmp := d.compareClaim(c, c.run)
		if math.IsNaN(cmp.pct) {
			continue
		}
		ours = append(ours, plotter.XY{X: cmp.pct, Y: y})
		lo, hi := cmp.pct-cmp.pctLo, cmp.pctHi-cmp.pct
		if math.IsNaN(lo) {
			lo, hi = 0, 0
		}
		errs = append(errs, struct{ Low, High float64 }{math.Abs(lo), math.Abs(hi)})
	}
	pp, err := plotter.NewScatter(paper)
	if err != nil {
		return err
	}
	pp.Color, pp.Radius = results.ColorVal, vg.Points(3)
	p.Add(pp)
	if len(ours) > 0 {
		op, err := plotter.NewScatter(ours)
		if err != nil {
			return err
		}
		op.Color, op.Radius = results.ColorTrain, vg.Points(4)
		eb, err := plotter.NewXErrorBars(struct {
			plotter.XYs
			plotter.XErrors
		}{ours, errs})
		if err != nil {
			return err
		}
		eb.Color = results.ColorTrain
		p.Add(op, eb)
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.5}, {X: 0, Y: float64(len(claims)) - 0.5}})
	if err != nil {
		return err
	}
	zero.Color = color.Black
	p.Add(zero)
	rev := make([]string, len(names))
	for i, n := range names {
		rev[len(names)-1-i] = n
	}
	p.NominalY(rev...)
	p.Y.Min, p.Y.Max = -0.5, float64(len(claims))-0.5
	return results.SavePlot(p, 10*vg.Inch, 5*vg.Inch, path)
}
