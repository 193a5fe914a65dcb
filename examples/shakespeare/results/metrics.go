package results

import (
	"encoding/json"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/gpt"
	"github.com/smi-gomlx/smi/internal/machine"
)

// Metrics is one run's metrics file (metrics.json).
type Metrics struct {
	Preset  string         `json:"preset"`
	Run     int            `json:"run"`
	RunName string         `json:"run_name"`
	Seed    int64          `json:"seed"`
	Config  gpt.Config     `json:"config"`
	SMI     map[string]any `json:"smi,omitempty"`  // SMI hyperparameters; absent for AdamW alone
	Data    *DataInfo      `json:"data,omitempty"` // the text trained on; absent before it was recorded (tiny Shakespeare)
	Params  int            `json:"params"`         // as nanoGPT counts, with position embeddings
	Backend string         `json:"backend"`
	Devices int            `json:"devices"` // data-parallel over this many devices (-devices); 0 when resumed on several counts
	// DeviceCounts: when the run was resumed on other device counts, those its iterations trained
	// on, in the order first used (Devices is then 0).
	DeviceCounts []int   `json:"device_counts,omitempty"`
	Machine      Machine `json:"machine"`
	GoVersion    string  `json:"go_version"`
	FinishedUTC  string  `json:"finished_utc"`

	// Deterministic: run-to-run determinism was asked for (-deterministic, $SMI_DETERMINISTIC) for
	// every iteration: on a GPU, XLA's deterministic ops; XLA CPU computes so without it.
	Deterministic bool `json:"deterministic,omitempty"`

	FinalTrainLoss float64 `json:"final_train_loss"` // mean over EvalIters batches, after the last iteration
	FinalValLoss   float64 `json:"final_val_loss"`
	BestValLoss    float64 `json:"best_val_loss"` // over all evaluations
	BestValIter    int     `json:"best_val_iter"`

	TrainSeconds      float64 `json:"train_seconds"`        // training steps only: no evaluation, checkpoints or measurement
	TrainTokensPerSec float64 `json:"train_tokens_per_sec"` // batch_size*block_size*max_iters / train_seconds
	// TrainStarts: the invocations that trained the run (1 unless resumed); each compiled the
	// training step within train_seconds. Absent for runs begun before it was recorded.
	TrainStarts  int     `json:"train_starts,omitempty"`
	TotalSeconds float64 `json:"total_seconds"` // this invocation of the command, end to end

	// Wall time beside the training steps, over the whole run like train_seconds.
	EvalSeconds            float64 `json:"eval_seconds"`             // the evaluations (the first compiles their program)
	CheckpointSeconds      float64 `json:"checkpoint_seconds"`       // training stalled for checkpoints: copies to host memory, waits for writes
	CheckpointWriteSeconds float64 `json:"checkpoint_write_seconds"` // the checkpoints' writes, in the background while training goes on

	Smoothing         string      `json:"smoothing"`
	ItersToThreshold  []Threshold `json:"iters_to_threshold"`
	VarianceWindow    int         `json:"variance_window"`     // the final 20% of iterations
	FinalLossVariance Optional    `json:"final_loss_variance"` // sample variance of the per-iteration training loss there
	Inference         *Inference  `json:"inference,omitempty"`
	IterLoss          []float64   `json:"iter_loss"` // training loss of each iteration's batch
	Evals             []Eval      `json:"evals"`
	SMITelemetry      []SMIPoint  `json:"smi_telemetry,omitempty"`

	// Undefined names each metric of this file that is not defined for the run, written as null
	// (an iteration count in iters_to_threshold), and why: a run too short for its window.
	Undefined map[string]string `json:"undefined,omitempty"`
}

// Optional is a metric that a run may leave undefined: NaN here, null in metrics.json (and NaN
// again when read), with the reason in Metrics.Undefined. encoding/json refuses NaN.
type Optional float64

func (x Optional) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(x))
}

func (x *Optional) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		*x = Optional(math.NaN())
		return nil
	}
	return json.Unmarshal(raw, (*float64)(x))
}

// Machine names where a run ran, so figures can be traced to hardware.
type Machine struct {
	Host string `json:"host"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
	CPUs int    `json:"cpus"`
	CPU  string `json:"cpu,omitempty"`
}

// Threshold is the first iteration whose smoothed training loss is below Loss; nil if never.
type Threshold struct {
	Loss float64 `json:"loss"`
	Iter *int    `json:"iter"`
}

// Eval is an evaluation: the estimated losses after iteration Iter, and the learning rate
// of that iteration.
type Eval struct {
	Iter  int     `json:"iter"`
	Train float64 `json:"train"`
	Val   float64 `json:"val"`
	LR    float64 `json:"lr"`
}

// SMIPoint is SMI's state after iteration Iter: the blend alpha and the fraction of the
// gradient's spectral energy the mask kept.
type SMIPoint struct {
	Iter       int     `json:"iter"`
	Alpha      float64 `json:"alpha"`
	KeptEnergy float64 `json:"kept_energy"`
}

// Inference is the autoregressive generation speed.
type Inference struct {
	TokensPerSec float64    `json:"tokens_per_sec"` // mean over repetitions
	CI95         [2]float64 `json:"ci95"`           // Student-t 95% interval of the mean
	PerRep       []float64  `json:"per_rep"`
	TokensPerRep int        `json:"tokens_per_rep"`
	WarmupTokens int        `json:"warmup_tokens"`
}

// DataInfo is the text a run trained on, in its metrics.
type DataInfo struct {
	File            string `json:"file"` // the file's name (not its path: that is the machine's)
	SHA256          string `json:"sha256"`
	Bytes           int    `json:"bytes"`
	Characters      int    `json:"characters"` // in both splits
	TinyShakespeare bool   `json:"tiny_shakespeare"`
}

// DataSHA256 is the checksum of the text of a run's metrics: tiny Shakespeare's for metrics from
// before they recorded the text (the trainer refused any other then).
func DataSHA256(m *Metrics) string {
	if m.Data == nil {
		return data.SHA256
	}
	return m.Data.SHA256
}

// ThisMachine describes the machine this process runs on.
func ThisMachine() Machine {
	host, _ := os.Hostname()
	return Machine{Host: host, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), CPU: machine.CPU()}
}

// NowUTC is the time now, as the result files write it.
func NowUTC() string { return time.Now().UTC().Format(time.RFC3339) }
