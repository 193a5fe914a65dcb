package main

import (
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/train"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
)

// interleavedStepTimes builds the trainer of each configuration (its optimizer exactly as train
// builds it, from fresh weights of seed 1337, one device), runs two warm-up steps each (the
// first compiles), then rounds of steps steps per configuration in rotating order, and returns
// each configuration's mean seconds per step in each round. The batches are the run's own.
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
	step := func(e entry) error {
		_, inputs, labels, err := e.ds.Yield()
		if err != nil {
			return err
		}
		metrics, err := e.trainer.TrainStep(nil, inputs, labels)
		if err != nil {
			return err
		}
		for _, m := range metrics {
			if err := m.FinalizeAll(); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Printf("Timing training steps of %d configurations, %d interleaved rounds of %d steps...\n", len(opts), rounds, steps)
	for _, e := range entries {
		for range 2 {
			if err := step(e); err != nil {
				return nil, err
			}
		}
	}
	out := make([][]float64, len(opts))
	for r := range rounds {
		for k := range entries {
			i := (k + r) % len(entries) // rotate the order so no configuration always runs first
			start := time.Now()
			for range steps {
				if err := step(entries[i]); err != nil {
					return nil, err
				}
			}
			out[i] = append(out[i], time.Since(start).Seconds()/float64(steps))
		}
	}
	for _, e := range entries {
		e.trainer.ResetComputationGraphs()
	}
	return out, nil
}
