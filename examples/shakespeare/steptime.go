package main

import (
	"fmt"
	"os"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/train"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/cli"
)

// interleavedStepTimes builds the trainer of each configuration (its optimizer exactly as train
// builds it, from fresh weights of the run's seed, one device), runs one warm-up round of steps
// steps each (the first compiles), then rounds of steps steps per configuration in
// benchmarks.Interleave's balanced order, and returns each configuration's mean seconds per step
// in each round. The batches are the run's own.
func interleavedStepTimes(b backends.Backend, corpus *data.Corpus, opts []*trainOptions, steps, rounds int) ([][]float64, error) {
	type entry struct {
		trainer *train.Trainer
		ds      *batches
	}
	entries := make([]entry, len(opts))
	for i, to := range opts {
		ctx, cfg, err := to.settings(len(corpus.Chars))
		if err != nil {
			return nil, err
		}
		if err := ctx.SetRNGStateFromSeed(to.Seed); err != nil {
			return nil, err
		}
		opt, err := newOptimizer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		entries[i] = entry{newTrainer(b, ctx.Checked(false), cfg, opt), &batches{corpus: corpus, cfg: cfg, seed: to.Seed}}
	}
	// The warm-up is one round of steps steps: the first step compiles.
	const warmup = 1
	shown := cli.NewProgress(os.Stderr, "timing steps", (warmup+rounds)*len(entries), "measurements") // a configuration's round
	defer shown.Finish()
	cases := make([]benchmarks.Case, len(entries))
	for i, e := range entries {
		cases[i] = benchmarks.Case{Name: fmt.Sprintf("run%d", opts[i].Run), Timed: func() (time.Duration, error) {
			start := time.Now()
			for range steps {
				if err := trainStep(e.trainer, e.ds); err != nil {
					return 0, err
				}
			}
			took := time.Since(start)
			shown.Add(1) // not timed
			return took, nil
		}}
	}
	fmt.Printf("Timing training steps of %d configurations, %d interleaved rounds of %d steps...\n", len(opts), rounds, steps)
	res, err := benchmarks.Interleave(cases, benchmarks.Options{Warmup: warmup, Rounds: rounds, MinRounds: rounds})
	for _, e := range entries {
		e.trainer.ResetComputationGraphs()
	}
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(opts))
	for i, r := range res {
		for _, d := range r.Samples {
			out[i] = append(out[i], d.Seconds()/float64(steps))
		}
	}
	return out, nil
}

// trainStep runs one training step on the next batch and waits for its metrics.
func trainStep(t *train.Trainer, ds *batches) error {
	_, inputs, labels, err := ds.Yield()
	if err != nil {
		return err
	}
	return benchmarks.Await(t.TrainStep(nil, inputs, labels))
}
