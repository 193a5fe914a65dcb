package main

import (
	"math"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/gpt"
)

func TestEvalChunk(t *testing.T) {
	const gpu, cpu = 2 << 30, 32 << 20
	for _, tc := range []struct {
		preset    string
		n, budget int
		want      int
	}{
		{"paper", 200, gpu, 10}, // about 200 MB a batch
		{"paper", 7, gpu, 7},
		{"paper", 13, gpu, 1}, // a prime above the limit: one batch per execution
		{"paper", 200, cpu, 1},
		{"cpu", 20, cpu, 10}, // about 3 MB a batch
		{"cpu", 20, gpu, 20},
		{"cpu", 200, gpu, 200},
		{"tiny", 4, cpu, 4},
		{"tiny", 1, cpu, 1},
	} {
		cfg, err := gpt.Preset(tc.preset)
		if err != nil {
			t.Fatal(err)
		}
		cfg.VocabSize = 65
		if got := evalChunk(cfg, tc.n, tc.budget); got != tc.want {
			t.Errorf("%s preset, %d batches, %d bytes: chunks of %d, want %d", tc.preset, tc.n, tc.budget, got, tc.want)
		}
	}
}

// TestEvalMatchesPerBatch: the chunked evaluation gives each batch the loss that evaluating it
// alone with gpt.Loss gives (the evaluation before chunks existed: one execution and one read per
// batch), in the same order, up to float32 rounding; the means it reports agree as closely.
func TestEvalMatchesPerBatch(t *testing.T) {
	t.Parallel()
	presets := []string{"tiny", "cpu"}
	if testing.Short() {
		presets = presets[:1]
	}
	for _, preset := range presets {
		ev, old, corpus := newUntrained(t, preset, "")
		const iter = 3
		trainLoss, valLoss, err := ev.losses(iter)
		if err != nil {
			t.Fatal(err)
		}
		wantTrain, wantVal, err := old.losses(corpus, ev.seed, iter)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name      string
			got, want float64
		}{{"train", trainLoss, wantTrain}, {"val", valLoss, wantVal}} {
			t.Logf("%s preset: %s loss %.7f, one batch per execution %.7f", preset, tc.name, tc.got, tc.want)
			if d := math.Abs(tc.got-tc.want) / tc.want; d > 1e-6 {
				t.Errorf("%s preset: the %s loss differs by %.2g (relative) from one batch per execution", preset, tc.name, d)
			}
		}
		// 10 batches (in chunks of 10, or fewer for a larger model) and 6, batch by batch.
		for _, n := range []int{10, 6} {
			stream := data.StreamEval + 1000 + uint64(n)
			got, err := ev.batchLosses(corpus.Val, data.RNG(ev.seed, stream), n)
			if err != nil {
				t.Fatal(err)
			}
			want, err := old.batchLosses(corpus.Val, stream, ev.seed, n)
			if err != nil {
				t.Fatal(err)
			}
			same, worst := 0, 0.0
			for i := range want {
				if got[i] == want[i] {
					same++
				}
				worst = math.Max(worst, math.Abs(got[i]-want[i])/want[i])
			}
			t.Logf("%s preset, %d batches in chunks of %d: %d of %d losses bit-identical to one batch per execution, worst relative difference %.2g",
				preset, n, evalChunk(ev.cfg, n, ev.budget), same, n, worst)
			if worst > 1e-6 {
				t.Errorf("%s preset: a batch's loss differs by %.2g (relative) from evaluating it alone", preset, worst)
			}
		}
	}
}

// progressRecord records what an evaluation reports of its progress.
type progressRecord struct {
	total, done, finished int
	adds                  []int
}

func (p *progressRecord) Add(n int) { p.done += n; p.adds = append(p.adds, n) }
func (p *progressRecord) Finish()   { p.finished++ }

// TestEvalProgress: an evaluation reports every batch of both splits once, a chunk at a time,
// and finishes its display once; without a display it reports nothing.
func TestEvalProgress(t *testing.T) {
	t.Parallel()
	ev, _, _ := newUntrained(t, "tiny", "eval_iters=12")
	rec := &progressRecord{}
	ev.progress = func(total int) progressDisplay { rec.total = total; return rec }
	if _, _, err := ev.losses(1); err != nil {
		t.Fatal(err)
	}
	k := evalChunk(ev.cfg, 12, ev.budget)
	if rec.total != 24 || rec.done != 24 || rec.finished != 1 || len(rec.adds) != 24/k {
		t.Errorf("progress: total %d, done %d in %v, finished %d times; want 24 batches in %d chunks of %d, finished once",
			rec.total, rec.done, rec.adds, rec.finished, 24/k, k)
	}
	ev.progress = nil
	if _, _, err := ev.losses(2); err != nil {
		t.Fatal(err)
	}
}
