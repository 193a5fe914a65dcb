package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/stats"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// generator samples text autoregressively as nanoGPT's generate() (no KV cache): each new
// token runs the model on the last block_size tokens. The window always has shape
// [1, block_size] (right-padded; causal attention makes padding invisible), so one compiled
// program serves every step and every model of the same shape.
type generator struct {
	exec *context.Exec
	cfg  gpt.Config
}

func newGenerator(b backends.Backend, ctx *context.Context, cfg gpt.Config) *generator {
	exec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, window, pos *Node) *Node {
		logits := gpt.Logits(ctx, cfg, window) // [1, T, V]
		T, V := cfg.BlockSize, cfg.VocabSize
		return Reshape(Gather(Reshape(logits, T, V), Reshape(pos, 1, 1)), V)
	})
	return &generator{exec: exec, cfg: cfg}
}

// generate appends n sampled tokens to prompt (at temperature; 0 means greedy). emit, when not
// nil, gets each token as it is sampled (sample prints them as they come).
func (g *generator) generate(prompt []int32, n int, temperature float64, rng *rand.Rand, emit func(int32)) ([]int32, error) {
	T := g.cfg.BlockSize
	tokens := append([]int32(nil), prompt...)
	if len(tokens) == 0 {
		tokens = []int32{0} // nanoGPT starts from token 0 ("\n" in tiny Shakespeare)
	}
	window := make([]int32, T)
	probs := make([]float64, g.cfg.VocabSize)
	for range n {
		ctxTokens := tokens[max(0, len(tokens)-T):]
		clear(window)
		copy(window, ctxTokens)
		out, err := g.exec.Exec(tensors.FromFlatDataAndDimensions(window, 1, T), int32(len(ctxTokens)-1))
		if err != nil {
			return nil, err
		}
		logits := tensors.MustCopyFlatData[float32](out[0])
		next := sample(logits, temperature, probs, rng)
		tokens = append(tokens, next)
		if emit != nil {
			emit(next)
		}
	}
	return tokens, nil
}

func sample(logits []float32, temperature float64, probs []float64, rng *rand.Rand) int32 {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	if temperature <= 0 {
		return int32(best)
	}
	sum := 0.0
	for i, l := range logits {
		probs[i] = math.Exp((float64(l) - float64(logits[best])) / temperature)
		sum += probs[i]
	}
	u := rng.Float64() * sum
	for i, p := range probs {
		if u -= p; u < 0 {
			return int32(i)
		}
	}
	return int32(len(probs) - 1)
}

// benchInference times reps generations of tokens tokens each, after a warm-up that compiles
// the program, from the same validation prompt with the same sampling seed.
func benchInference(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, seed int64, tokens, reps int) (*results.Inference, error) {
	gen := newGenerator(b, ctx, cfg)
	prompt := corpus.Val[:cfg.BlockSize/2]
	warmup := min(tokens, 10)
	if _, err := gen.generate(prompt, warmup, 1, data.RNG(seed, 7), nil); err != nil {
		return nil, fmt.Errorf("inference warm-up: %w", err)
	}
	inf := &results.Inference{TokensPerRep: tokens, WarmupTokens: warmup}
	for range reps {
		start := time.Now()
		if _, err := gen.generate(prompt, tokens, 1, data.RNG(seed, 7), nil); err != nil {
			return nil, err
		}
		inf.PerRep = append(inf.PerRep, float64(tokens)/time.Since(start).Seconds())
	}
	var lo, hi float64
	inf.TokensPerSec, lo, hi = stats.MeanCI95(inf.PerRep)
	inf.CI95 = [2]float64{lo, hi}
	return inf, nil
}
