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
//	trainer := train.NewTrainer(backend, ctx, model, loss, optimizers.SMI(adamw), nil, nil)
//
// Products whose axes cannot be read (a future GoMLX that changes its internals) keep GoMLX's own
// gradient, so Enable never makes a gradient wrong, at worst slow.
package dotgrad

import (
	"reflect"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

var (
	mu                   sync.Mutex
	enabled              bool
	origDot, origGeneral VJP
)

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
		return []*Node{Dot(v, Transpose(rhs, 0, 1)), Dot(Transpose(lhs, 0, 1), v)}
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
	vBatch := iota(0, nb)
	vLhsCross := iota(nb, len(lhsCross))
	vRhsCross := iota(nb+len(lhsCross), len(rhsCross))

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

func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}
