package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// The Go benchmarks time the cases of cmd/smibench, one b.N loop each, for benchstat. By default
// the sizes are small, so `go test -bench . -benchtime 1x ./benchmarks` checks them in a minute or
// two on a CPU; SMI_BENCH_LARGE=1 times the sizes of the report (the cpu preset, GPT-2's matrices):
//
//	SMI_BENCH_LARGE=1 go test -run '^$' -bench . -count 10 ./benchmarks > new.txt && benchstat old.txt new.txt

// large reports whether SMI_BENCH_LARGE=1 asks for the report's sizes.
func large() bool { return os.Getenv("SMI_BENCH_LARGE") == "1" }

func benchCase(b *testing.B, c Case) {
	b.Helper()
	if err := c.Run(); err != nil { // Compiles outside the timed loop.
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := c.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBandwidth reports the memory-bound probes in bytes per second.
func BenchmarkBandwidth(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	elems := 1 << 20
	if large() {
		elems = 1 << 24
	}
	cases, ops, cleanup, err := BandwidthCases(be, elems)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	for i, c := range cases {
		b.Run("op="+benchName(ops[i].Name), func(b *testing.B) {
			b.SetBytes(int64(ops[i].BytesPerElem) * int64(elems))
			benchCase(b, c)
		})
	}
}

// BenchmarkFilter reports the whole filter (steps 1-8) per gradient shape; bytes are the
// least traffic (read g, H; write g', H').
func BenchmarkFilter(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	shapesIn := [][]int{{64, 64}, {128, 512}}
	if large() {
		shapesIn = [][]int{{256, 256}, {384, 1536}, {1024, 1024}, {768, 3072}, {2048, 2048}}
	}
	for _, dims := range shapesIn {
		for _, half := range []bool{false, true} {
			spec := FilterSpec{Dims: dims, Half: half}
			b.Run(fmt.Sprintf("shape=%s/half=%v", dimsLabel(dims), half), func(b *testing.B) {
				cases, cleanup, err := FilterCases(be, spec)
				if err != nil {
					b.Fatal(err)
				}
				defer cleanup()
				b.SetBytes(16 * int64(spec.Bins()))
				benchCase(b, cases[0])
			})
		}
	}
}

// BenchmarkFilterParts times each part at one size, to compare implementations of a part.
func BenchmarkFilterParts(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	spec := FilterSpec{Dims: []int{128, 128}, Parts: true}
	if large() {
		spec.Dims = []int{1024, 1024}
	}
	cases, cleanup, err := FilterCases(be, spec)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	for _, c := range cases {
		b.Run("part="+benchName(c.Name), func(b *testing.B) { benchCase(b, c) })
	}
}

// BenchmarkStep times a training step of the GPT's tiny preset (with SMI_BENCH_LARGE=1 also the
// cpu preset, and SGD with momentum and Lion) under each optimizer configuration, with the
// training recipe (gpt.Optimizer): gradients clipped at the preset's global norm, SMI with the
// paper's settings for its base.
func BenchmarkStep(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	dotgrad.Enable()
	presets := []string{"tiny"}
	configs := []string{"AdamW", "SMI(AdamW)", "SMI(AdamW) half"}
	if large() {
		presets = append(presets, "cpu")
		configs = append(configs, "SGD-momentum", "SMI(SGD-momentum)", "Lion", "SMI(Lion)")
	}
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range configs {
			b.Run(fmt.Sprintf("preset=%s/opt=%s", preset, benchName(name)), func(b *testing.B) {
				opt, err := gptOptimizer(cfg, name)
				if err != nil {
					b.Fatal(err)
				}
				s, err := NewStep(be, gptModel(cfg, 1), name, opt)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Finalize()
				benchCase(b, s.Case())
			})
		}
	}
}

// gptModel is the GPT of cfg on a batch of random tokens.
func gptModel(cfg gpt.Config, seed uint64) Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	tokens := func() *tensors.Tensor {
		t := tensors.FromShape(shapes.Make(dtypes.Int32, cfg.BatchSize, cfg.BlockSize))
		tensors.MustMutableFlatData(t, func(flat []int32) {
			for i := range flat {
				flat[i] = int32(rng.IntN(cfg.VocabSize))
			}
		})
		return t
	}
	return Model{
		Fn: func(ctx *context.Context, _ any, in []*Node) []*Node {
			return []*Node{gpt.Logits(ctx, cfg, in[0])}
		},
		Loss:   func(labels, predictions []*Node) *Node { return gpt.Loss(predictions[0], labels[0]) },
		Inputs: []*tensors.Tensor{tokens()}, Labels: []*tensors.Tensor{tokens()},
		Seed: int64(seed),
	}
}

// gptOptimizer is a configuration named as smibench names them: "AdamW", "SMI(AdamW)",
// "SMI(AdamW) half", and the same for "SGD-momentum" and "Lion".
func gptOptimizer(cfg gpt.Config, name string) (gomlxopt.Interface, error) {
	half := strings.HasSuffix(name, " half")
	base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "SMI("), " half"), ")")
	var opt gomlxopt.Interface
	var err error
	switch base {
	case "AdamW":
		opt = gpt.AdamW(cfg)
	case "SGD-momentum":
		opt, err = smiopt.SGDMomentum().LearningRate(0.01).Done()
	case "Lion":
		opt, err = smiopt.Lion().LearningRate(1e-4).Done()
	default:
		return nil, fmt.Errorf("unknown optimizer %q", name)
	}
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(name, "SMI(") {
		return gpt.Optimizer(cfg, opt, nil)
	}
	sc, err := smiopt.PaperDefaults(base)
	if err != nil {
		return nil, err
	}
	sc.TotalSteps = cfg.MaxIters
	return gpt.Optimizer(cfg, opt, func(c *smiopt.SMIConfig) *smiopt.SMIConfig { return c.SetConfig(sc).HalfSpectrum(half) })
}

// dimsLabel is "768x3072".
func dimsLabel(d []int) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, "x")
}

// benchName makes a sub-benchmark name without spaces, which benchstat would split on.
func benchName(s string) string {
	out := []rune{}
	for _, r := range s {
		switch r {
		case ' ', ':', '(', ')', '+', ',', '.':
			if len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
		default:
			out = append(out, r)
		}
	}
	for len(out) > 0 && out[len(out)-1] == '-' {
		out = out[:len(out)-1]
	}
	return string(out)
}
