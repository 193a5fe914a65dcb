package spectral

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// panicsWith fails unless building fn's graph panics with a message containing want.
func panicsWith(t *testing.T, fn func(g *Graph) *Node, want string) {
	t.Helper()
	b := testBackend(t)
	defer func() {
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Errorf("panic %q does not contain %q", msg, want)
		}
	}()
	MustExecOnce(b, fn)
}

// TestEmptyHistoryPanics checks that Threshold and HistoryQuantile reject an empty history (no
// slices or no rows) with a message naming the function, in both counting modes and both
// spectrum variants, instead of failing inside the graph's shape arithmetic.
func TestEmptyHistoryPanics(t *testing.T) {
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	for _, dims := range [][]int{{2, 0, 4}, {0, 4, 4}} {
		for _, counting := range []Counting{CountingScatter, CountingCompare} {
			for _, half := range []bool{false, true} {
				t.Run(fmt.Sprintf("Threshold_%v_%s_half=%v", dims, counting, half), func(t *testing.T) {
					panicsWith(t, func(g *Graph) *Node {
						return Threshold(Zeros(g, f32(dims...)), 6, 0.5, half, WithCounting(counting))
					}, "spectral.Threshold: history must not be empty")
				})
			}
		}
	}
	for _, half := range []bool{false, true} {
		t.Run(fmt.Sprintf("HistoryQuantile_half=%v", half), func(t *testing.T) {
			panicsWith(t, func(g *Graph) *Node {
				return HistoryQuantile(Zeros(g, f32(0, 4)), 6, 0.5, half)
			}, "spectral.HistoryQuantile: history must not be empty")
		})
	}
}

// TestNilOption checks that a nil Option is ignored: the results are those without it.
func TestNilOption(t *testing.T) {
	b := testBackend(t)
	g := make([]float64, 6*8)
	for i := range g {
		g[i] = math.Sin(float64(i*i) + 0.3)
	}
	h := make([]float64, 6*HalfBins(8))
	for i := range h {
		h[i] = float64(i%7) * 0.5
	}
	outs := MustExecOnceN(b, func(g, h *Node) []*Node {
		withNil, _, _ := Filter(g, h, 0.5, 0.9, false, nil)
		without, _, _ := Filter(g, h, 0.5, 0.9, false)
		q := Quantile(h, 0.25, nil, WithCounting(CountingScatter), nil)
		return []*Node{withNil, without, q, Quantile(h, 0.25)}
	}, valuesTensor(g, dtypes.Float32, 6, 8), valuesTensor(h, dtypes.Float32, 6, HalfBins(8)))
	a, want := outs[0].Value().([][]float32), outs[1].Value().([][]float32)
	for i := range a {
		for j := range a[i] {
			if a[i][j] != want[i][j] {
				t.Fatalf("Filter with a nil option: [%d][%d] = %v, want %v", i, j, a[i][j], want[i][j])
			}
		}
	}
	if q, want := outs[2].Value().(float32), outs[3].Value().(float32); q != want {
		t.Errorf("Quantile with nil options = %v, want %v", q, want)
	}
}

// TestHyperparameterPanics checks that UpdateHistory and Alpha reject hyperparameters outside the
// ranges Config.Validate requires, NaN included, naming the function and the parameter; that
// Alpha and Blend reject a step or alpha that is not a scalar of the documented dtypes; and that
// Alpha ignores AlphaEnd where it does not read it (the constant schedule).
func TestHyperparameterPanics(t *testing.T) {
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	for _, beta := range []float64{2, 1, -0.1, math.NaN()} {
		t.Run(fmt.Sprintf("UpdateHistory_beta=%v", beta), func(t *testing.T) {
			panicsWith(t, func(g *Graph) *Node {
				return UpdateHistory(Zeros(g, f32(1, 4, 3)), Zeros(g, f32(1, 4, 3)), beta)
			}, "spectral.UpdateHistory: beta must be in [0, 1)")
		})
	}
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"start NaN":          {Config{Schedule: ScheduleConstant, AlphaStart: math.NaN(), TotalSteps: 10}, "spectral.Alpha: Config.AlphaStart must be in [0, 1], got NaN"},
		"start 1.5 linear":   {Config{Schedule: ScheduleLinear, AlphaStart: 1.5, AlphaEnd: 0.5, TotalSteps: 10}, "spectral.Alpha: Config.AlphaStart must be in [0, 1]"},
		"end NaN cosine":     {Config{Schedule: ScheduleCosine, AlphaStart: 0.5, AlphaEnd: math.NaN(), TotalSteps: 10}, "spectral.Alpha: Config.AlphaEnd must be in [0, 1], got NaN"},
		"end -1 linear":      {Config{Schedule: ScheduleLinear, AlphaStart: 0.5, AlphaEnd: -1, TotalSteps: 10}, "spectral.Alpha: Config.AlphaEnd must be in [0, 1]"},
		"total steps linear": {Config{Schedule: ScheduleLinear, AlphaStart: 0.5, AlphaEnd: 0.5}, "spectral.Alpha: Config.TotalSteps must be > 0"},
	} {
		t.Run("Alpha_"+name, func(t *testing.T) {
			panicsWith(t, func(g *Graph) *Node {
				return Alpha(Const(g, int32(3)), tc.cfg, dtypes.Float32)
			}, tc.want)
		})
	}
	valid := Config{Schedule: ScheduleLinear, AlphaStart: 0.1, AlphaEnd: 0.9, TotalSteps: 10}
	t.Run("Alpha_step_not_scalar", func(t *testing.T) {
		panicsWith(t, func(g *Graph) *Node { return Alpha(Const(g, []int32{3, 4}), valid, dtypes.Float32) },
			"spectral.Alpha: step must be a scalar, got (Int32)[2]")
	})
	t.Run("Alpha_dtype_int", func(t *testing.T) {
		panicsWith(t, func(g *Graph) *Node { return Alpha(Const(g, int32(3)), valid, dtypes.Int32) },
			"spectral.Alpha: dtype must be a float dtype, got Int32")
	})
	t.Run("Blend_alpha_int", func(t *testing.T) {
		panicsWith(t, func(g *Graph) *Node { return Blend(Zeros(g, f32(4)), Zeros(g, f32(4)), Const(g, int32(0))) },
			"spectral.Blend: alpha must be a float scalar, got (Int32)")
	})
	t.Run("Blend_g_int", func(t *testing.T) {
		i32 := shapes.Make(dtypes.Int32, 4)
		panicsWith(t, func(g *Graph) *Node { return Blend(Zeros(g, i32), Zeros(g, i32), Const(g, float32(0.5))) },
			"spectral.Blend: g must be of a float dtype, got Int32")
	})
	b := testBackend(t)
	cfg := Config{Schedule: ScheduleConstant, AlphaStart: 0.25, AlphaEnd: math.NaN()}
	got := MustExecOnce(b, func(s *Node) *Node { return Alpha(s, cfg, dtypes.Float32) }, int32(3)).Value().(float32)
	if got != 0.25 {
		t.Errorf("constant schedule with AlphaEnd NaN: alpha %v, want 0.25", got)
	}
}
