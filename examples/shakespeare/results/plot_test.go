package results

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
)

// countNear counts the pixels of img within 30 (per channel) of c.
func countNear(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if absDiff(r>>8, uint32(c.R)) <= 30 && absDiff(g>>8, uint32(c.G)) <= 30 && absDiff(bl>>8, uint32(c.B)) <= 30 {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestPlotRunDrawsCurves decodes the loss plot of a synthetic run and checks that it holds the
// per-iteration curve (grey), the smoothed and evaluated training loss (blue) and the validation
// loss (red) where the data puts them: the falling validation curve must reach the plot's
// bottom-right corner (the legend is at the top), where the last, lowest evaluations are.
func TestPlotRunDrawsCurves(t *testing.T) {
	m := &Metrics{Preset: "tiny", Run: 0, RunName: "AdamW alone", Seed: 1}
	for i := range 400 {
		m.IterLoss = append(m.IterLoss, 2+2*math.Exp(-float64(i)/80)+0.1*math.Sin(float64(i)))
	}
	for it := 0; it <= 400; it += 100 {
		m.Evals = append(m.Evals, Eval{Iter: it, Train: 2 + 2*math.Exp(-float64(it)/80), Val: 2.1 + 2*math.Exp(-float64(it)/80)})
	}
	path := filepath.Join(t.TempDir(), "loss.png")
	if err := PlotRun(path, m); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("loss.png is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
		t.Fatalf("loss.png is %dx%d, want about 768x480", b.Dx(), b.Dy())
	}
	for name, c := range map[string]color.RGBA{"grey (per-iteration)": ColorRaw, "blue (train)": ColorTrain, "red (validation)": ColorVal} {
		if n := countNear(img, c); n < 200 {
			t.Errorf("%s: %d pixels of that colour, want a drawn curve (>= 200)", name, n)
		}
	}
	right := 0
	b := img.Bounds()
	for y := b.Min.Y + b.Dy()/2; y < b.Max.Y; y++ {
		for x := b.Min.X + b.Dx()*3/4; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if absDiff(r>>8, uint32(ColorVal.R)) <= 30 && absDiff(g>>8, uint32(ColorVal.G)) <= 30 && absDiff(bl>>8, uint32(ColorVal.B)) <= 30 {
				right++
			}
		}
	}
	if right == 0 {
		t.Errorf("no validation curve in the bottom-right corner of the plot, where iteration 400 and the lowest losses are")
	}
}

// TestSavePlotAtomic: SavePlot writes the format of the file's extension at the size asked, and
// through a temporary file: when the write fails, the previous file is left whole (gonum's
// Plot.Save empties it first).
func TestSavePlotAtomic(t *testing.T) {
	dir := t.TempDir()
	p := plot.New()
	p.Title.Text = "test"
	path := filepath.Join(dir, "p.png")
	if err := SavePlot(p, 2*vg.Inch, 1*vg.Inch, path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 2*vgimg.DefaultDPI || b.Dy() != vgimg.DefaultDPI {
		t.Errorf("PNG of %dx%d pixels, want %dx%d", b.Dx(), b.Dy(), 2*vgimg.DefaultDPI, vgimg.DefaultDPI)
	}
	svg := filepath.Join(dir, "p.svg")
	if err := SavePlot(p, 2*vg.Inch, 1*vg.Inch, svg); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(svg); !strings.Contains(string(b), "<svg") {
		t.Errorf("p.svg is not an SVG: %.80q", b)
	}
	if err := SavePlot(p, 2*vg.Inch, 1*vg.Inch, filepath.Join(dir, "p.nope")); err == nil {
		t.Error("an unknown format was accepted")
	}
	// The temporary file cannot be made: the write fails, and the previous plot stays whole.
	if err := os.Mkdir(path+".tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	p.Title.Text = "another"
	if err := SavePlot(p, 3*vg.Inch, 1*vg.Inch, path); err == nil {
		t.Error("the write succeeded without its temporary file")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, raw) {
		t.Errorf("a failed write changed the previous plot (%d bytes, was %d)", len(now), len(raw))
	}
}
