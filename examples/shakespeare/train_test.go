package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/backend"
)

var sharedData = filepath.Join("..", "..", "..", "shared", "data", data.FileName)

// tinyRun trains the tiny preset in dir with the given -set settings.
func tinyRun(t *testing.T, run int, dir, set string, stopAt int) (*Metrics, error) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := data.Load(sharedData)
	if err != nil {
		t.Fatalf("the tests need tiny Shakespeare at %s: %v", sharedData, err)
	}
	o := &trainOptions{Preset: "tiny", Run: run, Seed: 7, Data: sharedData, Out: dir, Set: set, Quiet: true,
		Thresholds: "3.5,3.0", stopAt: stopAt}
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
		t.Fatal(err)
	}
	thresholds, _ := parseThresholds(o.Thresholds)
	return trainRun(b, ctx, cfg, corpus, o, thresholds)
}

func TestTinyLossFalls(t *testing.T) {
	dir := t.TempDir()
	m, err := tinyRun(t, 0, dir, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	first := m.Evals[0]
	if first.Iter != 0 || math.Abs(first.Val-math.Log(65)) > 0.3 {
		t.Errorf("initial validation loss %.3f, want about ln(65) = %.3f", first.Val, math.Log(65))
	}
	if m.FinalValLoss > first.Val-0.8 || m.FinalTrainLoss > first.Train-0.8 {
		t.Errorf("loss did not fall enough in %d iterations: val %.3f -> %.3f, train %.3f -> %.3f",
			m.Config.MaxIters, first.Val, m.FinalValLoss, first.Train, m.FinalTrainLoss)
	}
	if len(m.IterLoss) != m.Config.MaxIters || m.ItersToThreshold[0].Iter == nil {
		t.Errorf("per-iteration record: %d losses, iterations to %.1f: %v", len(m.IterLoss), m.ItersToThreshold[0].Loss, m.ItersToThreshold[0].Iter)
	}
	for _, name := range []string{"metrics.json", "loss.png", "checkpoint"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
}

// TestResumeEqualsUninterrupted stops an SMI run part-way, resumes it, and expects the very
// same losses as a run that was never stopped.
func TestResumeEqualsUninterrupted(t *testing.T) {
	const set = "max_iters=30;eval_interval=10;eval_iters=2"
	whole, err := tinyRun(t, 5, t.TempDir(), set, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := tinyRun(t, 5, dir, set, 15); !errors.Is(err, errStopped) {
		t.Fatalf("stopping at iteration 15: got %v", err)
	}
	resumed, err := tinyRun(t, 5, dir, set, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(resumed.IterLoss) != len(whole.IterLoss) {
		t.Fatalf("resumed run has %d iterations, want %d", len(resumed.IterLoss), len(whole.IterLoss))
	}
	for i := range whole.IterLoss {
		if resumed.IterLoss[i] != whole.IterLoss[i] {
			t.Fatalf("iteration %d: loss %.7f after resuming, %.7f uninterrupted", i+1, resumed.IterLoss[i], whole.IterLoss[i])
		}
	}
	if resumed.FinalValLoss != whole.FinalValLoss || len(resumed.SMITelemetry) != 30 {
		t.Fatalf("final validation loss %.7f vs %.7f; %d telemetry points", resumed.FinalValLoss, whole.FinalValLoss, len(resumed.SMITelemetry))
	}
	// A different run in the same directory is refused rather than mixed in.
	if _, err := tinyRun(t, 4, dir, set, 0); err == nil || !strings.Contains(err.Error(), "different settings") {
		t.Fatalf("resuming with other settings: got %v", err)
	}
}

func TestCommandLineErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.txt")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-preset", "huge", "-data", sharedData}, `unknown preset "huge"`},
		{[]string{"-run", "6", "-data", sharedData}, "unknown run 6"},
		{[]string{"-data", missing}, "not found"},
		{[]string{"-data", sharedData, "-set", "n_layers=3"}, "n_layers"},
		{[]string{"-data", sharedData, "-set", "smi_quantile=0.3"}, "SMI off"},
		{[]string{"-data", sharedData, "-set", "n_head=3"}, "multiple of n_head"},
		{[]string{"-data", sharedData, "-thresholds", "1,x"}, "-thresholds"},
	} {
		err := runCommand(cmdTrain, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("train %s: got %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
