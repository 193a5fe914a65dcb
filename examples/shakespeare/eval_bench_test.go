package main

import (
	"os"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/gonum/stat"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// perBatchEvaluator is the evaluation as it was before chunks: one execution of gpt.Loss and one
// read of its loss per batch. The tests compare the chunked evaluator with it.
type perBatchEvaluator struct {
	exec *context.Exec
	cfg  gpt.Config
}

func newPerBatchEvaluator(b backends.Backend, ctx *context.Context, cfg gpt.Config) *perBatchEvaluator {
	exec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, x, y *Node) *Node {
		return gpt.Loss(gpt.Logits(ctx, cfg, x), y)
	})
	return &perBatchEvaluator{exec: exec, cfg: cfg}
}

// batchLosses is evaluator.batchLosses, a batch at a time.
func (p *perBatchEvaluator) batchLosses(tokens []int32, stream uint64, seed int64, n int) ([]float64, error) {
	rng := data.RNG(seed, stream)
	out := make([]float64, n)
	for i := range out {
		x, y := data.Batch(tokens, rng, p.cfg.BatchSize, p.cfg.BlockSize)
		loss, err := p.exec.Exec(tensors.FromFlatDataAndDimensions(x, p.cfg.BatchSize, p.cfg.BlockSize),
			tensors.FromFlatDataAndDimensions(y, p.cfg.BatchSize, p.cfg.BlockSize))
		if err != nil {
			return nil, err
		}
		out[i] = float64(tensors.ToScalar[float32](loss[0]))
	}
	return out, nil
}

// losses is evaluator.losses, a batch at a time.
func (p *perBatchEvaluator) losses(corpus *data.Corpus, seed int64, iter int) (trainLoss, valLoss float64, err error) {
	tl, err := p.batchLosses(corpus.Train, data.StreamEval+2*uint64(iter), seed, p.cfg.EvalIters)
	if err != nil {
		return 0, 0, err
	}
	vl, err := p.batchLosses(corpus.Val, data.StreamEval+2*uint64(iter)+1, seed, p.cfg.EvalIters)
	if err != nil {
		return 0, 0, err
	}
	return stat.Mean(tl, nil), stat.Mean(vl, nil), nil
}

// newUntrained returns the evaluator of an untrained model of preset with the -set settings
// set, and the one-batch-per-execution evaluator of the same model.
func newUntrained(tb testing.TB, preset, set string) (*evaluator, *perBatchEvaluator, *data.Corpus) {
	tb.Helper()
	be, err := backend.New()
	if err != nil {
		tb.Fatal(err)
	}
	corpus, err := data.Load(sharedData)
	if err != nil {
		tb.Fatalf("needs tiny Shakespeare at %s (set SMI_DATA to the file, or run make data): %v", sharedData, err)
	}
	o := &trainOptions{Preset: preset, Seed: 11, Set: set}
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
		tb.Fatal(err)
	}
	ctx = ctx.Checked(false)
	if err := ctx.SetRNGStateFromSeed(o.Seed); err != nil {
		tb.Fatal(err)
	}
	return newEvaluator(be, ctx, cfg, corpus, o.Seed), newPerBatchEvaluator(be, ctx, cfg), corpus
}

var benchModel struct {
	ev     *evaluator
	old    *perBatchEvaluator
	corpus *data.Corpus
}

// BenchmarkEvaluation times one training-time evaluation (eval_iters batches of each split, an
// untrained model of SMI_BENCH_PRESET, default cpu; SMI_BENCH_SET adds -set settings), chunked
// (the trainer's) and one batch per execution (as before chunks), interleaved, after a warm-up
// that compiles both:
//
//	go test -run '^$' -bench Evaluation -benchtime 5x ./examples/shakespeare
func BenchmarkEvaluation(b *testing.B) {
	preset := envOr("SMI_BENCH_PRESET", "cpu")
	if benchModel.ev == nil { // the testing package calls the benchmark twice (b.N = 1, then N): compile once
		benchModel.ev, benchModel.old, benchModel.corpus = newUntrained(b, preset, os.Getenv("SMI_BENCH_SET"))
	}
	ev, old, corpus := benchModel.ev, benchModel.old, benchModel.corpus
	cfg := ev.cfg
	for _, warm := range []func() error{
		func() error { _, _, err := ev.losses(0); return err },
		func() error { _, _, err := old.losses(corpus, ev.seed, 0); return err },
	} {
		began := time.Now()
		if err := warm(); err != nil {
			b.Fatal(err)
		}
		b.Logf("warm-up (compiling): %.2f s", time.Since(began).Seconds())
	}
	var chunked, perBatch time.Duration
	b.ResetTimer()
	for i := range b.N {
		began := time.Now()
		if _, _, err := ev.losses(i + 1); err != nil {
			b.Fatal(err)
		}
		chunked += time.Since(began)
		began = time.Now()
		if _, _, err := old.losses(corpus, ev.seed, i+1); err != nil {
			b.Fatal(err)
		}
		perBatch += time.Since(began)
	}
	b.ReportMetric(chunked.Seconds()/float64(b.N), "s/eval")
	b.ReportMetric(perBatch.Seconds()/float64(b.N), "s/eval-per-batch")
	b.Logf("%s preset, %d batches of %dx%d per split, chunks of %d: %.3f s per evaluation chunked, %.3f s one batch per execution",
		preset, cfg.EvalIters, cfg.BatchSize, cfg.BlockSize, evalChunk(cfg, cfg.EvalIters, ev.budget),
		chunked.Seconds()/float64(b.N), perBatch.Seconds()/float64(b.N))
}
