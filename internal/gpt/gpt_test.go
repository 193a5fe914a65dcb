package gpt

import (
	"maps"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/internal/backend"
)

// builtParams builds the model graph (no execution, no training) and counts the variables it
// creates.
func builtParams(t *testing.T, cfg Config) (total, position int) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	g := NewGraph(b, "count")
	Logits(ctx, cfg, Parameter(g, "tokens", shapes.Make(dtypes.Int32, 1, cfg.BlockSize)))
	for v := range ctx.IterVariables() {
		if !strings.HasPrefix(v.Scope(), "/"+Scope) {
			continue
		}
		total += v.Shape().Size()
		if strings.Contains(v.Scope(), "/wpe") {
			position += v.Shape().Size()
		}
	}
	return total, position
}

// TestWeightsMatchModel checks Config.Weights against the variables the model builds: every kind,
// its count, and each variable's matrix view, for presets of 2, 4 and 6 layers.
func TestWeightsMatchModel(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	layer := regexp.MustCompile(`^h[0-9]+/`)
	for _, preset := range PresetNames() {
		cfg, err := Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.New()
		Logits(ctx, cfg, Parameter(NewGraph(b, "weights"), "tokens", shapes.Make(dtypes.Int32, 1, cfg.BlockSize)))
		built := map[Weights]int{} // each kind with Count 0, how many the model holds
		for v := range ctx.IterVariables() {
			name, ok := strings.CutPrefix(v.ScopeAndName(), "/"+Scope+"/")
			if !ok {
				continue
			}
			dims := v.Shape().Dimensions
			if v.Shape().DType != dtypes.Float32 || len(dims) < 1 || len(dims) > 2 {
				t.Fatalf("%s: variable %s is %s, want a float32 vector or matrix", preset, v.ScopeAndName(), v.Shape())
			}
			rows, cols := 1, dims[len(dims)-1]
			if len(dims) == 2 {
				rows = dims[0]
			}
			built[Weights{Name: layer.ReplaceAllString(name, "h%d/"), Rows: rows, Cols: cols}]++
		}
		listed := map[Weights]int{}
		for _, w := range cfg.Weights(true) {
			count := w.Count
			w.Count = 0
			listed[w] += count
		}
		if !maps.Equal(built, listed) {
			t.Errorf("%s: the model builds %v, Config.Weights lists %v", preset, built, listed)
		}
	}
}

func TestParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		preset       string
		withPos, noP int
	}{
		{"paper", 10_745_088, 10_646_784}, // nanoGPT's count for the paper's baby GPT
		{"cpu", 804_096, 804_096 - 64*128},
	} {
		cfg, err := Preset(tc.preset)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.NumParams(true); got != tc.withPos {
			t.Errorf("%s: NumParams(true) = %d, want %d", tc.preset, got, tc.withPos)
		}
		if got := cfg.NumParams(false); got != tc.noP {
			t.Errorf("%s: NumParams(false) = %d, want %d", tc.preset, got, tc.noP)
		}
		total, pos := builtParams(t, cfg)
		if total != tc.withPos || total-pos != tc.noP {
			t.Errorf("%s: the built model has %d parameters (%d without position embeddings), want %d (%d)",
				tc.preset, total, total-pos, tc.withPos, tc.noP)
		}
	}
}

func TestPresetsAndValidation(t *testing.T) {
	if _, err := Preset("huge"); err == nil || !strings.Contains(err.Error(), "cpu, paper, tiny") {
		t.Fatalf("unknown preset: got %v, want the list of presets", err)
	}
	for _, name := range PresetNames() {
		cfg, _ := Preset(name)
		if err := cfg.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	cfg, _ := Preset("tiny")
	cfg.NHead = 3
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "multiple of n_head") {
		t.Fatalf("n_embd 32 with 3 heads: got %v", err)
	}
	ctx := context.New()
	cfg, _ = Preset("cpu")
	cfg.SetParams(ctx)
	ctx.SetParam("n_layer", 7)
	got, err := FromContext(ctx, Config{})
	if err != nil || got.NLayer != 7 || got.NEmbd != 128 {
		t.Fatalf("FromContext: %+v, %v", got, err)
	}
}

// TestLearningRate checks nanoGPT's get_lr at its landmarks, and that the graph's schedule
// (the one AdamW uses) agrees with it everywhere.
func TestLearningRate(t *testing.T) {
	cfg, _ := Preset("cpu")
	for _, tc := range []struct {
		it   int
		want float64
	}{{0, 1e-3 / 101}, {99, 1e-3 * 100 / 101}, {100, 1e-3}, {1050, 1e-4 + 0.5*(1e-3-1e-4)}, {2000, 1e-4}, {3000, 1e-4}} {
		if got := cfg.LearningRateAt(tc.it); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("LearningRateAt(%d) = %g, want %g", tc.it, got, tc.want)
		}
	}
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	its := make([]float32, 0, 2100)
	for it := range 2100 {
		its = append(its, float32(it))
	}
	out := MustExecOnce(b, func(it *Node) *Node { return learningRateGraph(cfg, it) }, tensors.FromValue(its))
	for i, got := range tensors.MustCopyFlatData[float32](out) {
		if want := cfg.LearningRateAt(i); math.Abs(float64(got)-want) > 1e-6*want {
			t.Fatalf("graph learning rate at %d = %g, want %g", i, got, want)
		}
	}
}
