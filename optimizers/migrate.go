package optimizers

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// upgradeFullHistory converts v's spectral history from the full-grid layout (n x d, the whole
// spectrum) to the layout SMI keeps, the real-FFT bins (want: n x (d/2+1), for v's n x d matrix
// view), so that checkpoints written in the full-grid layout resume. The full history is the same at
// k and -k, so its first d/2+1 columns hold all of it and the conversion is exact: such a checkpoint
// resumes as if it had been written in the current layout. Histories already of shape want, and
// variables that do not exist, are left alone; a history of any other shape than want or n x d (of
// another model, or another width whose d/2+1 is the same) panics.
func upgradeFullHistory(scopeCtx *context.Context, v *context.Variable, want shapes.Shape, d int) {
	path := scopeCtx.Scope()
	if v.Scope() != context.RootScope {
		path += v.Scope()
	}
	h := scopeCtx.GetVariableByScopeAndName(path, v.Name()) // Loads it from a checkpoint if one is attached.
	if h == nil || h.Shape().Equal(want) {
		return
	}
	n, bins := want.Dim(0), want.Dim(1)
	old := h.Shape()
	if old.DType != want.DType || old.Rank() != 2 || old.Dim(0) != n || old.Dim(1) != d || d/2+1 != bins {
		panicf("optimizers.SMI: the spectral history %s/%s has shape %s, want %s (or %s in the full-grid layout) "+
			"for variable %s of shape %s (a checkpoint of another model?)",
			path, v.Name(), old, want, shapes.Make(want.DType, n, d), v.ScopeAndName(), v.Shape())
	}
	value, err := h.Value()
	if err != nil {
		panicf("optimizers.SMI: reading the spectral history %s/%s: %v", path, v.Name(), err)
	}
	var upgraded *tensors.Tensor
	switch want.DType {
	case dtypes.Float64:
		upgraded = tensors.FromFlatDataAndDimensions(firstColumns(tensors.MustCopyFlatData[float64](value), n, old.Dim(1), bins), n, bins)
	default:
		upgraded = tensors.FromFlatDataAndDimensions(firstColumns(tensors.MustCopyFlatData[float32](value), n, old.Dim(1), bins), n, bins)
	}
	if err := h.SetValue(upgraded); err != nil {
		panicf("optimizers.SMI: converting the spectral history %s/%s: %v", path, v.Name(), err)
	}
}

// firstColumns returns the first cols columns of the row-major n x d matrix x.
func firstColumns[T any](x []T, n, d, cols int) []T {
	out := make([]T, 0, n*cols)
	for i := range n {
		out = append(out, x[i*d:i*d+cols]...)
	}
	return out
}
