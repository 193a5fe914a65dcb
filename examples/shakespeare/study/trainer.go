package study

import (
	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// Spec is one run of a study as the trainer is asked for it: the paper's configuration Run of
// the preset, with Seed, on the text in Data, with the -set settings Set, in the run directory
// Out.
type Spec struct {
	Preset string
	Run    int
	Seed   int64
	Data   string
	Set    string
	Out    string
	Quiet  bool // a line per evaluation instead of a progress bar
}

// Trainer is what a study needs of the Shakespeare trainer, which package main provides: the
// study decides what to train, in what order, and publishes and reports what the trainer
// wrote; the trainer knows the model, the graphs and the run directories' checkpoints.
type Trainer interface {
	// Settings returns run s's model configuration and SMI settings as its metrics record them
	// (results.Metrics's Config and SMI), or why s cannot run on corpus: the study checks every
	// run before it trains any. A nil corpus checks them before the data is read, with the
	// preset's vocabulary size standing in for the data's.
	Settings(corpus *data.Corpus, s Spec) (gpt.Config, map[string]any, error)

	// Train trains run s into s.Out, resuming from its checkpoint (or, complete, only rewriting
	// its metrics), and returns its metrics.
	Train(b backends.Backend, corpus *data.Corpus, s Spec) (*results.Metrics, error)

	// Analyze analyses the final model of the run in dir on batches validation batches, and
	// writes dir/analysis.json.
	Analyze(b backends.Backend, corpus *data.Corpus, dir string, batches int) error

	// InferenceSpeed measures the inference speed of the final models of the run directories
	// dirs side by side in this process, in reps rounds of tokens characters each, interleaved by
	// benchmarks.Interleave (its balanced order, measureOrder): each model's characters per
	// second in each round.
	InferenceSpeed(b backends.Backend, corpus *data.Corpus, dirs []string, tokens, reps int) ([][]float64, error)

	// StepTimes times the training steps of the runs specs side by side in this process, in
	// rounds of steps steps each, interleaved by benchmarks.Interleave (its balanced order,
	// measureOrder): each run's mean seconds per step in each round.
	StepTimes(b backends.Backend, corpus *data.Corpus, specs []Spec, steps, rounds int) ([][]float64, error)
}
