package optimizers

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/internal/backend"
)

// gptLayer is the variables of one layer of programShape's model: four matrices, one of them (fc,
// 256x320) above the CPU batch limit of 65536 elements, and a vector. With the embeddings (65x48 and
// 64x48) the model has 6 shape classes.
var gptLayer = [][]int{{48, 144}, {48, 48}, {256, 320}, {48, 48}, {48}}

// programShape builds SMI's update (around plain SGD, defaults for backend b) for a model of two
// embeddings and the given layers, and counts the update's nodes by type; the graph is only built,
// not compiled.
func programShape(t *testing.T, b backends.Backend, layers int, layer [][]int) (counts map[NodeType]int, vars int) {
	t.Helper()
	ctx := context.New()
	var vs []*context.Variable
	add := func(name string, dims ...int) {
		vs = append(vs, ctx.In("model").VariableWithValue(name, tensors.FromShape(shapes.Make(dtypes.Float32, dims...))))
	}
	add("wte", 65, 48)
	add("wpe", 64, 48)
	for l := range layers {
		for i, dims := range layer {
			add(fmt.Sprintf("h%d/w%d", l, i), dims...)
		}
	}
	opt := must(SMI(plainSGD()).TotalSteps(10).Done())
	g := NewGraph(b, "program")
	defer g.Finalize()
	loss := ScalarZero(g, dtypes.Float32)
	for _, v := range vs {
		loss = Add(loss, ReduceAllSum(v.ValueGraph(g)))
	}
	before := len(g.Nodes())
	opt.UpdateGraph(ctx, g, loss)
	counts = map[NodeType]int{}
	for _, n := range g.Nodes()[before:] {
		counts[n.Type()]++
	}
	return counts, len(vs)
}

// TestSMIProgramOnAccelerator pins the shape of the program SMI gives a GPU, which no test here can
// run: on a GPU every FFT, reduction and gather is a kernel launch, so SMI's cost there depends on
// how many of them a step holds. With the defaults for an accelerator (every variable stacked with
// the others of its shape, compare counting), a deeper model must add no FFT, no gather and none of
// the exact quantile's passes: one forward and one inverse FFT per shape class, one shared set of
// counting reductions for all variables, no scatter (a scatter-add is contended atomics on a GPU),
// and at most one more sum per added variable (its finiteness check); and more shape classes must add
// no masked-minimum pass (the quantiles of all classes share their passes). The CPU defaults, for
// contrast, filter variables over 65536 elements one by one (XLA CPU runs them concurrently), so
// there the FFTs grow with depth.
func TestSMIProgramOnAccelerator(t *testing.T) {
	b := testBackend(t)
	const classes = 6
	shared := []NodeType{NodeTypeFFT, NodeTypeGather, NodeTypeReduceMin, NodeTypeReduceMax, NodeTypeDot,
		NodeTypeDotGeneral, NodeTypeConcatenate, NodeTypeScatterSum, NodeTypeScatterMax, NodeTypeScatterMin}
	for _, desc := range []string{"xla:/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin", "xla:tpu"} {
		gpu := backend.DescribedAs(b, desc) // only built, never compiled
		shallow, nShallow := programShape(t, gpu, 2, gptLayer)
		deep, nDeep := programShape(t, gpu, 6, gptLayer)
		for _, c := range []map[NodeType]int{shallow, deep} {
			if c[NodeTypeFFT] != 2*classes {
				t.Errorf("%s: %d FFTs, want %d (a forward and an inverse one per shape class)", desc, c[NodeTypeFFT], 2*classes)
			}
			if n := c[NodeTypeScatterSum] + c[NodeTypeScatterMax] + c[NodeTypeScatterMin]; n > 0 {
				t.Errorf("%s: %d scatters, want none (compare counting)", desc, n)
			}
		}
		for _, typ := range shared {
			if shallow[typ] != deep[typ] {
				t.Errorf("%s: %s nodes %d with 2 layers, %d with 6: they must not grow with depth", desc, typ, shallow[typ], deep[typ])
			}
		}
		if grew, added := deep[NodeTypeReduceSum]-shallow[NodeTypeReduceSum], nDeep-nShallow; grew > added {
			t.Errorf("%s: %d more sums for %d more variables: the quantile's counting passes must be shared", desc, grew, added)
		}
		// The same embeddings with a square matrix and a vector per layer: 4 shape classes instead of 6.
		fewer, _ := programShape(t, gpu, 2, [][]int{{48, 48}, {48}})
		if fewer[NodeTypeReduceMin] != shallow[NodeTypeReduceMin] {
			t.Errorf("%s: %d minimum reductions for 4 shape classes, %d for 6: the classes' quantiles must share their passes",
				desc, fewer[NodeTypeReduceMin], shallow[NodeTypeReduceMin])
		}
	}
	cpu := backend.DescribedAs(b, "xla:cpu") // the CPU's choices, whatever b computes on
	shallow, _ := programShape(t, cpu, 2, gptLayer)
	deep, _ := programShape(t, cpu, 6, gptLayer)
	if got, want := deep[NodeTypeFFT]-shallow[NodeTypeFFT], 2*4; got != want {
		t.Errorf("CPU: %d more FFTs with 4 more layers, want %d (the 256x320 layers filtered one by one)", got, want)
	}
	if shallow[NodeTypeScatterSum] == 0 {
		t.Error("CPU: no ScatterSum: the CPU counts keys by scatter")
	}
}
