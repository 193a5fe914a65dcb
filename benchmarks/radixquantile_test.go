package benchmarks

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/spectral"
)

// RadixQuantile must give spectral.Quantile's exact result, ties and negatives included.
func TestRadixQuantileMatchesSpectral(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	x, err := RandomTensor(b, 5, shapes.Make(dtypes.Float32, 37, 29))
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewExec(b, func(x *Node) []*Node {
		// Rounded copies add ties.
		ties := Round(MulScalar(x, 4))
		var outs []*Node
		for _, in := range []*Node{x, ties} {
			for _, q := range []float64{0, 0.25, 1} {
				outs = append(outs, spectral.Quantile(in, q))
				for _, bits := range []int{4, 8} {
					outs = append(outs, RadixQuantile(in, q, bits))
				}
			}
		}
		return outs
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(outs); i += 3 {
		want := outs[i].Value().(float32)
		for j := 1; j < 3; j++ {
			if got := outs[i+j].Value().(float32); got != want {
				t.Errorf("case %d variant %d: got %v, want %v", i/3, j, got, want)
			}
		}
	}
}
