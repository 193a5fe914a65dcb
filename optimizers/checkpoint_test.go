package optimizers

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

// resumeProblem is a two-layer regression whose batch at step s is generated from s, so a resumed run sees
// the same data as an uninterrupted one.
type resumeProblem struct {
	ctx  *context.Context
	exec *context.Exec
}

func newResumeProblem(t *testing.T, ctx *context.Context, opt gomlxopt.Interface) *resumeProblem {
	rng := rand.New(rand.NewPCG(11, 12))
	init := func(rows, cols int) [][]float32 {
		m := make([][]float32, rows)
		for i := range m {
			m[i] = make([]float32, cols)
			for j := range m[i] {
				m[i][j] = float32(0.3 * rng.NormFloat64())
			}
		}
		return m
	}
	// With a checkpoint attached, these return the saved values instead of the initial ones.
	w1 := ctx.Checked(false).In("model").VariableWithValue("w1", init(6, 12))
	b1 := ctx.Checked(false).In("model").VariableWithValue("b1", [][]float32{make([]float32, 12)})
	w2 := ctx.Checked(false).In("model").VariableWithValue("w2", init(12, 1))
	exec := context.MustNewExec(testBackend(t), ctx, func(ctx *context.Context, x, y *Node) *Node {
		g := x.Graph()
		h := Tanh(Add(MatMul(x, w1.ValueGraph(g)), b1.ValueGraph(g)))
		loss := ReduceAllMean(Square(Sub(MatMul(h, w2.ValueGraph(g)), y)))
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	return &resumeProblem{ctx: ctx, exec: exec}
}

func (p *resumeProblem) run(t *testing.T, from, to int) {
	for s := from; s < to; s++ {
		rng := rand.New(rand.NewPCG(uint64(s), 13))
		x, y := make([][]float32, 16), make([][]float32, 16)
		for i := range x {
			x[i] = make([]float32, 6)
			sum := 0.0
			for j := range x[i] {
				x[i][j] = float32(rng.NormFloat64())
				sum += float64(x[i][j]) * float64(j-2)
			}
			y[i] = []float32{float32(math.Sin(sum))}
		}
		_, err := p.exec.Exec(x, y)
		require.NoError(t, err)
	}
}

// TestSMICheckpointResume: N steps straight equal k steps, a checkpoint saved with GoMLX's checkpoints, a fresh
// context loaded from it, and N-k more steps, bit for bit on every variable: the model, SMI's histories and
// telemetry, AdamW's moments and step, and the global step.
func TestSMICheckpointResume(t *testing.T) {
	const total, k = 9, 4
	newOpt := func() gomlxopt.Interface {
		return SMI(gomlxopt.Adam().LearningRate(0.01).WeightDecay(0.1).Done()).TotalSteps(total).ClipGlobalNorm(1)
	}

	straight := newResumeProblem(t, context.New(), newOpt())
	straight.run(t, 0, total)

	dir := t.TempDir()
	first := newResumeProblem(t, context.New(), newOpt())
	ckpt, err := checkpoints.Build(first.ctx).Dir(dir).Done()
	require.NoError(t, err)
	first.run(t, 0, k)
	require.NoError(t, ckpt.Save())

	resumedCtx := context.New()
	_, err = checkpoints.Build(resumedCtx).Dir(dir).Done()
	require.NoError(t, err)
	resumed := newResumeProblem(t, resumedCtx, newOpt())
	resumed.run(t, k, total)

	var names []string
	for v := range straight.ctx.IterVariables() {
		names = append(names, v.ScopeAndName())
		r := resumed.ctx.GetVariableByScopeAndName(v.Scope(), v.Name())
		require.NotNil(t, r, "variable %s missing after resume", v.ScopeAndName())
		want, got := v.MustValue(), r.MustValue()
		require.True(t, want.Shape().Equal(got.Shape()), "%s: shape %s vs %s", v.ScopeAndName(), want.Shape(), got.Shape())
		if v.DType() == dtypes.Int64 {
			require.Equal(t, want.Value(), got.Value(), v.ScopeAndName())
			continue
		}
		wantBits, gotBits := float32Bits(t, want.Value()), float32Bits(t, got.Value())
		require.Equal(t, wantBits, gotBits, "%s differs after resume", v.ScopeAndName())
	}
	for _, want := range []string{"/model/w1", "/smi/history/model/w1", "/smi/history/model/b1", "/smi/alpha",
		"/smi/kept_energy", "/AdamOptimizer/model/w1_1st_moment", "/AdamOptimizer/global_step", "/global_step"} {
		require.Contains(t, names, want)
	}
	require.Equal(t, int64(total), gomlxopt.GetGlobalStep(resumed.ctx))
}

// float32Bits returns the bit patterns of a float32 tensor value (scalar or any rank), flattened.
func float32Bits(t *testing.T, value any) []uint32 {
	var bits []uint32
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case float32:
			bits = append(bits, math.Float32bits(x))
		case []float32:
			for _, f := range x {
				bits = append(bits, math.Float32bits(f))
			}
		case [][]float32:
			for _, row := range x {
				walk(row)
			}
		default:
			t.Fatalf("float32Bits: unexpected %T", v)
		}
	}
	walk(value)
	return bits
}
