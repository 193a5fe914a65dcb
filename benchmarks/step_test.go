package benchmarks

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/internal/backend"
	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// mlp is a two-layer model of a user's own on a random batch: what the public API times.
func mlp(t *testing.T) Model {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	x, err := RandomTensor(b, 1, shapes.Make(dtypes.Float32, 16, 32))
	if err != nil {
		t.Fatal(err)
	}
	y, err := RandomTensor(b, 2, shapes.Make(dtypes.Float32, 16, 4))
	if err != nil {
		t.Fatal(err)
	}
	return Model{
		Fn: func(ctx *context.Context, _ any, in []*Node) []*Node {
			h := Tanh(layers.Dense(ctx.In("hidden"), in[0], true, 24))
			return []*Node{layers.Dense(ctx.In("out"), h, true, 4)}
		},
		Loss:   losses.MeanSquaredError,
		Inputs: []*tensors.Tensor{x}, Labels: []*tensors.Tensor{y},
		Seed: 7,
	}
}

// CompareSMI times a user's model with a base optimizer and with SMI around it, and SMI's state
// (one history per filtered variable) shows in the counted memory.
func TestCompareSMI(t *testing.T) {
	m := mlp(t)
	b, _ := backend.New()
	adamw := gomlxopt.Adam().WeightDecay(0.1).Done()
	cmp, err := CompareSMI(b, m, adamw, func(c *smiopt.SMIConfig) *smiopt.SMIConfig { return c.HalfSpectrum(true) },
		Options{Warmup: 1, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Base.Name != "base" || cmp.SMI.Name != "SMI(base)" || len(cmp.Base.Samples) != 3 || len(cmp.SMI.Samples) != 3 {
		t.Fatalf("timings %+v / %+v, want base and SMI(base) with 3 rounds each", cmp.Base.Result, cmp.SMI.Result)
	}
	if cmp.Ratio.N != 3 || math.IsNaN(cmp.Ratio.Median) || cmp.Ratio.Median <= 0 || cmp.Overhead.N != 3 {
		t.Errorf("ratio %v, overhead %+v: want 3 paired rounds", cmp.Ratio, cmp.Overhead)
	}
	if cmp.Base.FirstStep <= 0 || cmp.SMI.FirstStep <= 0 {
		t.Errorf("first steps %v, %v: want the compilation timed", cmp.Base.FirstStep, cmp.SMI.FirstStep)
	}
	// Parameters: 32x24 + 24 + 24x4 + 4 float32. SMI adds half-spectrum histories of its rank >= 1
	// variables: 32 x (24/2+1), 1 x (24/2+1), 24 x (4/2+1), 1 x (4/2+1).
	const params, histories = 4 * (32*24 + 24 + 24*4 + 4), 4 * (32*13 + 13 + 24*3 + 3)
	if cmp.Base.Memory.ParamBytes != params || cmp.SMI.Memory.ParamBytes != params {
		t.Errorf("parameters %d and %d bytes, want %d", cmp.Base.Memory.ParamBytes, cmp.SMI.Memory.ParamBytes, params)
	}
	if extra := cmp.SMI.Memory.StateBytes - cmp.Base.Memory.StateBytes; extra < histories || extra > histories+64 {
		t.Errorf("SMI adds %d bytes of state, want the histories' %d (and a few scalars)", extra, histories)
	}
}

// A model without its functions is an error, not a panic inside GoMLX.
func TestNewStepIncomplete(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	if _, err := NewStep(b, Model{}, "empty", gomlxopt.Adam().Done()); err == nil {
		t.Error("NewStep accepted a model without Fn and Loss")
	}
}
