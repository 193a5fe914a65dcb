package benchmarks

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
)

// RadixQuantile is a candidate replacement for spectral.Quantile on float32, measured side by
// side with it: the same exact result (numpy's linear method), but the k-th order statistic is
// found `bits` bits per pass instead of one, so 32/bits counting passes over the data instead
// of 32. Each pass compares every key with the 2^bits - 1 candidate thresholds of the next
// digit in one fused reduction, trading compares (cheap, in registers) for passes over memory.
// NaN inputs are not handled (the spectral history has none); use spectral.Quantile for that.
func RadixQuantile(x *Node, q float64, bits int) *Node {
	if x.DType() != dtypes.Float32 || 32%bits != 0 {
		panic(fmt.Errorf("RadixQuantile: float32 input and bits dividing 32 only, got %s, %d", x.Shape(), bits))
	}
	size := x.Shape().Size()
	flat := Reshape(x, size)
	rank := q * float64(size-1)
	k := int(math.Floor(rank))
	frac := rank - float64(k)
	if k >= size-1 {
		k, frac = size-1, 0
	}
	keys := floatKeys(flat)
	lo := radixSelect(keys, k, bits)
	result := keyFloat(lo)
	if frac > 0 {
		g := x.Graph()
		// The next order statistic: lo again if it occurs past rank k, else the least key above.
		atMost := ReduceAllSum(ConvertDType(LessOrEqual(keys, lo), dtypes.Int32))
		above := ReduceAllMin(Where(GreaterThan(keys, lo), keys, BroadcastToShape(Const(g, uint32(math.MaxUint32)), keys.Shape())))
		hi := Where(GreaterOrEqual(atMost, Const(g, int32(k+2))), lo, above)
		hv := keyFloat(hi)
		diff := Sub(hv, result)
		if frac < 0.5 {
			result = Add(result, MulScalar(diff, frac))
		} else {
			result = Sub(hv, MulScalar(diff, 1-frac))
		}
	}
	return result
}

// radixSelect returns the k-th smallest key (0-based), fixing `bits` bits per pass from the
// most significant: digit v of the current position is the number of candidate thresholds
// prefix|v|ones (v = 0 .. 2^bits-2) with fewer than k+1 keys at or below them.
func radixSelect(keys *Node, k, bits int) *Node {
	g := keys.Graph()
	m := 1<<bits - 1
	need := Const(g, int32(k+1))
	prefix := Const(g, uint32(0))
	for shift := 32 - bits; shift >= 0; shift -= bits {
		// m sibling reductions over the same keys: XLA fuses them into one pass (multi-output
		// fusion), which a broadcast [m, n] compare does not get on the CPU.
		digit := Const(g, int32(0))
		for v := range m {
			t := BitwiseOr(prefix, Const(g, uint32(v)<<shift|(uint32(1)<<shift-1)))
			count := ReduceAllSum(ConvertDType(LessOrEqual(keys, t), dtypes.Int32))
			digit = Add(digit, ConvertDType(LessThan(count, need), dtypes.Int32))
		}
		prefix = BitwiseOr(prefix, BitwiseShiftLeftScalar(ConvertDType(digit, dtypes.Uint32), shift))
	}
	return prefix
}

// floatKeys maps float32 to uint32 in the same order (as spectral's quantile does).
func floatKeys(x *Node) *Node {
	g := x.Graph()
	bits := Bitcast(x, dtypes.Uint32)
	neg := Bitcast(BitwiseShiftRightArithmeticScalar(Bitcast(x, dtypes.Int32), 31), dtypes.Uint32)
	return BitwiseXor(bits, BitwiseOr(neg, Const(g, uint32(1)<<31)))
}

// keyFloat inverts floatKeys for a scalar key.
func keyFloat(key *Node) *Node {
	g := key.Graph()
	sign := Const(g, uint32(1)<<31)
	nonNeg := NotEqual(BitwiseAnd(key, sign), Const(g, uint32(0)))
	return Bitcast(Where(nonNeg, BitwiseXor(key, sign), BitwiseNot(key)), dtypes.Float32)
}
