package study

import (
	"fmt"
	"slices"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// The files of a study folder, and of its published copy.

// studyFile is DIR/study.json.
type studyFile struct {
	Preset      string        `json:"preset"`
	Runs        []int         `json:"runs"`
	Seeds       []int64       `json:"seeds"`
	Invocations []invocation  `json:"invocations"`
	Diverged    []divergedRun `json:"diverged,omitempty"` // runs of the grid that diverged, in the order found
}

// divergedRun is a run of the grid whose training loss became NaN or infinite (results.Diverged):
// it has no results, and the report says so. An invocation that finishes it removes it.
type divergedRun struct {
	Run      int        `json:"run"`
	Seed     int64      `json:"seed"`
	Iter     int        `json:"iter"` // the iteration whose loss was not finite
	MaxIters int        `json:"max_iters"`
	Loss     string     `json:"loss"`                    // "NaN", "+Inf" or "-Inf"
	InEval   bool       `json:"in_evaluation,omitempty"` // the evaluation after Iter found it, not the training step
	Backend  string     `json:"backend"`
	Config   gpt.Config `json:"config"` // the run's recipe: the report lists it in the section of its preset, recipe and backend
	Date     string     `json:"date_utc"`
}

// String says which run diverged, where and on what, as the study and the report write it.
func (d divergedRun) String() string {
	which := "training"
	if d.InEval {
		which = "evaluation"
	}
	return fmt.Sprintf("run %d, seed %d diverged at iteration %d of %d (%s loss %s) on %s",
		d.Run, d.Seed, d.Iter, d.MaxIters, which, d.Loss, kindName(backendKind(d.Backend)))
}

// setDiverged records that run p diverged as d, or, with d nil, that it did not (it finished).
func (sf *studyFile) setDiverged(p gridPoint, d *divergedRun) {
	sf.Diverged = slices.DeleteFunc(sf.Diverged, func(x divergedRun) bool { return x.Run == p.run && x.Seed == p.seed })
	if d != nil {
		sf.Diverged = append(sf.Diverged, *d)
	}
}

// diverged reports whether run p is recorded as diverged.
func (sf *studyFile) diverged(p gridPoint) bool {
	return slices.ContainsFunc(sf.Diverged, func(x divergedRun) bool { return x.Run == p.run && x.Seed == p.seed })
}

// invocation is one execution of the study command on the folder.
type invocation struct {
	Command     string          `json:"command"`
	Revision    string          `json:"revision"` // git revision of the code, "+dirty" when it had uncommitted changes
	Machine     results.Machine `json:"machine"`
	Accelerator string          `json:"accelerator,omitempty"` // the GPU(s) a GPU backend computes on
	Backend     string          `json:"backend"`
	Started     string          `json:"started_utc"`
	Updated     string          `json:"updated_utc"`
	Seconds     float64         `json:"seconds"`            // wall time of this invocation so far
	Trained     []string        `json:"trained"`            // runs this invocation trained (all or part of), each recorded as it starts
	Analysed    []string        `json:"analysed,omitempty"` // runs whose final model this invocation analysed
	Config      *gpt.Config     `json:"config,omitempty"`   // the recipe of its runs (each run's metrics.json has it too); absent in older files
}

// provenance is where and with what code a published run file was made: the study adds it to
// each run's metrics.json and analysis.json as it publishes them, from the invocation that
// trained (or analysed) the run, so that a file copied alone still says where it came from.
type provenance struct {
	Revision    string           `json:"revision"` // git revision of the code, "+dirty" with uncommitted changes
	Command     string           `json:"command,omitempty"`
	Machine     *results.Machine `json:"machine,omitempty"`
	Accelerator string           `json:"accelerator,omitempty"`
	Backend     string           `json:"backend,omitempty"`
	Started     string           `json:"invocation_started_utc,omitempty"`
}

// speedFile is DIR/speed.json: the interleaved inference measurement of every final model.
type speedFile struct {
	Tokens  int                  `json:"tokens_per_rep"`
	Reps    int                  `json:"reps"`
	Backend string               `json:"backend"`
	Machine results.Machine      `json:"machine"`
	Date    string               `json:"date_utc"`
	Rates   map[string][]float64 `json:"tokens_per_sec"`  // per run name, one per repetition
	Order   string               `json:"order,omitempty"` // measureOrder; "" in files measured before it was recorded: rotating
}

// stepFile is a study's steps.json: the training-step time of every configuration, measured
// side by side in one process, so that machine load between runs does not enter the overhead.
type stepFile struct {
	StepsPerRound int                  `json:"steps_per_round"`
	Rounds        int                  `json:"rounds"`
	Backend       string               `json:"backend"`
	Machine       results.Machine      `json:"machine"`
	Date          string               `json:"date_utc"`
	Seconds       map[string][]float64 `json:"seconds_per_step"` // per run ("run0", ...), one per round
	Order         string               `json:"order,omitempty"`  // measureOrder; "" in files measured before it was recorded: rotating
}

// measureOrder names the order within each round of the interleaved measurements the study
// makes now (Trainer.InferenceSpeed, Trainer.StepTimes): benchmarks.RoundOrder's Williams
// design. Files without it were measured in a rotating order (round r started with
// configuration r and kept the list's order), in which each configuration followed the same
// one in most rounds.
const measureOrder = "williams"

// orderText says in words in which order the rounds of a measurement recorded as order ran.
func orderText(order string) string {
	if order == measureOrder {
		return "in a balanced order (a Williams design: each configuration follows every other equally often)"
	}
	return "in rotating order"
}
