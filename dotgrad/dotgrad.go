// Package dotgrad replaces GoMLX v0.26's gradients of matrix products (Dot and DotGeneral)
// with the textbook ones: two matrix products per product.
//
// # Why
//
// GoMLX v0.26 differentiates a product by broadcasting the incoming gradient and the other
// operand to the full outer-product shape and reducing it (pkg/core/graph, dotVJP and
// dotGeneralVJP): O(M*N*K) memory and time instead of two O(M*N*K)-flop matrix products that
// run at the speed of a forward product. On XLA CPU a training step of nanoGPT's CPU model takes
// many times longer with it (`make bench` measures the two side by side: docs/BENCHMARKS.md, 1b).
// GoMLX fixed this upstream after v0.26; the values are the same either way (to rounding), only
// the graph is cheaper.
//
// # When to call Enable
//
// In any program that trains a model with matrix products on GoMLX v0.26, with SMI or any other
// optimizer: call Enable once, before the first training step is compiled (graphs built before
// keep the gradients they were built with). It is process-wide, as GoMLX's registry of
// gradients is, and changes nothing for programs that only run forward passes. Importing this
// package does nothing by itself.
//
//	dotgrad.Enable()
//	smi, err := optimizers.SMI(adamw).TotalSteps(5000).Done()
//	...
//	trainer := train.NewTrainer(backend, ctx, model, loss, smi, nil, nil)
//
// Products whose axes cannot be read (a future GoMLX that changes its internals) keep GoMLX's own
// gradient, so Enable never makes a gradient wrong, at worst slow.
//
// # Forms of the gradient products
//
// A dense layer y = x·W (x: [tokens, in], W: [in, out], a 2-D Dot) has two gradient products,
// each with an operand that is needed transposed: the input gradient dy·Wᵀ and the weight
// gradient xᵀ·dy. SetForm chooses how they are written. Folded (the default) writes a plain
// transposition, which XLA folds into the product's dimension numbers, so the product library
// reads that operand in transposed order (on XLA CPU, Eigen's tensor contraction packs it).
// Materialized copies the operand into its transposed layout first, a pass over in·out (Wᵀ) or
// tokens·in (xᵀ) elements against the product's 2·tokens·in·out flops, so that both products
// have the standard form [m, k]·[k, n] that every product library takes. XLA folds a plain
// transposition back into the product, so the copy is written as a transposition of three axes
// between two reshapes, which its transpose folding does not see through (checked in XLA CPU's
// optimized HLO; a future XLA could fold it, and then Materialized is Folded again). Both forms
// compute the same sums in the same order up to the library's blocking: the values agree to
// float rounding (the tests hold both to GoMLX's own gradients at 1e-4). Which one is faster
// depends on the CPU and the plugin's kernels: `make bench` times both (docs/BENCHMARKS.md, 1b).
package dotgrad

import (
	"fmt"
	"reflect"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

var (
	mu                   sync.Mutex
	enabled              bool
	form                 Form
	origDot, origGeneral VJP
)

// Form is how the gradient products of a 2-D Dot take the operand they need transposed (see
// the package documentation).
type Form int

const (
	// Folded leaves the transposition to the product: XLA folds it into the dimension numbers.
	Folded Form = iota
	// Materialized copies the operand into its transposed layout before the product.
	Materialized
)

// String is the form's name in reports: "folded" or "materialized".
func (f Form) String() string {
	switch f {
	case Folded:
		return "folded"
	case Materialized:
		return "materialized"
	}
	return fmt.Sprintf("Form(%d)", int(f))
}

// SetForm chooses the form of the gradients of 2-D Dot products built from now on (Folded until
// it is called); it takes effect only while Enable is in effect. Graphs built before keep theirs.
// Process-wide, as Enable.
func SetForm(f Form) error {
	if f != Folded && f != Materialized {
		return fmt.Errorf("dotgrad.SetForm: unknown form %d", int(f))
	}
	mu.Lock()
	defer mu.Unlock()
	form = f
	return nil
}

// CurrentForm reports the form SetForm chose.
func CurrentForm() Form {
	mu.Lock()
	defer mu.Unlock()
	return form
}

// Enable registers the fast gradients for the whole process (idempotent).
func Enable() {
	mu.Lock()
	defer mu.Unlock()
	if enabled {
		return
	}
	enabled = true
	origDot, origGeneral = VJPRegistration[NodeTypeDot], VJPRegistration[NodeTypeDotGeneral]
	VJPRegistration[NodeTypeDot] = func(node *Node, vjps []*Node, outShape shapes.Shape) []*Node {
		lhs, rhs := node.Inputs()[0], node.Inputs()[1]
		if lhs.Rank() != 2 || rhs.Rank() != 2 {
			return origDot(node, vjps, outShape)
		}
		v := vjps[0] // [i, k] for lhs [i, j] and rhs [j, k]
		transpose := foldedTranspose
		if CurrentForm() == Materialized {
			transpose = MaterializedTranspose
		}
		return []*Node{Dot(v, transpose(rhs)), Dot(transpose(lhs), v)}
	}
	VJPRegistration[NodeTypeDotGeneral] = func(node *Node, vjps []*Node, outShape shapes.Shape) []*Node {
		p, ok := readParams(node)
		if !ok {
			return origGeneral(node, vjps, outShape)
		}
		return dotGeneralVJP(node.Inputs()[0], node.Inputs()[1], p, vjps[0])
	}
}

// Disable puts GoMLX's own gradients back (for comparisons such as the benchmark's).
func Disable() {
	mu.Lock()
	defer mu.Unlock()
	if !enabled {
		return
	}
	enabled = false
	VJPRegistration[NodeTypeDot], VJPRegistration[NodeTypeDotGeneral] = origDot, origGeneral
}

// Enabled reports whether Enable is in effect.
func Enabled() bool {
	mu.Lock()
	defer mu.Unlock()
	return enabled
}

func foldedTranspose(x *Node) *Node { return Transpose(x, 0, 1) }

// MaterializedTranspose returns the transposition of a matrix x [a, b] as a copy that XLA's
// transpose folding does not fold into a product that consumes it: x is reshaped to three axes
// (one of its axes split in two), transposed, and reshaped to [b, a]. A matrix whose dimensions
// are both prime (or 1) cannot be split; it gets a plain Transpose.
func MaterializedTranspose(x *Node) *Node {
	if x.Rank() != 2 {
		panic(fmt.Errorf("dotgrad.MaterializedTranspose: want a matrix, got shape %s", x.Shape()))
	}
	a, b := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	if f := smallestFactor(a); f != 0 { // [f, a/f, b] -> [b, f, a/f]
		return Reshape(TransposeAllDims(Reshape(x, f, a/f, b), 2, 0, 1), b, a)
	}
	if f := smallestFactor(b); f != 0 { // [a, f, b/f] -> [f, b/f, a]
		return Reshape(TransposeAllDims(Reshape(x, a, f, b/f), 1, 2, 0), b, a)
	}
	return Transpose(x, 0, 1)
}

// smallestFactor is n's least divisor f with 1 < f < n, or 0 when there is none.
func smallestFactor(n int) int {
	for f := 2; f*f <= n; f++ {
		if n%f == 0 {
			return f
		}
	}
	return 0
}

type dotParams struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

// readParams reads the axes GoMLX keeps in an unexported struct.
func readParams(node *Node) (p dotParams, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	inputs := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !inputs.IsValid() || inputs.IsNil() {
		return p, false
	}
	s := inputs.Elem().Elem()
	ints := func(name string) []int {
		f := s.FieldByName(name)
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out
	}
	p = dotParams{ints("lhsContractingAxes"), ints("lhsBatchAxes"), ints("rhsContractingAxes"), ints("rhsBatchAxes")}
	return p, len(p.lhsContracting) == len(p.rhsContracting) && len(p.lhsBatch) == len(p.rhsBatch)
}

// crossAxes are an operand's axes that are neither batch nor contracting, in order: they
// appear in the output in this order, after the batch axes (lhs's before rhs's).
func crossAxes(rank int, contracting, batch []int) []int {
	used := make([]bool, rank)
	for _, a := range contracting {
		used[a] = true
	}
	for _, a := range batch {
		used[a] = true
	}
	var out []int
	for a := range rank {
		if !used[a] {
			out = append(out, a)
		}
	}
	return out
}

// dotGeneralVJP: for out[batch, lhsCross, rhsCross], the gradient of lhs contracts v's rhsCross
// axes with rhs's cross axes (batch kept), giving [batch, lhsCross, rhsContracting], which is
// lhs's [batch, cross, contracting] up to a transposition; likewise for rhs.
func dotGeneralVJP(lhs, rhs *Node, p dotParams, v *Node) []*Node {
	nb := len(p.lhsBatch)
	lhsCross := crossAxes(lhs.Rank(), p.lhsContracting, p.lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), p.rhsContracting, p.rhsBatch)
	vBatch := span(0, nb)
	vLhsCross := span(nb, len(lhsCross))
	vRhsCross := span(nb+len(lhsCross), len(rhsCross))

	gradLhs := DotGeneral(v, vRhsCross, vBatch, rhs, rhsCross, p.rhsBatch)
	gradLhs = toOperandOrder(gradLhs, p.lhsBatch, lhsCross, p.lhsContracting)
	gradRhs := DotGeneral(v, vLhsCross, vBatch, lhs, lhsCross, p.lhsBatch)
	gradRhs = toOperandOrder(gradRhs, p.rhsBatch, rhsCross, p.rhsContracting)
	return []*Node{gradLhs, gradRhs}
}

// toOperandOrder transposes x, whose axes are [batch..., cross..., contracting...], to the
// operand's own axis order.
func toOperandOrder(x *Node, batch, cross, contracting []int) *Node {
	perm := make([]int, x.Rank()) // perm[operand axis] = axis of x
	i := 0
	for _, group := range [][]int{batch, cross, contracting} {
		for _, a := range group {
			perm[a] = i
			i++
		}
	}
	for a, p := range perm {
		if a != p {
			return TransposeAllDims(x, perm...)
		}
	}
	return x
}

func span(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}
