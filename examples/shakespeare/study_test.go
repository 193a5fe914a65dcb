package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// tinyStudy is a study of the tiny preset, short runs and small measurements, in dir.
func tinyStudy(dir string, runs []int, seeds []int64) *study.Options {
	return &study.Options{Preset: "tiny", Dir: filepath.Join(dir, "study"), Publish: filepath.Join(dir, "published"),
		Report: filepath.Join(dir, "REPRODUCTION.md"), Data: sharedData, Set: "max_iters=30;eval_interval=15;eval_iters=2",
		Runs: runs, Seeds: seeds, Quiet: true, SpeedTokens: 3, SpeedReps: 2, AnalyzeBatches: 1, StepRounds: 2, StepSteps: 2}
}

// TestStudy runs a 2 x 2 study on the tiny preset, interrupted in its third run; reruns it
// (the interrupted run resumes, finished ones are skipped); extends it with a seed; checks the
// runs against a run trained on its own, and the report.
func TestStudy(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several runs")
	}
	t.Parallel()
	dir := t.TempDir()
	o := tinyStudy(dir, []int{0, 5}, []int64{1, 2})
	// The third run (run 0, seed 2) stops at iteration 12.
	stopping := studyTrainer{stop: func(s study.Spec) int {
		if s.Run == 0 && s.Seed == 2 {
			return 12
		}
		return 0
	}}
	if err := study.Run(o, stopping, "test"); !errors.Is(err, errStopped) {
		t.Fatalf("interrupted study: %v", err)
	}
	stat := func(name string) os.FileInfo {
		info, err := os.Stat(filepath.Join(o.Dir, "runs", name, "metrics.json"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return info
	}
	first := stat("tiny-run0-seed1")
	if _, err := os.Stat(filepath.Join(o.Publish, "runs", "tiny-run5-seed1", "metrics.json")); err != nil {
		t.Fatalf("a finished run was not published as it finished: %v", err)
	}
	if err := study.Run(o, studyTrainer{}, "test"); err != nil {
		t.Fatal(err)
	}
	if !stat("tiny-run0-seed1").ModTime().Equal(first.ModTime()) {
		t.Error("a finished run was trained again")
	}
	// Extended by a seed, named alone: only its runs are trained, and the measurements (one
	// process each) cover every run of the study, not only the new ones.
	before := stat("tiny-run5-seed2")
	o = tinyStudy(dir, []int{0, 5}, []int64{3})
	if err := study.Run(o, studyTrainer{}, "test"); err != nil {
		t.Fatal(err)
	}
	if !stat("tiny-run5-seed2").ModTime().Equal(before.ModTime()) {
		t.Error("extending the study retrained an existing run")
	}
	var speeds struct {
		Rates map[string][]float64 `json:"tokens_per_sec"`
	}
	raw, _ := os.ReadFile(filepath.Join(o.Publish, "speed.json"))
	if err := json.Unmarshal(raw, &speeds); err != nil || len(speeds.Rates) != 6 {
		t.Errorf("speed.json after the extension measures %d models (%v), want the study's 6", len(speeds.Rates), err)
	}
	var sf struct {
		Seeds       []int64           `json:"seeds"`
		Invocations []json.RawMessage `json:"invocations"`
	}
	raw, _ = os.ReadFile(filepath.Join(o.Publish, "study.json"))
	if err := json.Unmarshal(raw, &sf); err != nil || len(sf.Invocations) != 3 || len(sf.Seeds) != 3 {
		t.Fatalf("study.json: %v, %+v", err, sf)
	}

	// The interrupted run equals the same run trained on its own.
	alone := t.TempDir()
	corpus, b := corpusAndBackend(t)
	want, err := studyTrainer{}.Train(b, corpus, study.Spec{Preset: o.Preset, Run: 0, Seed: 2, Data: o.Data, Set: o.Set, Out: alone, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	got := readMetrics(t, filepath.Join(o.Dir, "runs", "tiny-run0-seed2"))
	if fmt.Sprint(got.IterLoss) != fmt.Sprint(want.IterLoss) || got.FinalValLoss != want.FinalValLoss {
		t.Fatal("the study's interrupted run differs from the same run trained without interruption")
	}
	// Each invocation records the runs' recipe, by which the report places a folder without runs.
	for i, inv := range sf.Invocations {
		var rec struct {
			Config *gpt.Config `json:"config"`
		}
		if err := json.Unmarshal(inv, &rec); err != nil || rec.Config == nil || !reflect.DeepEqual(*rec.Config, got.Config) {
			t.Errorf("invocation %d of study.json records the recipe %+v (%v), want the runs' %+v", i, rec.Config, err, got.Config)
		}
	}

	// The published run files are compact, without the SMI telemetry, with their provenance.
	raw, err = os.ReadFile(filepath.Join(o.Publish, "runs", "tiny-run5-seed1", "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Telemetry  []results.SMIPoint `json:"smi_telemetry"`
		Provenance *struct {
			Revision string `json:"revision"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal(raw, &pub); err != nil || pub.Telemetry != nil || pub.Provenance == nil || pub.Provenance.Revision == "" ||
		strings.Count(string(raw), "\n") != 1 {
		t.Errorf("published metrics: %v; telemetry %d points, provenance %+v, %d lines", err, len(pub.Telemetry), pub.Provenance, strings.Count(string(raw), "\n"))
	}
	if full, _ := os.ReadFile(filepath.Join(o.Dir, "runs", "tiny-run5-seed1", "metrics.json")); !strings.Contains(string(full), "smi_telemetry") {
		t.Error("the study folder's own metrics lost the SMI telemetry")
	}

	// The report has every claim row, and the paired tests ran on 3 seeds.
	md, err := os.ReadFile(o.Report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"identical across the configurations of each seed (6 runs)", "| **5** | 3 |", "Run 4 is not part of this study",
		"still to be measured on a GPU", "| tiny | runs 0, 5 x seeds ", "2 interleaved rounds of 2 steps in a balanced order (a Williams design"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, p := range []string{"loss_train.png", "loss_val.png", "claims.png"} {
		if _, err := os.Stat(filepath.Join(dir, "reproduction", "tiny", p)); err != nil {
			t.Errorf("plot: %v", err)
		}
	}

	// A malformed run file and a missing one: named, and the other runs still count.
	bad := filepath.Join(o.Publish, "runs", "tiny-run5-seed3", "metrics.json")
	if err := os.WriteFile(bad, []byte(`{"preset": "tiny", "run": 5, "seed": 3, "final_val_loss": null}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(o.Publish, "runs", "tiny-run0-seed3")); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "again.md")
	if err := runCommand(study.ReportCommand, []string{"-reproduction", o.Publish, "-reproduction_out", report}); err != nil {
		t.Fatal(err)
	}
	md, _ = os.ReadFile(report)
	for _, want := range []string{bad + " lacks config, final_train_loss, final_val_loss", "run 0, seed 3 (published): no usable metrics.json", "| **5** | 2 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report from damaged data lacks %q", want)
		}
	}
}

// divergingTrainer trains as the study does, except that the runs diverge selects train with a
// learning rate that makes their loss NaN within a few iterations.
type divergingTrainer struct {
	studyTrainer
	diverge func(s study.Spec) bool
}

func (t divergingTrainer) Train(b backends.Backend, corpus *data.Corpus, s study.Spec) (*results.Metrics, error) {
	if t.diverge(s) {
		s.Set += ";learning_rate=1e4;min_lr=1e3;grad_clip=0"
	}
	return t.studyTrainer.Train(b, corpus, s)
}

// TestStudyRecordsDivergence: a run of a study that diverges is recorded in study.json (published),
// the other runs are trained, analysed, measured and reported, the report names the diverged run,
// and the study ends with an error that names it. Run again, the run diverges again and its record
// is replaced; once it finishes, the record goes.
func TestStudyRecordsDivergence(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several runs")
	}
	t.Parallel()
	dir := t.TempDir()
	// One layer: divergence, not the analysis across layers (TestStudy's), is what this tests.
	o := tinyStudy(dir, []int{0, 5}, []int64{1, 2})
	o.Set += ";n_layer=1"
	diverging := divergingTrainer{diverge: func(s study.Spec) bool { return s.Run == 5 && s.Seed == 2 }}
	readDiverged := func() []map[string]any {
		t.Helper()
		var sf struct {
			Diverged []map[string]any `json:"diverged"`
		}
		raw, err := os.ReadFile(filepath.Join(o.Publish, "study.json"))
		if err != nil || json.Unmarshal(raw, &sf) != nil {
			t.Fatalf("published study.json: %v", err)
		}
		return sf.Diverged
	}
	var firstIter any
	for attempt := 1; attempt <= 2; attempt++ {
		err := study.Run(o, diverging, "test")
		if err == nil || !strings.Contains(err.Error(), "1 run that diverged") || !strings.Contains(err.Error(), "run 5, seed 2 diverged at iteration") {
			t.Fatalf("attempt %d: the study with a diverging run ended with %v", attempt, err)
		}
		div := readDiverged()
		if len(div) != 1 || div[0]["run"] != 5.0 || div[0]["seed"] != 2.0 || div[0]["max_iters"] != 30.0 ||
			(div[0]["loss"] != "NaN" && div[0]["loss"] != "+Inf" && div[0]["loss"] != "-Inf") {
			t.Fatalf("attempt %d: diverged runs in study.json: %v", attempt, div)
		}
		if attempt == 1 {
			firstIter = div[0]["iter"]
		} else if div[0]["iter"] != firstIter {
			t.Errorf("diverged at iteration %v, then at %v", firstIter, div[0]["iter"])
		}
	}
	for _, name := range []string{"tiny-run0-seed1", "tiny-run5-seed1", "tiny-run0-seed2"} {
		for _, file := range []string{"metrics.json", "analysis.json"} {
			if _, err := os.Stat(filepath.Join(o.Publish, "runs", name, file)); err != nil {
				t.Errorf("the runs that did not diverge are published: %v", err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(o.Publish, "runs", "tiny-run5-seed2")); err == nil {
		t.Error("the diverged run was published")
	}
	var speed struct {
		Rates map[string][]float64 `json:"tokens_per_sec"`
	}
	if raw, err := os.ReadFile(filepath.Join(o.Publish, "speed.json")); err != nil || json.Unmarshal(raw, &speed) != nil || len(speed.Rates) != 3 {
		t.Errorf("speed.json: %v, %d models measured, want the 3 finished", err, len(speed.Rates))
	}
	report, err := os.ReadFile(o.Report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "**Diverged, so without results:** run 5, seed 2 diverged at iteration") ||
		!strings.Contains(string(report), "run 5, seed 2 diverged at iteration") {
		t.Errorf("the report does not name the diverged run:\n%s", report)
	}

	// A folder whose every run diverged: no report, and the error says why.
	all := tinyStudy(t.TempDir(), []int{5}, []int64{2})
	all.Set = o.Set
	err = study.Run(all, diverging, "test")
	if err == nil || !strings.Contains(err.Error(), "no report was written: no usable run in") {
		t.Errorf("a study whose only run diverged ended with %v", err)
	}
	err = study.ReportCommand([]string{"-from", all.Publish, "-reproduction_out", all.Report})
	if err == nil || !strings.Contains(err.Error(), "holds no usable run (1 diverged, below)") ||
		!strings.Contains(err.Error(), "run 5, seed 2 diverged at iteration") {
		t.Errorf("the report of a study whose only run diverged: %v", err)
	}

	// Trained again with settings that do not diverge (in a fresh directory: the old one's
	// checkpoints have other settings), the run finishes and its record goes.
	if err := os.RemoveAll(filepath.Join(o.Dir, "runs", "tiny-run5-seed2")); err != nil {
		t.Fatal(err)
	}
	if err := study.Run(o, studyTrainer{}, "test"); err != nil {
		t.Fatal(err)
	}
	if div := readDiverged(); len(div) != 0 {
		t.Errorf("the run finished, yet study.json records it as diverged: %v", div)
	}
	if report, _ := os.ReadFile(o.Report); strings.Contains(string(report), "diverged at iteration") {
		t.Error("the report still names a diverged run")
	}
}

// TestStudyNeedsFinalCheckpoint: the study analyses and times a run's final model only: a
// finished run whose last checkpoint does not read back (or is gone) is refused with what to do,
// where the analysis took the newest older checkpoint that read back as the final model's.
func TestStudyNeedsFinalCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
	dir := t.TempDir()
	if _, err := tinyRunWith(t, 0, dir, "max_iters=8;eval_interval=4;eval_iters=1;n_layer=1", 0, func(*trainOptions) {}); err != nil {
		t.Fatal(err)
	}
	if err := checkFinalCheckpoint(dir); err != nil {
		t.Fatalf("an intact run: %v", err)
	}
	flipBit(t, runStore(dir).stepDir(8))
	corpus, b := corpusAndBackend(t)
	err := studyTrainer{}.Analyze(b, corpus, dir, 1)
	if err == nil || !strings.Contains(err.Error(), "the final checkpoint of "+dir+" (iteration 8) does not read back") {
		t.Errorf("analysing with a damaged final checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "analysis.json")); err == nil {
		t.Error("an analysis was written from an older checkpoint")
	}
	if _, err := (studyTrainer{}).InferenceSpeed(b, corpus, []string{dir}, 2, 1); err == nil {
		t.Error("timing a run whose final checkpoint does not read back succeeded")
	}
	if err := os.RemoveAll(runStore(dir).stepDir(8)); err != nil {
		t.Fatal(err)
	}
	if err := checkFinalCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "no checkpoint of its last iteration, 8") {
		t.Errorf("no final checkpoint: %v", err)
	}
}

// TestStudyKeepsProvenance: a run whose publication failed after it trained is published with
// its provenance (the invocation that trained it) once the cause is gone: the study records a
// run as trained before it trains, where the record was saved only after the publication.
func TestStudyKeepsProvenance(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
	dir := t.TempDir()
	o := tinyStudy(dir, []int{0}, []int64{1})
	o.Set, o.NoSpeed = "max_iters=8;eval_interval=4;eval_iters=1;n_layer=1", true
	blocker := filepath.Join(o.Publish, "runs", "tiny-run0-seed1")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o644); err != nil { // a file where the run's folder goes
		t.Fatal(err)
	}
	if err := study.Run(o, studyTrainer{}, "test"); err == nil {
		t.Fatal("publishing into a file succeeded")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := study.Run(o, studyTrainer{}, "test again"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(blocker, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Provenance *struct {
			Command string `json:"command"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal(raw, &pub); err != nil || pub.Provenance == nil || pub.Provenance.Command != "test" {
		t.Errorf("published metrics' provenance: %+v (%v), want the invocation that trained it, \"test\"", pub.Provenance, err)
	}
}

// TestStudyPiecesPublishTheirOwn: two pieces of one study folder, each published in a folder of
// its own (as make study RUNS=... SEEDS=... does), each publish a study.json of their own runs
// and invocation, so that a report merging them counts each invocation once.
func TestStudyPiecesPublishTheirOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two runs")
	}
	t.Parallel()
	dir := t.TempDir()
	for _, run := range []int{0, 5} {
		o := tinyStudy(dir, []int{run}, []int64{1})
		o.Set, o.NoSpeed = "max_iters=8;eval_interval=4;eval_iters=1;n_layer=1", true
		o.Publish = filepath.Join(dir, fmt.Sprintf("pub%d", run))
		if err := study.Run(o, studyTrainer{}, fmt.Sprintf("piece %d", run)); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range []int{0, 5} {
		var sf struct {
			Runs        []int `json:"runs"`
			Invocations []struct {
				Command string `json:"command"`
			} `json:"invocations"`
		}
		raw, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("pub%d", run), "study.json"))
		if err := json.Unmarshal(raw, &sf); err != nil || !reflect.DeepEqual(sf.Runs, []int{run}) || len(sf.Invocations) != 1 ||
			sf.Invocations[0].Command != fmt.Sprintf("piece %d", run) {
			t.Errorf("piece %d's published study.json: runs %v, invocations %+v (%v); want its own run and invocation", run, sf.Runs, sf.Invocations, err)
		}
	}
	// The study folder's own record holds both.
	var whole struct {
		Runs []int `json:"runs"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "study", "study.json"))
	if err := json.Unmarshal(raw, &whole); err != nil || len(whole.Runs) != 2 {
		t.Errorf("the study folder's study.json: runs %v (%v), want both", whole.Runs, err)
	}
}

// corpusAndBackend opens the tests' text and the backend.
func corpusAndBackend(t *testing.T) (*data.Corpus, backends.Backend) {
	t.Helper()
	corpus, err := data.Open(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return corpus, b
}
