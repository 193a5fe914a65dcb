package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
)

// sharedData is tiny Shakespeare for the tests: $SMI_DATA when set (make test and make check set
// it to the file the Makefile found), else the trainer's default, the per-user cache that
// make data fills.
var sharedData = cmp.Or(os.Getenv("SMI_DATA"), data.DefaultPath())

// tinyRun trains the tiny preset in dir with the given -set settings.
func tinyRun(t *testing.T, run int, dir, set string, stopAt int) (*results.Metrics, error) {
	t.Helper()
	return tinyRunWith(t, run, dir, set, stopAt, func(*trainOptions) {})
}

// tinyRunWith is tinyRun with further options set by edit.
func tinyRunWith(t *testing.T, run int, dir, set string, stopAt int, edit func(*trainOptions)) (*results.Metrics, error) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := data.Load(sharedData)
	if err != nil {
		t.Fatalf("the tests need tiny Shakespeare at %s (set SMI_DATA to the file, or run make data): %v", sharedData, err)
	}
	o := &trainOptions{Preset: "tiny", Run: run, Seed: 7, Data: sharedData, Out: dir, Set: set, Quiet: true,
		Thresholds: "3.5,3.0", stopAt: stopAt}
	edit(o)
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
		t.Fatal(err)
	}
	thresholds, _ := results.ParseThresholds(o.Thresholds)
	return trainRun(b, ctx, cfg, corpus, o, thresholds)
}

func TestTinyLossFalls(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
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

	// An analysis file that cannot be written is refused before the analysis: here a folder in
	// the plot's place, written after analysis.json.
	plot := filepath.Join(dir, spectralPlotFile)
	if err := os.Mkdir(plot, 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	if code := run([]string{"analyze", "-out", dir, "-data", sharedData, "-batches", "2"}, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "-out "+plot+" is a folder") {
		t.Errorf("analyze with a folder for its plot: exit status %d, %q; want 2 and the plot named", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, analysisFile)); err == nil {
		t.Error("analyze wrote analysis.json before refusing the plot's path")
	}
	if err := os.Remove(plot); err != nil {
		t.Fatal(err)
	}
	// The analysis and the report work on this run.
	if err := runCommand(cmdAnalyze, []string{"-out", dir, "-data", sharedData, "-batches", "2"}); err != nil {
		t.Fatal(err)
	}
	var a results.Analysis
	raw, err := os.ReadFile(filepath.Join(dir, "analysis.json"))
	if err != nil || json.Unmarshal(raw, &a) != nil {
		t.Fatalf("analysis.json: %v", err)
	}
	if len(a.Matrices) != 4*m.Config.NLayer+2 || a.ConditionNumberGeoMean < 1 || a.SpectralNormVarianceAcrossLayers <= 0 {
		t.Errorf("analysis: %d matrices, condition (geometric mean) %g, spectral-norm variance %g", len(a.Matrices), a.ConditionNumberGeoMean, a.SpectralNormVarianceAcrossLayers)
	}
	for name, f := range map[string]float64{"active": a.ActiveFraction, "mlp": a.MLPSparsity, "attention": a.AttentionSparsity} {
		if f < 0 || f > 1 || math.IsNaN(f) {
			t.Errorf("%s fraction %g outside [0, 1]", name, f)
		}
	}
	if a.Iter != int64(m.Config.MaxIters) {
		t.Errorf("analysis of the checkpoint at iteration %d, want %d", a.Iter, m.Config.MaxIters)
	}
	speedFile := filepath.Join(dir, "speed.md")
	if err := runCommand(cmdSpeed, []string{"-data", sharedData, "-reps", "2", "-tokens", "5", "-out", speedFile, dir, dir}); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(speedFile); !strings.Contains(string(md), "| tokens/s |") {
		t.Errorf("speed.md: %q", md)
	}
	reportDir := filepath.Join(dir, "report")
	if err := runCommand(study.ReportCommand, []string{"-out", reportDir, dir}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(reportDir, "report.md"))
	for _, want := range []string{"## final validation loss", "tiny run 0 (AdamW alone)", "## attention sparsity"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

// resumeSet is the run the resume tests train: the tiny preset with one layer, as the resumes,
// not the model, are what they test (every kind of state is there: weights, AdamW moments, SMI
// histories, the step).
const resumeSet = "max_iters=30;eval_interval=10;eval_iters=2;n_layer=1"

var uninterrupted struct {
	once sync.Once
	m    *results.Metrics
	err  error
}

// uninterruptedRun is run 5 of resumeSet trained straight through (with the default checkpoint
// interval), once per test binary: what the resume tests compare their resumed runs with.
func uninterruptedRun(t *testing.T) *results.Metrics {
	t.Helper()
	uninterrupted.once.Do(func() {
		uninterrupted.err = fmt.Errorf("the uninterrupted run did not finish")
		uninterrupted.m, uninterrupted.err = tinyRun(t, 5, t.TempDir(), resumeSet, 0)
	})
	if uninterrupted.err != nil {
		t.Fatalf("the uninterrupted run: %v", uninterrupted.err)
	}
	return uninterrupted.m
}

// TestResumeEqualsUninterrupted stops an SMI run part-way, resumes it, and expects the very
// same losses as a run that was never stopped.
func TestResumeEqualsUninterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several runs")
	}
	t.Parallel()
	const set = resumeSet
	whole := uninterruptedRun(t)
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
	// The run records whether it was deterministic from its start (TestMain asks for it unless
	// $SMI_DETERMINISTIC says otherwise), and train would resume it so without being told.
	if want := backend.Deterministic(); whole.Deterministic != want || resumed.Deterministic != want {
		t.Errorf("deterministic: uninterrupted %v, resumed %v, want %v", whole.Deterministic, resumed.Deterministic, want)
	}
	// Each start compiled the step within train_seconds: the record says how many there were.
	if whole.TrainStarts != 1 || resumed.TrainStarts != 2 {
		t.Errorf("train_starts: uninterrupted %d, resumed %d, want 1 and 2", whole.TrainStarts, resumed.TrainStarts)
	}
	if resumed.FinalValLoss != whole.FinalValLoss || len(resumed.SMITelemetry) != 30 {
		t.Fatalf("final validation loss %.7f vs %.7f; %d telemetry points", resumed.FinalValLoss, whole.FinalValLoss, len(resumed.SMITelemetry))
	}
	// A different run in the same directory is refused rather than mixed in.
	if _, err := tinyRun(t, 4, dir, set, 0); err == nil || !strings.Contains(err.Error(), "different settings") {
		t.Fatalf("resuming with other settings: got %v", err)
	}
}

// TestDeterminismFollowsTheRun: a run resumed without -deterministic continues as it began
// (train asks the backend for determinism when the run's checkpoint records it), and a run's
// record says deterministic only when every iteration was (TestResumeEqualsUninterrupted checks a
// run deterministic throughout). Not parallel: it sets $SMI_DETERMINISTIC, which the backend reads.
func TestDeterminismFollowsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several runs")
	}
	const set = "max_iters=6;eval_interval=3;eval_iters=1;n_layer=1"
	train := func(dir, env string, stopAt int) *results.Metrics {
		t.Helper()
		t.Setenv(backend.DeterministicEnv, env)
		m, err := tinyRun(t, 5, dir, set, stopAt)
		if stopAt > 0 && !errors.Is(err, errStopped) || stopAt == 0 && err != nil {
			t.Fatalf("SMI_DETERMINISTIC=%q, stopping at %d: %v", env, stopAt, err)
		}
		return m
	}
	for _, tc := range []struct {
		name         string
		begin, after string // $SMI_DETERMINISTIC before and after the stop
	}{
		{"begun without", "0", "1"},
		{"resumed without", "1", "0"}, // as a study's runs, which do not look: a line says so
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			train(dir, tc.begin, 3)
			o := &trainOptions{Out: dir}
			for _, c := range []struct {
				name             string
				given            bool
				env              string
				restart          bool
				wantSet, wantInh bool
			}{
				{name: "as begun", wantSet: tc.begin == "1", wantInh: tc.begin == "1"},
				{name: "-deterministic=false", given: true},
				{name: "SMI_DETERMINISTIC=0", env: "0"},
				{name: "-restart", restart: true},
			} {
				o.Restart = c.restart
				if set, inh := determinismFor(o, c.given, c.env); set != c.wantSet || inh != c.wantInh {
					t.Errorf("%s: determinismFor = %v, %v; want %v, %v", c.name, set, inh, c.wantSet, c.wantInh)
				}
			}
			if m := train(dir, tc.after, 0); m.Deterministic {
				t.Error("metrics.json says deterministic, yet not every iteration was")
			}
		})
	}
	if set, inh := determinismFor(&trainOptions{Out: t.TempDir()}, false, ""); set || inh {
		t.Errorf("a new run: determinismFor = %v, %v; want false, false", set, inh)
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
		{[]string{"-data", sharedData, "-set", "smi=true"}, "smi=true is now optimizer=smi"},
		{[]string{"-data", sharedData, "-set", "n_head=3"}, "multiple of n_head"},
		{[]string{"-data", sharedData, "-thresholds", "1,x"}, "-thresholds"},
		{[]string{"-data", sharedData, "-thresholds", "NaN"}, `-thresholds: "NaN" is not a positive finite number`},
		{[]string{"-data", sharedData, "-thresholds", "Inf,2"}, `-thresholds: "Inf" is not a positive finite number`},
		{[]string{"-data", sharedData, "-set", "run=3"}, "-set run: choose it with the flag -run"},
		{[]string{"-data", sharedData, "-bench_tokens", "-5"}, "-bench_tokens must be at least 1"},
		{[]string{"-data", sharedData, "-bench_reps", "1"}, "-bench_reps must be at least 2"},
		{[]string{"-data", sharedData, "-set", "max_iters=2;seed=5"}, "-set seed: choose it with the flag -seed"},
		{[]string{"-data", sharedData, "-set", "preset=paper"}, "-set preset: choose it with the flag -preset"},
		{[]string{"-data", sharedData, "-set", "max_iters=1099511627776"}, "max_iters=1099511627776: at most 10000000"},
		// Flags that need no data are checked first: the mistake is not hidden behind a missing file.
		{[]string{"-preset", "huge", "-data", missing}, `unknown preset "huge"`},
		{[]string{"-run", "6", "-data", missing}, "unknown run 6"},
		{[]string{"-device", "tpu", "-data", missing}, `unknown device "tpu"`},
		{[]string{"-devices", "-1", "-data", missing}, "-devices must be >= 0"},
		{[]string{"-set", "bogus=1", "-data", missing}, `-set "bogus=1"`},
		{[]string{"-set", "optimizer=smi;smi_quantile=2", "-data", missing}, "Quantile must be in [0, 1), got 2"},
		{[]string{"-set", "optimizer=foo", "-data", missing}, "optimizer=foo"},
		{[]string{"-run", "5", "-set", "smi_base=lion", "-data", missing}, "smi_base=lion"},
		{[]string{"-out", "/proc/smi-no-such/run", "-data", missing}, "-out /proc/smi-no-such/run: cannot write files in it"},
	} {
		err := runCommand(cmdTrain, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("train %s: got %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
			continue
		}
		// Every mistake here but the missing file is the command line's: one line, exit status 2.
		if tc.want != "not found" && (!cli.IsUsage(err) || strings.Contains(err.Error(), "\n")) {
			t.Errorf("train %s: %q is not a one-line usage error", strings.Join(tc.args, " "), err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-preset", "huge"}, `-preset: gpt.Preset: unknown preset "huge"`},
		{[]string{"-runs", "0,6"}, "-runs: unknown run 6"},
		{[]string{"-device", "tpu"}, `-device: unknown device "tpu"`},
	} {
		args := append(tc.args, "-data", missing, "-dir", filepath.Join(t.TempDir(), "study"))
		err := runCommand(cmdStudy, args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("study %s: got %v, want an error containing %q", strings.Join(args, " "), err, tc.want)
		}
	}
	// The commands that read a trained run say first that the run directory has no checkpoint.
	untrained := filepath.Join(t.TempDir(), "untrained")
	for name, cmd := range map[string]func([]string) error{"sample": cmdSample, "eval": cmdEval, "analyze": cmdAnalyze} {
		err := runCommand(cmd, []string{"-out", untrained, "-data", missing})
		if err == nil || !strings.Contains(err.Error(), "no checkpoint in "+untrained) {
			t.Errorf("%s -out %s -data %s: got %v, want no checkpoint", name, untrained, missing, err)
		}
	}
	if err := runCommand(cmdSpeed, []string{"-data", missing, untrained}); err == nil || !strings.Contains(err.Error(), "no checkpoint in "+untrained) {
		t.Errorf("speed -data %s %s: got %v, want no checkpoint", missing, untrained, err)
	}
}

// TestRestartDeletesResults: -restart deletes the run's checkpoints and the results of the run
// it discards (metrics, analysis, their plots), and nothing else in the directory.
func TestRestartDeletesResults(t *testing.T) {
	dir := t.TempDir()
	store := runStore(dir)
	keep := []string{"notes.txt", "samples.txt"}
	for _, name := range append(append([]string{filepath.Join("checkpoint", "n00000010", "history.json")}, runResults...), keep...) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := restartRun(store); err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{"checkpoint"}, runResults...) {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("-restart left %s: %v", name, err)
		}
	}
	for _, name := range keep {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("-restart deleted %s: %v", name, err)
		}
	}
	// Nothing to delete: no error.
	if err := restartRun(store); err != nil {
		t.Fatal(err)
	}
}

// TestBadInputsLeaveNothing: settings, flags and data that cannot work give a message that
// says what to do, and nothing is written for them.
func TestBadInputsLeaveNothing(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "run")
	corrupt := filepath.Join(tmp, "corrupt.txt")
	if err := os.WriteFile(corrupt, []byte("not Shakespeare"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  func([]string) error
		args []string
		want string
	}{
		{cmdTrain, []string{"-run", "5", "-data", sharedData, "-out", out, "-set", "smi_total_steps=0"}, "smi_total_steps=0: it must be > 0"},
		{cmdTrain, []string{"-run", "5", "-data", sharedData, "-out", out, "-set", "smi_quantile=2"}, "SMI settings"},
		{cmdTrain, []string{"-run", "5", "-data", sharedData, "-out", out, "-set", "smi_base=lion"}, "this trainer trains with nanoGPT's AdamW"},
		{cmdTrain, []string{"-data", sharedData, "-out", out, "-set", "optimizer=sgd"}, "this trainer trains with nanoGPT's AdamW"},
		{cmdTrain, []string{"-preset", "tiny", "-data", sharedData, "-out", out, "-checkpoint_every", "-1"}, "-checkpoint_every"},
		{cmdTrain, []string{"-data", corrupt, "-out", out}, "block_size=64 is longer than the data allows"},
		{cmdSample, []string{"-out", out, "-data", sharedData, "-temperature", "NaN"}, "-temperature must be a finite number"},
		{cmdSample, []string{"-out", out, "-data", sharedData, "-temperature", "+Inf"}, "-temperature must be a finite number"},
		{cmdSample, []string{"-out", out, "-data", sharedData}, "no checkpoint in"},
	} {
		err := runCommand(tc.cmd, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
		if strings.Contains(err.Error(), "download it anew") {
			t.Errorf("%s: advises a download for a file given with -data: %v", strings.Join(tc.args, " "), err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s left %s behind", strings.Join(tc.args, " "), out)
		}
	}
}

// TestResumeSkipsDamagedCheckpoint: when the newest checkpoint does not read back, the run
// resumes from the one before it, to the same result; when none reads back, the message says
// so and names -restart, which deletes them.
func TestResumeSkipsDamagedCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several runs")
	}
	t.Parallel()
	const set = resumeSet
	every := func(o *trainOptions) { o.CheckpointEvery = 4 }
	whole := uninterruptedRun(t) // checkpointed at another interval: the results do not depend on it
	dir := t.TempDir()
	if _, err := tinyRunWith(t, 5, dir, set, 14, every); !errors.Is(err, errStopped) {
		t.Fatalf("stopping at iteration 14: got %v", err)
	}
	store := runStore(dir)
	all, err := store.list()
	if err != nil || len(all) != keepCheckpoints || all[0].step != 14 || all[1].step != 12 || all[2].step != 10 {
		t.Fatalf("checkpoints after stopping at 14: %+v, %v", all, err)
	}
	damage := func(c savedCheckpoint) {
		bins, _ := filepath.Glob(filepath.Join(c.dir, "*.bin"))
		if len(bins) != 1 {
			t.Fatalf("%s: %v", c.dir, bins)
		}
		info, _ := os.Stat(bins[0])
		if err := os.Truncate(bins[0], info.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	damage(all[0])
	resumed, err := tinyRunWith(t, 5, dir, set, 0, every)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(resumed.IterLoss) != fmt.Sprint(whole.IterLoss) || resumed.FinalValLoss != whole.FinalValLoss {
		t.Fatalf("resumed from iteration 12: losses differ from the uninterrupted run")
	}

	// None reads back: a clear error, nothing deleted; -restart deletes them and starts over.
	all, _ = store.list()
	for _, c := range all {
		damage(c)
	}
	_, err = tinyRunWith(t, 5, dir, set, 0, every)
	if err == nil || !strings.Contains(err.Error(), "reads back") || !strings.Contains(err.Error(), "-restart") {
		t.Fatalf("every checkpoint damaged: %v", err)
	}
	if again, _ := store.list(); len(again) != len(all) {
		t.Fatalf("a failed resume deleted checkpoints: %d of %d left", len(again), len(all))
	}
	restarted, err := tinyRunWith(t, 5, dir, set, 0, func(o *trainOptions) { every(o); o.Restart = true })
	if err != nil || fmt.Sprint(restarted.IterLoss) != fmt.Sprint(whole.IterLoss) {
		t.Fatalf("-restart: %v", err)
	}
}

// TestResumeOtherShapes: a checkpoint that reads back whole but holds a variable of another shape
// than the settings build (its metadata edited, its digests rewritten to match) stops the resume
// with GoMLX's message and what to do.
func TestResumeOtherShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
	const set = "max_iters=4;eval_interval=2;eval_iters=1;n_layer=1"
	dir := t.TempDir()
	if _, err := tinyRun(t, 0, dir, set, 2); !errors.Is(err, errStopped) {
		t.Fatalf("stopping at iteration 2: got %v", err)
	}
	all, err := runStore(dir).list()
	if err != nil || len(all) == 0 {
		t.Fatalf("checkpoints: %v, %v", all, err)
	}
	metas, _ := filepath.Glob(filepath.Join(all[0].dir, "checkpoint-*.json"))
	if len(metas) != 1 {
		t.Fatalf("metadata in %s: %v", all[0].dir, metas)
	}
	raw, err := os.ReadFile(metas[0])
	var meta map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &meta)
	}
	if err != nil {
		t.Fatal(err)
	}
	swapped := false
	for _, v := range meta["Variables"].([]any) {
		if v := v.(map[string]any); strings.HasSuffix(v["ParameterName"].(string), "/wte/weights") {
			dims := v["Dimensions"].([]any)
			dims[0], dims[1] = dims[1], dims[0] // the same bytes, another shape
			swapped = true
		}
	}
	if raw, err = json.Marshal(meta); err == nil && swapped {
		err = os.WriteFile(metas[0], raw, 0o644)
	}
	if err != nil || !swapped {
		t.Fatalf("editing %s: %v (token embedding found: %v)", metas[0], err, swapped)
	}
	if err := writeDigests(all[0].dir); err != nil {
		t.Fatal(err)
	}
	_, err = tinyRun(t, 0, dir, set, 0)
	if err == nil || !strings.Contains(err.Error(), "holds variables of other shapes") || !strings.Contains(err.Error(), "-restart") {
		t.Fatalf("resuming from a checkpoint of other shapes: %v", err)
	}
}

// TestDivergedRun: an SMI run whose loss becomes NaN or infinite stops at that iteration with
// results.Diverged, naming the iteration, the learning rate and its newest checkpoint; it writes no
// metrics, and its checkpoints hold only the iterations before, with finite losses. Resumed, it
// diverges at the same iteration again (XLA CPU repeats a resumed run bit for bit), as the message
// warns.
func TestDivergedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several runs")
	}
	t.Parallel()
	const set = "max_iters=40;eval_interval=20;eval_iters=2;learning_rate=1e4;min_lr=1e3;grad_clip=0;n_layer=1"
	every := func(o *trainOptions) { o.CheckpointEvery = 3 }
	dir := t.TempDir()
	at := regexp.MustCompile(`^training diverged at iteration (\d+) of 40: its training loss is (NaN|[+-]Inf) `)
	divergedAt := func(err error) int {
		t.Helper()
		m := at.FindStringSubmatch(fmt.Sprint(err))
		var d *results.Diverged
		if !errors.As(err, &d) || m == nil || strconv.Itoa(d.Iter) != m[1] {
			t.Fatalf("training with learning_rate 1e4: got %v", err)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	_, err := tinyRunWith(t, 5, dir, set, 0, every)
	first := divergedAt(err)
	if first <= 3 {
		t.Fatalf("diverged at iteration %d, before the first checkpoint: the test needs a later one (%v)", first, err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "metrics.json")); statErr == nil {
		t.Errorf("a diverged run wrote metrics.json")
	}
	store := runStore(dir)
	c, _, hist, skipped, found, readErr := store.newest()
	if readErr != nil || !found || len(skipped) > 0 {
		t.Fatalf("newest checkpoint: found %v, skipped %q: %v", found, skipped, readErr)
	}
	if want := (first - 1) / 3 * 3; c.step != want {
		t.Errorf("newest checkpoint at iteration %d, want %d (the last multiple of 3 before %d)", c.step, want, first)
	}
	if !strings.Contains(err.Error(), store.stepDir(c.step)) {
		t.Errorf("the message does not name the newest checkpoint %s: %v", store.stepDir(c.step), err)
	}
	for i, loss := range hist.IterLoss {
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			t.Errorf("the checkpoint's history holds loss %v at iteration %d", loss, i+1)
		}
	}
	_, err = tinyRunWith(t, 5, dir, set, 0, every)
	if again := divergedAt(err); again != first {
		t.Errorf("resumed from iteration %d, the run diverged at %d, first at %d", c.step, again, first)
	}

	// Evaluated after the iteration before, whose update made the weights diverge (the batch's
	// loss was still finite): the evaluation finds it, and nothing is recorded or saved, where
	// before the NaN went into the history and the save failed on it, as if the disk had.
	evalSet := strings.Replace(set, "eval_interval=20", fmt.Sprintf("eval_interval=%d", first-1), 1)
	_, err = tinyRunWith(t, 5, t.TempDir(), evalSet, 0, func(*trainOptions) {})
	var d *results.Diverged
	if !errors.As(err, &d) || !d.InEvaluation || d.Iter != first-1 ||
		!strings.Contains(err.Error(), fmt.Sprintf("diverged at iteration %d of 40: the evaluation's loss after it is", first-1)) {
		t.Errorf("evaluating after iteration %d: got %v", first-1, err)
	}
}

// TestResultsNotWrittenIsSafe: when a finished run's results cannot be written, the error says
// that training is complete with its checkpoint, metrics.json (which marks a run complete) is not
// written before the plot, and the same command, once the cause is gone, writes both.
func TestResultsNotWrittenIsSafe(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
	const set = "max_iters=8;eval_interval=4;eval_iters=1;n_layer=1"
	dir := t.TempDir()
	blocker := filepath.Join(dir, "loss.png")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil { // the plot cannot be renamed there
		t.Fatal(err)
	}
	_, err := tinyRunWith(t, 0, dir, set, 0, func(*trainOptions) {})
	if err == nil || !strings.Contains(err.Error(), "Training is complete and its checkpoint of iteration 8 is intact") {
		t.Fatalf("plot not writable: %v, want the error to say the run is complete with its checkpoint", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics.json")); err == nil {
		t.Errorf("metrics.json was written although the plot was not")
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	m, err := tinyRunWith(t, 0, dir, set, 0, func(*trainOptions) {})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"metrics.json", "loss.png"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Size() == 0 {
			t.Errorf("after the rerun, %s: %v", name, err)
		}
	}
	if len(m.IterLoss) != 8 {
		t.Errorf("the rerun recorded %d iterations, want 8", len(m.IterLoss))
	}
}
