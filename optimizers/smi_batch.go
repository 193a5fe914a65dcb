package optimizers

import (
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/spectral"
)

// Batch limits by backend (see DefaultBatchLimit and docs/BENCHMARKS.md, which times both).
const (
	// cpuBatchLimit lies between the largest variable of the GPT's cpu preset (65536 elements), whose
	// filter batching makes faster on XLA CPU, and those of its paper preset (up to 589824), whose
	// filter it makes slower there: XLA CPU runs the independent filters of large variables
	// concurrently, and stacking them only adds copies.
	cpuBatchLimit = 1 << 16
	// acceleratorBatchLimit stacks every variable with the others of its shape: on a GPU each
	// operation of the filter is a kernel launch, and one launch over B variables costs about as much
	// as over one, so same-shape variables (the layers of a transformer) share each launch.
	acceleratorBatchLimit = math.MaxInt
)

// DefaultBatchLimit is the batch limit SMI uses on backend b unless BatchLimit sets one: 65536
// elements on CPUs, no limit on GPUs and TPUs (spectral.Accelerator).
func DefaultBatchLimit(b backends.Backend) int {
	if spectral.Accelerator(b) {
		return acceleratorBatchLimit
	}
	return cpuBatchLimit
}

// groupMember is one filtered variable of a filterGroup.
type groupMember struct {
	index   int               // Position of the variable (and its gradient) in the trainable variables.
	hVar    *context.Variable // Its spectral history, which each variable keeps on its own.
	history *Node             // hVar's value in the graph.
}

// filterGroup is the set of variables that one spectral.FilterBatch filters: the same n x d matrix
// view and compute dtype and at most the batch limit's elements each, or one variable alone.
type filterGroup struct {
	n, d    int
	dtype   dtypes.DType
	members []groupMember
}

// groupGradients returns the gradients handed to the base optimizer when nothing is filtered (zeros
// for a variable without gradient, what GoMLX's Gradient returns for a variable the loss does not
// reach; the gradient itself otherwise) and the groups of variables to filter, in the order of
// their first variable. It creates (or, from a checkpoint in the full-grid layout, converts) each
// filtered variable's history under historyCtx.
func (o *smiOptimizer) groupGradients(historyCtx *context.Context, g *Graph, vars []*context.Variable, grads []*Node) (out []*Node, groups []*filterGroup) {
	type groupKey struct {
		n, d  int
		dtype dtypes.DType
		alone int // The variable's index if it is filtered alone, else -1.
	}
	index := map[groupKey]*filterGroup{}
	limit := o.batchLimit
	if limit == 0 {
		limit = DefaultBatchLimit(g.Backend())
	}
	out = make([]*Node, len(grads))
	for i, v := range vars {
		grad := grads[i]
		if grad == nil {
			// The history is left as is.
			out[i] = Zeros(g, v.Shape())
			continue
		}
		out[i] = grad
		hShape, ok := spectral.HistoryShape(grad.Shape())
		if !ok || !o.selected(v) {
			continue
		}
		n, d, _ := spectral.MatrixView(grad.Shape())
		upgradeFullHistory(historyCtx, v, hShape, d)
		hVar := stateVariable(historyCtx, v, "", hShape)
		key := groupKey{n, d, hShape.DType, -1}
		if n*d > limit {
			key.alone = i
		}
		group := index[key]
		if group == nil {
			group = &filterGroup{n: key.n, d: key.d, dtype: key.dtype}
			index[key] = group
			groups = append(groups, group)
		}
		group.members = append(group.members, groupMember{index: i, hVar: hVar, history: hVar.ValueGraph(g)})
	}
	return out, groups
}

// groupResults are FilterBatch's results for a group, slice j for member j.
type groupResults struct {
	filtered, history, kept, energy *Node
}

// filterGroups stacks each group's gradients (in its compute dtype) and histories and filters all
// groups with one spectral.FilterGroups, so that on an accelerator their exact quantiles share
// their passes; results[i] are group i's.
func filterGroups(groups []*filterGroup, grads []*Node, cfg spectral.Config, opts ...spectral.Option) []groupResults {
	gs := make([]*Node, len(groups))
	hs := make([]*Node, len(groups))
	for i, gr := range groups {
		members := make([]*Node, len(gr.members))
		histories := make([]*Node, len(gr.members))
		for j, m := range gr.members {
			members[j] = Reshape(ConvertDType(grads[m.index], gr.dtype), 1, gr.n, gr.d)
			histories[j] = InsertAxes(m.history, 0)
		}
		gs[i], hs[i] = Concatenate(members, 0), Concatenate(histories, 0)
	}
	results := make([]groupResults, len(groups))
	for i, f := range spectral.FilterGroups(gs, hs, cfg.Quantile, cfg.Beta, cfg.HalfSpectrum, opts...) {
		results[i] = groupResults{filtered: f.Filtered, history: f.History, kept: f.KeptEnergy, energy: f.Energy}
	}
	return results
}

// slice returns member j's results: its filtered gradient (grad's shape and dtype), its new history
// (history's shape), its kept-energy fraction (float64 scalar) and its gradient energy ||g||^2
// (float64 scalar; see spectral.FilterBatch).
func (r groupResults) slice(j int, grad, history *Node) (filtered, newHistory, kept, energy *Node) {
	filtered = ConvertDType(Reshape(Slice(r.filtered, AxisElem(j)), grad.Shape().Dimensions...), grad.DType())
	newHistory = Reshape(Slice(r.history, AxisElem(j)), history.Shape().Dimensions...)
	energy = Reshape(Slice(r.energy, AxisElem(j)))
	kept = ConvertDType(Reshape(Slice(r.kept, AxisElem(j))), dtypes.Float64)
	return filtered, newHistory, kept, energy
}
