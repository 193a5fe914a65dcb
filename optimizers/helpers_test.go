package optimizers

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"

	"github.com/smi-gomlx/smi/internal/backend"
)

// must returns the optimizer a builder's Done made from settings a test knows to be valid.
func must(opt gomlxopt.Interface, err error) gomlxopt.Interface {
	if err != nil {
		panic(err)
	}
	return opt
}

// testBackend returns the XLA CPU backend: SMI needs FFTs, which the pure-Go backend lacks.
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := backend.New()
	require.NoError(t, err)
	if b.Name() != "xla" {
		t.Skipf("backend %q is not XLA: SMI needs its FFT", b.Name())
	}
	return b
}

// linearProblem trains variables on loss = sum_i <w_i, G_i>, whose gradient for w_i is exactly the G_i fed
// to the step: the tests choose the gradients and read back what the optimizer did with them.
type linearProblem struct {
	ctx  *context.Context
	vars []*context.Variable
	exec *context.Exec
}

func newLinearProblem(t testing.TB, ctx *context.Context, opt gomlxopt.Interface, inits ...any) *linearProblem {
	t.Helper()
	if ctx == nil {
		ctx = context.New()
	}
	p := &linearProblem{ctx: ctx}
	for i, init := range inits {
		p.vars = append(p.vars, ctx.In("model").VariableWithValue(fmt.Sprintf("w%d", i), init))
	}
	p.exec = context.MustNewExec(testBackend(t), ctx, func(ctx *context.Context, grads []*Node) *Node {
		g := grads[0].Graph()
		loss := ScalarZero(g, dtypes.Float32)
		for i, v := range p.vars {
			w := v.ValueGraph(g)
			term := ReduceAllSum(Mul(w, ConvertDType(grads[i], w.DType())))
			loss = Add(loss, ConvertDType(term, dtypes.Float32))
		}
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	return p
}

// step runs one training step with the given gradients, one per variable.
func (p *linearProblem) step(t testing.TB, grads ...any) {
	t.Helper()
	_, err := p.exec.Exec(grads...)
	require.NoError(t, err)
}

// value returns variable i's value as float64s, flattened.
func (p *linearProblem) value(t testing.TB, i int) []float64 {
	t.Helper()
	return flatFloat64(t, p.vars[i].MustValue())
}

func flatFloat64(t testing.TB, x *tensors.Tensor) []float64 {
	t.Helper()
	var out []float64
	x.ConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			for _, v := range f {
				out = append(out, float64(v))
			}
		case []float64:
			out = append(out, f...)
		default: // bfloat16.BFloat16 and float16.Float16 both have a Float32 method.
			v := reflect.ValueOf(flat)
			for i := range v.Len() {
				m := v.Index(i).MethodByName("Float32")
				if !m.IsValid() {
					t.Fatalf("flatFloat64: unsupported dtype %s", x.DType())
				}
				out = append(out, float64(m.Call(nil)[0].Interface().(float32)))
			}
		}
	})
	return out
}

func assertClose(t testing.TB, want, got []float64, tol float64, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, len(want), len(got), msgAndArgs...)
	for i := range want {
		if !(math.Abs(want[i]-got[i]) <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s: element %d: want %.9g, got %.9g (tolerance %g)\nwant %v\ngot  %v",
				fmt.Sprint(msgAndArgs...), i, want[i], got[i], tol, want, got)
		}
	}
}

func tensorOf(v any) *tensors.Tensor { return tensors.FromAnyValue(v) }

// TryCatchError runs fn and returns the error it panicked with, or nil.
func TryCatchError(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	fn()
	return nil
}

// tensorFromFlat returns a tensor of the given dims (a scalar for none) holding flat.
func tensorFromFlat[T float32 | float64](flat []T, dims ...int) *tensors.Tensor {
	if len(dims) == 0 {
		return tensors.FromScalar(flat[0])
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...)
}
