package spectral

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// isFilterableDType reports whether gradients of this dtype are filtered.
func isFilterableDType(dtype dtypes.DType) bool {
	switch dtype {
	case dtypes.Float16, dtypes.BFloat16, dtypes.Float32, dtypes.Float64:
		return true
	}
	return false
}

// computeDType is the precision the filter runs in: float64 for float64, float32 otherwise.
func computeDType(dtype dtypes.DType) dtypes.DType {
	if dtype == dtypes.Float64 {
		return dtypes.Float64
	}
	return dtypes.Float32
}

// complexDType is the complex type matching a real compute dtype.
func complexDType(dtype dtypes.DType) dtypes.DType {
	if dtype == dtypes.Float64 {
		return dtypes.Complex128
	}
	return dtypes.Complex64
}

// keyDType is the unsigned integer type with the width of the float type.
func keyDType(floatDType dtypes.DType) dtypes.DType {
	if floatDType == dtypes.Float64 {
		return dtypes.Uint64
	}
	return dtypes.Uint32
}

// countDType is the integer type used to count entries: int32 unless there could be 2^31 of them.
func countDType(size int) dtypes.DType {
	if size < math.MaxInt32 {
		return dtypes.Int32
	}
	return dtypes.Int64
}
