package dotgrad

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/internal/backend"
)

// gradients of sum(product * weights) w.r.t. both operands, for several product forms.
func gradients(t *testing.T, lhsDims, rhsDims []int, product func(a, b *Node) *Node) [][]float32 {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	exec := MustNewExec(b, func(a, c *Node) []*Node {
		out := product(a, c)
		// Non-uniform weights, so a wrong axis order changes the result.
		w := Sin(ConvertDType(IotaFull(a.Graph(), shapes.Make(dtypes.Int32, out.Shape().Dimensions...)), dtypes.Float32))
		return Gradient(ReduceAllSum(Mul(out, w)), a, c)
	})
	fill := func(dims []int, phase float64) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(math.Cos(float64(i)*0.37 + phase))
		}
		return tensors.FromFlatDataAndDimensions(data, dims...)
	}
	outs := exec.MustExec(fill(lhsDims, 0), fill(rhsDims, 1))
	return [][]float32{tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])}
}

// TestSameGradientsAsGoMLX compares with GoMLX's own (slow) gradients.
func TestSameGradientsAsGoMLX(t *testing.T) {
	cases := []struct {
		name     string
		lhs, rhs []int
		product  func(a, b *Node) *Node
	}{
		{"dot", []int{5, 3}, []int{3, 4}, Dot},
		{"dot, composite sizes", []int{12, 8}, []int{8, 6}, Dot},
		{"dot, a prime and a composite size", []int{7, 6}, []int{6, 9}, Dot},
		{"dot, one row", []int{1, 4}, []int{4, 6}, Dot},
		{"linear btc,cd->btd", []int{2, 5, 3}, []int{3, 4}, func(a, b *Node) *Node { return Einsum("btc,cd->btd", a, b) }},
		{"tied head btc,vc->btv", []int{2, 5, 3}, []int{4, 3}, func(a, b *Node) *Node { return Einsum("btc,vc->btv", a, b) }},
		{"scores bhqd,bhkd->bhqk", []int{2, 3, 5, 4}, []int{2, 3, 6, 4}, func(a, b *Node) *Node { return Einsum("bhqd,bhkd->bhqk", a, b) }},
		{"values bhqk,bhkd->bhqd", []int{2, 3, 5, 6}, []int{2, 3, 6, 4}, func(a, b *Node) *Node { return Einsum("bhqk,bhkd->bhqd", a, b) }},
		{"batch axes last", []int{3, 4, 2}, []int{4, 5, 2}, func(a, b *Node) *Node { return DotGeneral(a, []int{1}, []int{2}, b, []int{0}, []int{2}) }},
	}
	var want [][][]float32
	for _, c := range cases {
		want = append(want, gradients(t, c.lhs, c.rhs, c.product))
	}
	Enable()
	defer func() { _ = SetForm(Folded) }()
	for _, form := range []Form{Folded, Materialized} {
		if err := SetForm(form); err != nil {
			t.Fatal(err)
		}
		for i, c := range cases {
			got := gradients(t, c.lhs, c.rhs, c.product)
			for k := range 2 {
				for j := range want[i][k] {
					if math.Abs(float64(got[k][j]-want[i][k][j])) > 1e-4 {
						t.Fatalf("%s, %s form: gradient %d differs at %d: %g vs GoMLX's %g", c.name, form, k, j, got[k][j], want[i][k][j])
					}
				}
			}
		}
	}
}

// TestMaterializedTranspose: the same values as Transpose, bit for bit, whichever axis can be
// split (or none).
func TestMaterializedTranspose(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, dims := range [][2]int{{6, 4}, {7, 6}, {6, 7}, {7, 5}, {1, 9}, {9, 1}, {1, 1}, {768, 128}} {
		data := make([]float32, dims[0]*dims[1])
		for i := range data {
			data[i] = float32(i) + 0.5
		}
		outs := MustExecOnceN(b, func(x *Node) []*Node { return []*Node{MaterializedTranspose(x), Transpose(x, 0, 1)} },
			tensors.FromFlatDataAndDimensions(data, dims[0], dims[1]))
		if got := outs[0].Shape().Dimensions; len(got) != 2 || got[0] != dims[1] || got[1] != dims[0] {
			t.Fatalf("%v: shape %v, want [%d %d]", dims, got, dims[1], dims[0])
		}
		got, want := tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%v: element %d is %g, Transpose gives %g", dims, i, got[i], want[i])
			}
		}
	}
}

func TestSetForm(t *testing.T) {
	defer func() { _ = SetForm(Folded) }()
	if err := SetForm(Form(7)); err == nil {
		t.Fatal("SetForm(7): no error")
	}
	if err := SetForm(Materialized); err != nil || CurrentForm() != Materialized {
		t.Fatalf("SetForm(Materialized): %v, form %s", err, CurrentForm())
	}
	if Folded.String() != "folded" || Materialized.String() != "materialized" {
		t.Fatalf("names %q and %q", Folded, Materialized)
	}
}

// TestDisable: Disable restores GoMLX's own gradients exactly, and Enable and Disable are
// idempotent.
func TestDisable(t *testing.T) {
	lhs, rhs := []int{2, 5, 3}, []int{4, 3}
	product := func(a, b *Node) *Node { return Einsum("btc,vc->btv", a, b) }
	Disable()
	Disable()
	if Enabled() {
		t.Fatal("Enabled after Disable")
	}
	want := gradients(t, lhs, rhs, product)
	Enable()
	Enable()
	if !Enabled() {
		t.Fatal("not Enabled after Enable")
	}
	Disable()
	got := gradients(t, lhs, rhs, product)
	for k := range 2 {
		for j := range want[k] {
			if got[k][j] != want[k][j] {
				t.Fatalf("after Disable, gradient %d differs at %d: %g, GoMLX's own %g", k, j, got[k][j], want[k][j])
			}
		}
	}
}
