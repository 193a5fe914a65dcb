package backend

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/stretchr/testify/assert"
	"gonum.org/v1/gonum/dsp/fourier"
)

// fft2Reference is the 2-D DFT of a real n x d matrix from gonum: 1-D FFTs along rows, then columns.
func fft2Reference(m [][]float64) [][]complex128 {
	n, d := len(m), len(m[0])
	out := make([][]complex128, n)
	rowFFT := fourier.NewCmplxFFT(d)
	for i := range m {
		row := make([]complex128, d)
		for j, v := range m[i] {
			row[j] = complex(v, 0)
		}
		out[i] = rowFFT.Coefficients(nil, row)
	}
	colFFT := fourier.NewCmplxFFT(n)
	col := make([]complex128, n)
	for j := 0; j < d; j++ {
		for i := range out {
			col[i] = out[i][j]
		}
		res := colFFT.Coefficients(nil, col)
		for i := range out {
			out[i][j] = res[i]
		}
	}
	return out
}

// TestSmokeXLA proves the backend executes what SMI needs: a 2-D FFT of a real matrix and its
// inverse, against gonum in float64. Tolerance: |XLA - gonum| <= 1e-4 * max|F| in complex64
// (float32 rounding grows like log2(n*d) * eps32 * max|F|), and the round trip returns the input
// within 1e-5 * max|x|.
func TestSmokeXLA(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backend: %s", Description(b))
	if b.Name() != "xla" {
		if os.Getenv("GOMLX_BACKEND") == "" {
			t.Fatalf("default backend is %q, want xla", b.Name())
		}
		t.Skipf("GOMLX_BACKEND=%s selects a backend without FFT", os.Getenv("GOMLX_BACKEND"))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][2]int{{1, 1}, {1, 8}, {7, 13}, {16, 16}, {65, 384}} {
		n, d := shape[0], shape[1]
		x := make([][]float32, n)
		x64 := make([][]float64, n)
		maxX := 0.0
		for i := range x {
			x[i] = make([]float32, d)
			x64[i] = make([]float64, d)
			for j := range x[i] {
				x[i][j] = float32(rng.NormFloat64())
				x64[i][j] = float64(x[i][j])
				maxX = math.Max(maxX, math.Abs(x64[i][j]))
			}
		}
		outs := MustExecOnceN(b, func(x *Node) []*Node {
			f := FFT(ConvertDType(x, dtypes.Complex64), n, d)
			back := Real(InverseFFT(f, n, d))
			return []*Node{f, back}
		}, x)
		got := outs[0].Value().([][]complex64)
		back := outs[1].Value().([][]float32)
		want := fft2Reference(x64)
		maxF, maxErr, maxBack := 0.0, 0.0, 0.0
		for i := range want {
			for j := range want[i] {
				maxF = math.Max(maxF, cmplx.Abs(want[i][j]))
				maxErr = math.Max(maxErr, cmplx.Abs(complex128(got[i][j])-want[i][j]))
				maxBack = math.Max(maxBack, math.Abs(float64(back[i][j])-x64[i][j]))
			}
		}
		if maxErr > 1e-4*maxF {
			t.Errorf("%dx%d: FFT2 differs from gonum by %g (max |F| %g)", n, d, maxErr, maxF)
		}
		if maxBack > 1e-5*maxX {
			t.Errorf("%dx%d: IFFT2(FFT2(x)) differs from x by %g (max |x| %g)", n, d, maxBack, maxX)
		}
		t.Logf("%dx%d: max |FFT2 - gonum| / max|F| = %.2e, round trip max error / max|x| = %.2e", n, d, maxErr/maxF, maxBack/maxX)
	}
}

// TestXLAOps checks the other operations SMI and the GPT need on this plugin: complex arithmetic,
// reductions, a matrix product, and random numbers, against values computed by hand.
func TestXLAOps(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "xla" {
		t.Skip("not XLA")
	}
	outs := MustExecOnceN(b, func(a, m *Node) []*Node {
		c := Complex(a, Neg(a)) // a - ia
		prod := Mul(c, Conj(c)) // |c|^2 = 2a^2, imaginary part 0
		_, u := RandomUniform(RNGStateFromSeedForGraph(a.Graph(), 7), shapes.Make(dtypes.Float32, 1000))
		return []*Node{
			Real(prod), Imag(prod), Abs(c), ReduceAllSum(a), ReduceAllMax(a),
			MatMul(m, m), ReduceAllMean(u), ReduceAllMin(u), ReduceAllMax(u),
		}
	}, []float32{1, -2, 3}, [][]float32{{1, 2}, {3, 4}})
	assert.Equal(t, []float32{2, 8, 18}, outs[0].Value())
	assert.Equal(t, []float32{0, 0, 0}, outs[1].Value())
	assert.InDeltaSlice(t, []float32{math.Sqrt2, 2 * math.Sqrt2, 3 * math.Sqrt2}, outs[2].Value(), 1e-6)
	assert.Equal(t, float32(2), outs[3].Value())
	assert.Equal(t, float32(3), outs[4].Value())
	assert.Equal(t, [][]float32{{7, 10}, {15, 22}}, outs[5].Value())
	mean, lo, hi := outs[6].Value().(float32), outs[7].Value().(float32), outs[8].Value().(float32)
	assert.InDelta(t, 0.5, mean, 0.05, "mean of 1000 U(0,1) draws")
	assert.True(t, lo >= 0 && hi < 1 && hi-lo > 0.9, "uniform draws in [0,1): min %g max %g", lo, hi)
}
