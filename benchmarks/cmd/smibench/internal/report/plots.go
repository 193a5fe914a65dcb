package report

import (
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

// SaveLogLog writes a log-log line plot with points (SVG or PNG by the file's extension).
func SaveLogLog(file, title, xLabel, yLabel string, series []Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	var vs []any
	xMin, xMax, yMin, yMax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		var xys plotter.XYs
		for i := range s.X {
			if s.X[i] > 0 && s.Y[i] > 0 {
				xys = append(xys, plotter.XY{X: s.X[i], Y: s.Y[i]})
				xMin, xMax = math.Min(xMin, s.X[i]), math.Max(xMax, s.X[i])
				yMin, yMax = math.Min(yMin, s.Y[i]), math.Max(yMax, s.Y[i])
			}
		}
		if len(xys) == 0 {
			continue
		}
		vs = append(vs, s.Name, xys)
	}
	if len(vs) == 0 {
		return nil
	}
	if err := plotutil.AddLinePoints(p, vs...); err != nil {
		return err
	}
	// Explicit ranges: gonum pads a single point's range below zero, which a log axis rejects.
	p.X.Min, p.X.Max = xMin/1.5, xMax*1.5
	p.Y.Min, p.Y.Max = yMin/1.5, yMax*1.5
	return p.Save(18*vg.Centimeter, 12*vg.Centimeter, file)
}

// Bar is one bar with an error range.
type Bar struct {
	Label     string
	Value     float64
	Low, High float64
}

// SaveBars writes a bar chart with error bars and a horizontal reference line (e.g. the goal).
func SaveBars(file, title, yLabel string, bars []Bar, refs map[string]float64) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	values := make(plotter.Values, len(bars))
	labels := make([]string, len(bars))
	errs := make(plotter.XYs, len(bars))
	yerr := make(plotter.YErrors, len(bars))
	for i, b := range bars {
		values[i], labels[i] = b.Value, b.Label
		errs[i] = plotter.XY{X: float64(i), Y: b.Value}
		yerr[i].Low, yerr[i].High = b.Value-b.Low, b.High-b.Value
	}
	chart, err := plotter.NewBarChart(values, 14*vg.Millimeter)
	if err != nil {
		return err
	}
	chart.Color = color.RGBA{R: 90, G: 140, B: 200, A: 255}
	p.Add(chart)
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{errs, yerr})
	if err != nil {
		return err
	}
	p.Add(eb)
	names := make([]string, 0, len(refs))
	for name := range refs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		y := refs[name]
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: y}, {X: float64(len(bars)) - 0.5, Y: y}})
		if err != nil {
			return err
		}
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.Color = color.RGBA{R: 200, A: 255}
		p.Add(line)
		p.Legend.Add(name, line)
	}
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = math.Pi / 5
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	// Ratios sit near 1: start the axis just below the lowest interval.
	lo := 1.0
	for _, b := range bars {
		lo = math.Min(lo, b.Low)
	}
	p.Y.Min = math.Floor(lo*0.95*20) / 20
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(24*vg.Centimeter, 14*vg.Centimeter, file)
}
