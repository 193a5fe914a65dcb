package study

import "github.com/smi-gomlx/smi/examples/shakespeare/results"

// The files of a study folder, and of its published copy.

// studyFile is DIR/study.json.
type studyFile struct {
	Preset      string       `json:"preset"`
	Runs        []int        `json:"runs"`
	Seeds       []int64      `json:"seeds"`
	Invocations []invocation `json:"invocations"`
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
	Trained     []string        `json:"trained"`            // runs this invocation trained (or finished)
	Analysed    []string        `json:"analysed,omitempty"` // runs whose final model this invocation analysed
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
