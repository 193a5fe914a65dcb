package results

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The palette of the run's plots, and of the study's reports.
var (
	ColorRaw   = color.RGBA{R: 190, G: 190, B: 190, A: 255}
	ColorTrain = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	ColorVal   = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// PlotRun draws one run's loss curves: per-iteration training loss (grey), its smoothed curve,
// and the evaluated train and validation losses.
func PlotRun(path string, m *Metrics) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s preset, run %d (%s), seed %d", m.Preset, m.Run, m.RunName, m.Seed)
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = "cross-entropy (nats/char)"
	p.Add(plotter.NewGrid())

	raw := make(plotter.XYs, len(m.IterLoss))
	for i, l := range m.IterLoss {
		raw[i] = plotter.XY{X: float64(i + 1), Y: l}
	}
	if err := AddLine(p, raw, ColorRaw, 0.5, "train (batch)"); err != nil {
		return err
	}
	var sm plotter.XYs
	for i, l := range Smooth(m.IterLoss, SmoothWindow) {
		if !math.IsNaN(l) {
			sm = append(sm, plotter.XY{X: float64(i + 1), Y: l})
		}
	}
	if len(sm) > 1 {
		if err := AddLine(p, sm, ColorTrain, 1.5, fmt.Sprintf("train (mean of last %d)", SmoothWindow)); err != nil {
			return err
		}
	}
	tr, va := make(plotter.XYs, len(m.Evals)), make(plotter.XYs, len(m.Evals))
	for i, e := range m.Evals {
		tr[i] = plotter.XY{X: float64(e.Iter), Y: e.Train}
		va[i] = plotter.XY{X: float64(e.Iter), Y: e.Val}
	}
	if err := addPoints(p, tr, ColorTrain, "train (eval)"); err != nil {
		return err
	}
	if err := addPoints(p, va, ColorVal, "validation (eval)"); err != nil {
		return err
	}
	p.Legend.Top = true
	return SavePlot(p, 8*vg.Inch, 5*vg.Inch, path)
}

// AddLine draws xys on p as a line of colour c and width (points), with its legend label.
func AddLine(p *plot.Plot, xys plotter.XYs, c color.Color, width float64, label string) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(width)
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

func addPoints(p *plot.Plot, xys plotter.XYs, c color.Color, label string) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, s.Color = c, c
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l, s)
	p.Legend.Add(label, l, s)
	return nil
}

var kindColors = []color.Color{ColorTrain, ColorVal, color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 148, G: 103, B: 189, A: 255}}

// PlotSpectralNorms draws each block matrix kind's spectral norm against the layer.
func PlotSpectralNorms(path string, a *Analysis) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("spectral norms: %s preset, run %d, seed %d", a.Preset, a.Run, a.Seed)
	p.X.Label.Text = "layer"
	p.Y.Label.Text = "largest singular value"
	p.Add(plotter.NewGrid())
	for k, kind := range BlockKinds {
		var xys plotter.XYs
		for _, r := range a.Matrices {
			if r.Kind == kind {
				xys = append(xys, plotter.XY{X: float64(r.Layer), Y: r.SpectralNorm})
			}
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color, s.Color = kindColors[k], kindColors[k]
		p.Add(l, s)
		p.Legend.Add(kind, l, s)
	}
	p.Legend.Top = true
	return SavePlot(p, 6*vg.Inch, 4*vg.Inch, path)
}

// SavePlot draws p, width by height, in the format of path's extension (png, svg, pdf, ...) and
// writes it atomically (WriteFileAtomic): an interruption or a full disk leaves the old file or
// the new one, never a part. (gonum's Plot.Save truncates the file before it draws.)
func SavePlot(p *plot.Plot, width, height vg.Length, path string) error {
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	w, err := p.WriterTo(width, height, format)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return err
	}
	return WriteFileAtomic(path, buf.Bytes())
}
