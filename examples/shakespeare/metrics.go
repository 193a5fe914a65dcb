package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// Metrics is one run's metrics file (metrics.json).
type Metrics struct {
	Preset      string         `json:"preset"`
	Run         int            `json:"run"`
	RunName     string         `json:"run_name"`
	Seed        int64          `json:"seed"`
	Config      gpt.Config     `json:"config"`
	SMI         map[string]any `json:"smi,omitempty"`  // SMI hyperparameters; absent for AdamW alone
	Data        *DataInfo      `json:"data,omitempty"` // the text trained on; absent before it was recorded (tiny Shakespeare)
	Params      int            `json:"params"`         // as nanoGPT counts, with position embeddings
	Backend     string         `json:"backend"`
	Devices     int            `json:"devices"` // data-parallel over this many devices (-devices)
	Machine     Machine        `json:"machine"`
	GoVersion   string         `json:"go_version"`
	FinishedUTC string         `json:"finished_utc"`

	FinalTrainLoss float64 `json:"final_train_loss"` // mean over EvalIters batches, after the last iteration
	FinalValLoss   float64 `json:"final_val_loss"`
	BestValLoss    float64 `json:"best_val_loss"` // over all evaluations
	BestValIter    int     `json:"best_val_iter"`

	TrainSeconds      float64 `json:"train_seconds"`        // training steps only: no evaluation, checkpoints or measurement
	TrainTokensPerSec float64 `json:"train_tokens_per_sec"` // batch_size*block_size*max_iters / train_seconds
	TotalSeconds      float64 `json:"total_seconds"`        // this invocation of the command, end to end

	// Wall time beside the training steps, over the whole run like train_seconds.
	EvalSeconds            float64 `json:"eval_seconds"`             // the evaluations (the first compiles their program)
	CheckpointSeconds      float64 `json:"checkpoint_seconds"`       // training stalled for checkpoints: copies to host memory, waits for writes
	CheckpointWriteSeconds float64 `json:"checkpoint_write_seconds"` // the checkpoints' writes, in the background while training goes on

	Smoothing         string      `json:"smoothing"`
	ItersToThreshold  []Threshold `json:"iters_to_threshold"`
	VarianceWindow    int         `json:"variance_window"`     // the final 20% of iterations
	FinalLossVariance optional    `json:"final_loss_variance"` // sample variance of the per-iteration training loss there
	Inference         *Inference  `json:"inference,omitempty"`
	IterLoss          []float64   `json:"iter_loss"` // training loss of each iteration's batch
	Evals             []evalLoss  `json:"evals"`
	SMITelemetry      []smiPoint  `json:"smi_telemetry,omitempty"`

	// Undefined names each metric of this file that is not defined for the run, written as null
	// (an iteration count in iters_to_threshold), and why: a run too short for its window.
	Undefined map[string]string `json:"undefined,omitempty"`
}

// optional is a metric that a run may leave undefined: NaN here, null in metrics.json (and NaN
// again when read), with the reason in Metrics.Undefined. encoding/json refuses NaN.
type optional float64

func (x optional) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(x))
}

func (x *optional) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		*x = optional(math.NaN())
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

// smoothWindow is the trailing window of the smoothed training-loss curve.
const smoothWindow = 50

var smoothingDoc = fmt.Sprintf("trailing mean of the last %d per-iteration training losses; defined from iteration %d on", smoothWindow, smoothWindow)

// smooth returns the trailing mean of window values ending at each index (NaN before the
// window is full).
func smooth(xs []float64, window int) []float64 {
	out := make([]float64, len(xs))
	sum := 0.0
	for i, x := range xs {
		sum += x
		if i >= window {
			sum -= xs[i-window]
		}
		if i+1 >= window {
			out[i] = sum / float64(window)
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}

// itersToThresholds returns, for each threshold, the first iteration (1-based: the number of
// updates made) whose smoothed loss is below it.
func itersToThresholds(iterLoss, thresholds []float64) []Threshold {
	s := smooth(iterLoss, smoothWindow)
	out := make([]Threshold, len(thresholds))
	for k, th := range thresholds {
		out[k].Loss = th
		for i, v := range s {
			if !math.IsNaN(v) && v < th {
				iter := i + 1
				out[k].Iter = &iter
				break
			}
		}
	}
	return out
}

// finalVariance is the sample variance of the last 20% of the per-iteration losses (the paper:
// the final 1,000 of 5,000 iterations).
func finalVariance(iterLoss []float64) (float64, int) {
	n := max(len(iterLoss)/5, 2)
	n = min(n, len(iterLoss))
	if n < 2 {
		return math.NaN(), n
	}
	return stat.Variance(iterLoss[len(iterLoss)-n:], nil), n
}

// undefinedMetrics names the metrics a run of iters iterations leaves undefined, with the reason
// (nil: none); window is finalVariance's.
func undefinedMetrics(iters, window int) map[string]string {
	out := map[string]string{}
	if window < 2 {
		out["final_loss_variance"] = fmt.Sprintf("a variance needs 2 losses, and the window (the final 20%% of "+
			"iterations, at least 2) holds %d: the run has %d iteration(s)", window, iters)
	}
	if iters < smoothWindow {
		out["iters_to_threshold"] = fmt.Sprintf("the smoothed loss (a trailing mean of %d iterations) is not defined "+
			"in a run of %d iteration(s): every threshold's iteration is null, not because it was never reached", smoothWindow, iters)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// meanCI95 returns the mean and the two-sided 95% Student-t confidence interval of xs.
func meanCI95(xs []float64) (mean, lo, hi float64) {
	mean = stat.Mean(xs, nil)
	if len(xs) < 2 {
		return mean, math.NaN(), math.NaN()
	}
	half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(xs) - 1)}.Quantile(0.975) *
		stat.StdDev(xs, nil) / math.Sqrt(float64(len(xs)))
	return mean, mean - half, mean + half
}

func newMetrics(b backends.Backend, o *trainOptions, ctx *context.Context, cfg gpt.Config, h *history, thresholds []float64) *Metrics {
	r, _ := lookupRun(o.Run)
	m := &Metrics{
		Preset: o.Preset, Run: o.Run, RunName: r.Name, Seed: o.Seed, Config: cfg, SMI: smiSettings(ctx),
		Params: cfg.NumParams(true), Backend: backend.Description(b), Machine: thisMachine(),
		GoVersion: runtime.Version(), FinishedUTC: nowUTC(),
		TrainSeconds: h.TrainSeconds, Smoothing: smoothingDoc,
		EvalSeconds: h.EvalSeconds, CheckpointSeconds: h.CheckpointSeconds, CheckpointWriteSeconds: h.CheckpointWriteSeconds,
		IterLoss: h.IterLoss, Evals: h.Evals, SMITelemetry: h.Telemetry,
	}
	switch {
	case m.SMI != nil && !r.SMI:
		m.RunName = "free-form SMI"
	case m.SMI == nil && r.SMI:
		m.RunName = "AdamW alone (" + r.Name + " with optimizer=adamw)"
	}
	last := h.Evals[len(h.Evals)-1]
	m.FinalTrainLoss, m.FinalValLoss = last.Train, last.Val
	m.BestValLoss = math.Inf(1)
	for _, e := range h.Evals {
		if e.Val < m.BestValLoss {
			m.BestValLoss, m.BestValIter = e.Val, e.Iter
		}
	}
	m.TrainTokensPerSec = float64(cfg.BatchSize*cfg.BlockSize*cfg.MaxIters) / h.TrainSeconds
	m.ItersToThreshold = itersToThresholds(h.IterLoss, thresholds)
	variance, window := finalVariance(h.IterLoss)
	m.FinalLossVariance, m.VarianceWindow = optional(variance), window
	m.Undefined = undefinedMetrics(len(h.IterLoss), window)
	return m
}

func thisMachine() Machine {
	host, _ := os.Hostname()
	m := Machine{Host: host, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}

func nowUTC() string { return time.Now().UTC().Format(time.RFC3339) }
