package main

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/gonum/stat"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// evaluator estimates the loss of each split on EvalIters random batches, as nanoGPT's
// estimate_loss; the batches of evaluation at iteration i depend only on (seed, i).
//
// One execution evaluates a chunk of several batches: they are stacked along the batch axis into
// one [chunk*batch_size, block_size] input, and the program returns each batch's mean loss, a
// [chunk] vector, computed with the same operations as gpt.Loss on that batch alone. The
// vectors stay on the device until the last chunk of the evaluation has run, and are then read
// together; the next chunk is drawn on the host (same generator, same order as one batch at a
// time) while the current one runs. So an evaluation costs ceil(n/chunk) executions and one
// read, not n executions each followed by a read (see evalChunk for the chunk's size).
type evaluator struct {
	exec   *context.Exec
	par    *dataParallel // nil: one device
	cfg    gpt.Config
	corpus *data.Corpus
	seed   int64
	budget int // evalBudget
	// progress, when not nil, starts the display of an evaluation's progress (of total batches):
	// with the paper preset on a CPU one takes many minutes.
	progress func(total int) progressDisplay
}

// progressDisplay is how an evaluation reports its progress: a *cli.Progress, or a test's record.
type progressDisplay interface {
	Add(n int)
	Finish()
}

// showProgress shows an evaluation's progress on stderr (a bar on a terminal, lines in a log),
// under the name what.
func showProgress(what string) func(total int) progressDisplay {
	return func(total int) progressDisplay { return cli.NewProgress(os.Stderr, what, total, "batches") }
}

func newEvaluator(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, seed int64) *evaluator {
	exec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, x, y *Node) *Node {
		return chunkLosses(gpt.Logits(ctx, cfg, x), y, cfg.BatchSize)
	})
	return &evaluator{exec: exec, cfg: cfg, corpus: corpus, seed: seed, budget: evalBudget(b)}
}

// chunkLosses is gpt.Loss of each batch of a chunk: logits [K*B, T, V] and targets [K*B, T] hold
// K batches of B rows, and the result [K] is the mean cross-entropy of each. The operations per
// batch are gpt.Loss's (log-softmax, the target's log-probability, a sum over the batch's B*T
// positions times 1/(B*T), negated), and each batch's logits are those of the batch alone, bit
// for bit (seen on XLA CPU); only the order in which XLA adds up the B*T terms differs (one axis
// of [K, B*T] here, all of [B, T] there), so a batch's loss can differ from gpt.Loss's by a few
// float32 roundings (TestEvalMatchesPerBatch: at most 2 units in the last place).
func chunkLosses(logits, targets *Node, batchSize int) *Node {
	dims := logits.Shape().Dimensions
	rows, T, V := dims[0], dims[1], dims[2]
	logProbs := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logProbs, OneHot(targets, V, logProbs.DType())), -1) // [K*B, T]
	return Neg(ReduceMean(Reshape(picked, rows/batchSize, batchSize*T), 1))
}

// evalBudget bounds a chunk's activations (evalChunk's estimate), in bytes: on a CPU about a
// last-level cache (on XLA CPU with the cpu preset, chunks of 10 batches, 30 MiB, evaluated 15-20%
// faster than one batch per execution, and chunks of all 20 about 7% slower), on an accelerator
// a fraction of its memory, so that executions are few (on an H200 with the paper preset, 400
// batches: 1.55 s per evaluation in chunks of 10, 1.63 s in chunks of 4, 2.05-2.4 s one batch per
// execution; the chunked program compiles as fast as the one-batch program, about 6.5 s).
func evalBudget(b backends.Backend) int {
	if onCPU(b) {
		return 32 << 20
	}
	return 2 << 30
}

// evalChunk returns how many batches one execution evaluates when n are wanted: the largest
// divisor of n (so every execution has the same shape and one compiled program serves them all)
// whose estimated activations fit budget bytes, at least 1. The estimate per batch is twice (an
// operation's input and output) the largest of its activations in float32: the attention scores
// [B, H, T, T], the MLP's hidden layer [B, T, 4C] or the logits [B, T, V]. That is about 200 MB
// for the paper preset (on a GPU, chunks of 10 of its 200 batches) and 3 MB for the cpu preset
// (on a CPU, chunks of 10 of its 20).
func evalChunk(cfg gpt.Config, n, budget int) int {
	B, T := cfg.BatchSize, cfg.BlockSize
	perBatch := 2 * 4 * B * T * max(cfg.NHead*T, 4*cfg.NEmbd, cfg.VocabSize)
	limit := max(budget/max(perBatch, 1), 1)
	for k := min(n, limit); k > 1; k-- {
		if n%k == 0 {
			return k
		}
	}
	return 1
}

func (e *evaluator) losses(iter int) (trainLoss, valLoss float64, err error) {
	split := func(tokens []int32, stream uint64) evalSplit {
		return evalSplit{tokens: tokens, rng: data.RNG(e.seed, data.StreamEval+stream), n: e.cfg.EvalIters}
	}
	all, err := e.run(split(e.corpus.Train, 2*uint64(iter)), split(e.corpus.Val, 2*uint64(iter)+1))
	if err != nil {
		return 0, 0, err
	}
	return stat.Mean(all[0], nil), stat.Mean(all[1], nil), nil
}

// batchLosses returns the mean loss of each of n random batches of split.
func (e *evaluator) batchLosses(split []int32, rng *rand.Rand, n int) ([]float64, error) {
	all, err := e.run(evalSplit{tokens: split, rng: rng, n: n})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// evalSplit asks for the losses of the next n batches that rng draws from tokens.
type evalSplit struct {
	tokens []int32
	rng    *rand.Rand
	n      int
}

// evalInput is one chunk's stacked batches.
type evalInput struct{ x, y *tensors.Tensor }

// run returns the loss of each batch of each split, in the order drawn. A goroutine draws the
// chunks on the host one ahead of the executions; the losses are read once all have run.
func (e *evaluator) run(splits ...evalSplit) ([][]float64, error) {
	B, T := e.cfg.BatchSize, e.cfg.BlockSize
	common := 0 // the greatest common divisor of the splits' sizes: chunks never straddle two
	for _, s := range splits {
		if s.n < 1 {
			return nil, fmt.Errorf("internal error: an evaluation of %d batches", s.n)
		}
		for a, b := common, s.n; ; a, b = b, a%b {
			if b == 0 {
				common = a
				break
			}
		}
	}
	k := evalChunk(e.cfg, common, e.budget)
	var shown progressDisplay
	if e.progress != nil {
		total := 0
		for _, s := range splits {
			total += s.n
		}
		shown = e.progress(total)
		defer shown.Finish()
	}
	inputs := make(chan evalInput, 1)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		defer close(inputs)
		for _, s := range splits {
			for range s.n / k {
				x, y := make([]int32, 0, k*B*T), make([]int32, 0, k*B*T)
				for range k {
					bx, by := data.Batch(s.tokens, s.rng, B, T)
					x, y = append(x, bx...), append(y, by...)
				}
				in := evalInput{tensors.FromFlatDataAndDimensions(x, k*B, T), tensors.FromFlatDataAndDimensions(y, k*B, T)}
				select {
				case inputs <- in:
				case <-quit:
					return
				}
			}
		}
	}()
	var outs []*tensors.Tensor // per chunk, [k] losses, left on the device until all have run
	defer func() {
		for _, t := range outs {
			_ = t.FinalizeAll()
		}
	}()
	for in := range inputs {
		out, err := e.par.exec(e.exec, in.x, in.y)
		_, _ = in.x.FinalizeAll(), in.y.FinalizeAll()
		if err != nil {
			return nil, err
		}
		outs = append(outs, out[0])
		if shown != nil {
			shown.Add(k) // an execution returns once the device has run it
		}
	}
	flat := make([]float64, 0, len(outs)*k)
	for _, t := range outs {
		values, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, err
		}
		for _, v := range values {
			flat = append(flat, float64(v))
		}
	}
	all := make([][]float64, len(splits))
	for i, s := range splits {
		all[i], flat = flat[:s.n:s.n], flat[s.n:]
	}
	return all, nil
}
