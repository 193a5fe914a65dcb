package benchmarks

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/spectral"
)

// The breakdown's parts, spectral's exported steps chained, must compute what spectral.Filter
// computes (full spectrum, odd and even widths), or the breakdown would time something else.
func TestPartsMatchFilter(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	cfg := FilterConfig()
	for _, dims := range [][]int{{6, 5}, {4, 8}} {
		n, d := dims[0], dims[1]
		g, err := RandomTensor(b, 1, shapes.Make(dtypes.Float32, n, d))
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewExec(b, func(g *Node) []*Node {
			h := Zeros(g.Graph(), shapes.Make(dtypes.Float32, n, spectral.HalfBins(d)))
			want, wantH, _ := spectral.Filter(g, h, cfg.Quantile, cfg.Beta, false)
			f := spectral.Spectrum(InsertAxes(g, 0))
			newH := spectral.UpdateHistory(InsertAxes(h, 0), spectral.Magnitude(f), cfg.Beta)
			tau := spectral.Threshold(newH, d, cfg.Quantile, false)
			_, w := spectral.Mask(newH, tau)
			got := Reshape(spectral.InverseMasked(f, w, d), n, d)
			newH = Reshape(newH, n, spectral.HalfBins(d))
			return []*Node{ReduceAllMax(Abs(Sub(got, want))), ReduceAllMax(Abs(Sub(newH, wantH))), ReduceAllMax(Abs(want))}
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := e.Exec(g)
		if err != nil {
			t.Fatal(err)
		}
		diff, diffH, scale := outs[0].Value().(float32), outs[1].Value().(float32), outs[2].Value().(float32)
		if diff > 1e-5*scale || diffH > 1e-5 || math.IsNaN(float64(diff)) {
			t.Errorf("%v: parts differ from spectral.Filter by %g (filtered, scale %g) and %g (history)", dims, diff, scale, diffH)
		}
	}
}
