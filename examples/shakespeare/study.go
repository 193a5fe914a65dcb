package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// cmdStudy is the study command (package study), training, analysing and measuring with this
// trainer.
func cmdStudy(args []string) error { return study.Command(args, studyTrainer{}) }

// studyTrainer is the trainer as the study uses it (study.Trainer): every run of a study
// trains exactly as `train` with the same flags would.
type studyTrainer struct {
	// stop, when set (by tests), is the iteration after which the run s stops as if
	// interrupted (0: never).
	stop func(s study.Spec) int
}

var _ study.Trainer = studyTrainer{}

// options are the train command's options of s.
func (t studyTrainer) options(s study.Spec) *trainOptions {
	o := &trainOptions{Preset: s.Preset, Run: s.Run, Seed: s.Seed, Data: s.Data, Set: s.Set, Quiet: s.Quiet,
		Out: s.Out, Thresholds: results.DefaultThresholds}
	if t.stop != nil {
		o.stopAt = t.stop(s)
	}
	return o
}

func (t studyTrainer) Settings(corpus *data.Corpus, s study.Spec) (gpt.Config, map[string]any, error) {
	vocab := 0 // before the data is read: the preset's (trainOptions.settings)
	if corpus != nil {
		vocab = len(corpus.Chars)
	}
	ctx, cfg, err := t.options(s).settings(vocab)
	if err != nil {
		return gpt.Config{}, nil, err
	}
	return cfg, smiSettings(ctx), nil
}

func (t studyTrainer) Train(b backends.Backend, corpus *data.Corpus, s study.Spec) (*results.Metrics, error) {
	o := t.options(s)
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
		return nil, err
	}
	thresholds, err := results.ParseThresholds(o.Thresholds)
	if err != nil {
		return nil, err
	}
	return trainRun(b, ctx, cfg, corpus, o, thresholds)
}

func (studyTrainer) Analyze(b backends.Backend, corpus *data.Corpus, dir string, batches int) error {
	if err := checkFinalCheckpoint(dir); err != nil {
		return err
	}
	return analyzeRunDir(b, corpus, dir, batches)
}

func (studyTrainer) InferenceSpeed(b backends.Backend, corpus *data.Corpus, dirs []string, tokens, reps int) ([][]float64, error) {
	for _, dir := range dirs {
		if err := checkFinalCheckpoint(dir); err != nil {
			return nil, err
		}
	}
	return interleavedSpeed(b, corpus, dirs, tokens, reps)
}

// checkFinalCheckpoint refuses a finished run (metrics.json) whose newest checkpoint that reads
// back is not its last iteration's: the study analyses and times final models, and loadRun would
// take an older one without a word beyond its skip line (a damaged final checkpoint gave the
// analysis of iteration 30 of 60 as the final model's).
func checkFinalCheckpoint(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		return err
	}
	var m results.Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(dir, "metrics.json"), err)
	}
	all, err := runStore(dir).list()
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for _, c := range all {
		if c.step != m.Config.MaxIters {
			continue
		}
		if _, _, err := readCheckpoint(c.dir); err != nil {
			return fmt.Errorf("the final checkpoint of %s (iteration %d) does not read back: %v\n"+
				"Train the run again (delete %s; the study retrains it), or restore the checkpoint", dir, c.step, err, dir)
		}
		return nil
	}
	return fmt.Errorf("%s has no checkpoint of its last iteration, %d: train the run again (delete %s; the study retrains it)", dir, m.Config.MaxIters, dir)
}

func (t studyTrainer) StepTimes(b backends.Backend, corpus *data.Corpus, specs []study.Spec, steps, rounds int) ([][]float64, error) {
	opts := make([]*trainOptions, len(specs))
	for i, s := range specs {
		opts[i] = t.options(s)
	}
	return interleavedStepTimes(b, corpus, opts, steps, rounds)
}
