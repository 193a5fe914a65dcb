package optimizers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
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

// runAndResume runs total steps straight, and k steps, a checkpoint (saved after beforeSave, when given, has
// seen the first run), a fresh context loaded from it and total-k more steps; it returns both runs.
func runAndResume(t *testing.T, newOpt func() gomlxopt.Interface, total, k int, beforeSave func(*resumeProblem)) (straight, resumed *resumeProblem) {
	straight = newResumeProblem(t, context.New(), newOpt())
	straight.run(t, 0, total)

	dir := t.TempDir()
	first := newResumeProblem(t, context.New(), newOpt())
	ckpt, err := checkpoints.Build(first.ctx).Dir(dir).Done()
	require.NoError(t, err)
	first.run(t, 0, k)
	if beforeSave != nil {
		beforeSave(first)
	}
	require.NoError(t, ckpt.Save())

	resumedCtx := context.New()
	_, err = checkpoints.Build(resumedCtx).Dir(dir).Done()
	require.NoError(t, err)
	resumed = newResumeProblem(t, resumedCtx, newOpt())
	resumed.run(t, k, total)
	return straight, resumed
}

// TestSMICheckpointResume: N steps straight equal k steps, a checkpoint saved with GoMLX's checkpoints, a fresh
// context loaded from it, and N-k more steps, bit for bit on every variable: the model, SMI's histories and
// telemetry, AdamW's moments and step, and the global step.
func TestSMICheckpointResume(t *testing.T) {
	const total, k = 9, 4
	newOpt := func() gomlxopt.Interface {
		return ClipByGlobalNorm(SMI(gomlxopt.Adam().LearningRate(0.01).WeightDecay(0.1).Done()).TotalSteps(total), 1)
	}

	straight, resumed := runAndResume(t, newOpt, total, k, nil)

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

// TestSMIUpgradesFullHistory: a checkpoint whose full-spectrum histories are stored on the whole n x d grid
// (the full-grid layout) resumes exactly: SMI keeps their first d/2+1 columns (the rest is the mirror
// image), so the result equals an uninterrupted run bit for bit.
func TestSMIUpgradesFullHistory(t *testing.T) {
	const total, k = 7, 3
	newOpt := func() gomlxopt.Interface {
		return SMI(gomlxopt.Adam().LearningRate(0.01).Done()).TotalSteps(total).Quantile(0.5)
	}
	// Rewrite the histories in the old format before the checkpoint is saved.
	oldFormat := func(first *resumeProblem) {
		for _, name := range []string{"w1", "b1"} {
			h := first.ctx.GetVariableByScopeAndName("/smi/history/model", name)
			require.NotNil(t, h, name)
			n, bins := h.Shape().Dim(0), h.Shape().Dim(1)
			d := 12 // Both variables' last axis.
			half := tensors.MustCopyFlatData[float32](h.MustValue())
			full := make([]float32, n*d)
			for i := range n {
				for j := range d {
					if j < bins {
						full[i*d+j] = half[i*bins+j]
					} else {
						full[i*d+j] = half[((n-i)%n)*bins+d-j]
					}
				}
			}
			require.NoError(t, h.SetValue(tensors.FromFlatDataAndDimensions(full, n, d)))
		}
	}
	straight, resumed := runAndResume(t, newOpt, total, k, oldFormat)
	for _, name := range []string{"/model/w1", "/model/b1", "/smi/history/model/w1", "/smi/history/model/b1"} {
		scope, base := path.Split(name)
		want := straight.ctx.GetVariableByScopeAndName(strings.TrimSuffix(scope, "/"), base).MustValue()
		got := resumed.ctx.GetVariableByScopeAndName(strings.TrimSuffix(scope, "/"), base).MustValue()
		require.True(t, want.Shape().Equal(got.Shape()), "%s: shape %s vs %s", name, want.Shape(), got.Shape())
		require.Equal(t, float32Bits(t, want.Value()), float32Bits(t, got.Value()), "%s differs after the upgrade", name)
	}

	// A history of a shape that no version stored is refused with a message, not reshaped: among them a
	// full-grid history one column wider than the variable (13/2+1 = 12/2+1 bins), which is not cut to
	// its first columns.
	for _, width := range []int{5, 13} {
		bad := context.New()
		bad.Checked(false).InAbsPath("/smi/history/model").VariableWithValue("w1", tensors.FromShape(shapes.Make(dtypes.Float32, 6, width))).SetTrainable(false)
		x, y := make([][]float32, 2), make([][]float32, 2)
		for i := range x {
			x[i], y[i] = make([]float32, 6), []float32{0}
		}
		_, err := newResumeProblem(t, bad, newOpt()).exec.Exec(x, y)
		require.ErrorContains(t, err, fmt.Sprintf("the spectral history /smi/history/model/w1 has shape (Float32)[6 %d], "+
			"want (Float32)[6 7] (or (Float32)[6 12] in the full-grid layout) for variable /model/w1 of shape (Float32)[6 12] "+
			"(a checkpoint of another model?)", width))
	}
}
