package study

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// TestReportRefusesEmptyFolder: an empty entry in -from's list is refused by name, at once.
func TestReportRefusesEmptyFolder(t *testing.T) {
	for _, list := range []string{",", "a,,b", "a,"} {
		err := ReportCommand([]string{"-from", list, "-reproduction_out", filepath.Join(t.TempDir(), "R.md")})
		if !cli.IsUsage(err) || !strings.Contains(err.Error(), "empty entry") {
			t.Errorf("-from %q: %v, want a usage error about an empty entry", list, err)
		}
	}
}

// refusingTrainer fails the test when the study asks it for anything.
type refusingTrainer struct{ t *testing.T }

func (r refusingTrainer) Settings(*data.Corpus, Spec) (gpt.Config, map[string]any, error) {
	r.t.Fatal("the study got to the runs' settings")
	return gpt.Config{}, nil, nil
}
func (r refusingTrainer) Train(backends.Backend, *data.Corpus, Spec) (*results.Metrics, error) {
	r.t.Fatal("the study trained")
	return nil, nil
}
func (r refusingTrainer) Analyze(backends.Backend, *data.Corpus, string, int) error {
	r.t.Fatal("the study analysed")
	return nil
}
func (r refusingTrainer) InferenceSpeed(backends.Backend, *data.Corpus, []string, int, int) ([][]float64, error) {
	r.t.Fatal("the study measured")
	return nil, nil
}
func (r refusingTrainer) StepTimes(backends.Backend, *data.Corpus, []Spec, int, int) ([][]float64, error) {
	r.t.Fatal("the study measured")
	return nil, nil
}

// TestStudyChecksFlagsFirst: the measurements' sizes, -from's list and -report's path are
// checked before anything else (before the data is even read: -data names no file here), by
// the standalone commands' rules, and the study folder is not made.
func TestStudyChecksFlagsFirst(t *testing.T) {
	dir := t.TempDir()
	base := []string{"-preset", "tiny", "-runs", "0,1", "-seeds", "1337", "-dir", filepath.Join(dir, "study"),
		"-publish", filepath.Join(dir, "pub"), "-report", filepath.Join(dir, "R.md"), "-data", filepath.Join(dir, "no-data.txt")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-speed_tokens", "-1"}, "-speed_tokens must be at least 1"},
		{[]string{"-speed_tokens", "0"}, "-speed_tokens must be at least 1"},
		{[]string{"-speed_reps", "1"}, "-speed_reps must be at least 2"},
		{[]string{"-speed_reps", "0"}, "-speed_reps must be at least 2"},
		{[]string{"-step_steps", "-1"}, "-step_steps must be at least 1"},
		{[]string{"-step_rounds", "0"}, "-step_rounds must be at least 2"},
		{[]string{"-step_rounds", "1"}, "-step_rounds must be at least 2"},
		{[]string{"-analyze_batches", "0"}, "-analyze_batches must be at least 1"},
		{[]string{"-from", ","}, "empty entry"},
		{[]string{"-report", "/proc/smi-no-such/R.md"}, "-report /proc/smi-no-such/R.md"},
		{[]string{"r1", "-speed_reps", "3"}, "flags go before"},
	} {
		err := Command(append(append([]string{}, base...), c.args...), refusingTrainer{t})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%q: the study made %v before refusing", c.args, entries)
		}
	}
	// The sizes the standalone commands take pass.
	for _, err := range []error{CheckSpeedSize("-t", 1, "-r", 2), checkStepSize("-s", 1, "-r", 2), CheckAnalyzeBatches("-b", 1)} {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestStudyRefusesAnotherRecipe: a study folder holding runs (or invocations) of another recipe
// is refused, naming the settings that differ; the same recipe passes.
func TestStudyRefusesAnotherRecipe(t *testing.T) {
	m, _ := fakeRun("tiny", fakeCPU, 0, 1, 0)
	other := m.Config
	other.MaxIters++
	o := &Options{Dir: t.TempDir()}
	if err := o.checkRecipe(m.Config); err != nil {
		t.Fatalf("an empty folder: %v", err)
	}
	run := filepath.Join(o.Dir, "runs", "tiny-run0-seed1")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(filepath.Join(run, "metrics.json"), m); err != nil {
		t.Fatal(err)
	}
	if err := o.checkRecipe(m.Config); err != nil {
		t.Fatalf("the same recipe: %v", err)
	}
	err := o.checkRecipe(other)
	have, want := fmt.Sprintf("max_iters=%d", m.Config.MaxIters), fmt.Sprintf("max_iters=%d", other.MaxIters)
	if !cli.IsUsage(err) || !strings.Contains(err.Error(), have) || !strings.Contains(err.Error(), want) {
		t.Errorf("another recipe: %v, want a usage error naming %s and %s", err, have, want)
	}
	if err := os.RemoveAll(filepath.Join(o.Dir, "runs")); err != nil {
		t.Fatal(err)
	}
	writeStudyFile(t, o.Dir, studyFile{Preset: "tiny", Invocations: []invocation{{Command: "made up", Config: &m.Config}}})
	if err := o.checkRecipe(other); !cli.IsUsage(err) {
		t.Errorf("another recipe in study.json: %v, want a usage error", err)
	}

	// A publish folder is checked the same way (a study with -set and no -publish published over
	// the committed study of its preset), and may not be the study folder itself.
	p := &Options{Dir: t.TempDir(), Publish: o.Dir}
	if err := p.checkPublish(&m.Config); err != nil {
		t.Errorf("publishing the same recipe: %v", err)
	}
	if err := p.checkPublish(&other); !cli.IsUsage(err) || !strings.Contains(err.Error(), "another -publish") {
		t.Errorf("publishing another recipe: %v, want a usage error naming -publish", err)
	}
	if err := p.checkPublish(nil); err != nil {
		t.Errorf("runs of several recipes (nothing to compare): %v", err)
	}
	p.Publish = p.Dir + string(filepath.Separator) + "."
	if err := p.checkPublish(&m.Config); !cli.IsUsage(err) || !strings.Contains(err.Error(), "is the study folder") {
		t.Errorf("-publish the study folder: %v, want a usage error", err)
	}
}

// TestReportTitlesRecipes: two sections of one preset and backend kind, of two recipes, get
// distinct titles (and anchors, and claims-table names) that name the recipes' difference; a
// section alone keeps the plain title.
func TestReportTitlesRecipes(t *testing.T) {
	root := t.TempDir()
	fakeStudy(t, filepath.Join(root, "a"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	fakeStudy(t, filepath.Join(root, "b"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	setRecipe(t, filepath.Join(root, "b"), "LearningRate", 3e-4) // b's runs: another learning rate
	rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.sections) != 2 {
		t.Fatalf("%d sections, want 2", len(rp.sections))
	}
	a, b := rp.sections[0], rp.sections[1]
	if a.title() == b.title() || anchor(a.title()) == anchor(b.title()) || a.scale() == b.scale() {
		t.Errorf("two sections named alike: %q and %q; %q and %q", a.title(), b.title(), a.scale(), b.scale())
	}
	for _, d := range rp.sections {
		if !strings.Contains(d.title(), "learning_rate=") || !strings.Contains(d.scale(), "learning_rate=") {
			t.Errorf("%q (%q) does not name the learning rate", d.title(), d.scale())
		}
	}
	md := rp.markdown()
	for _, d := range rp.sections {
		if strings.Count(md, "## "+d.title()+"\n") != 1 {
			t.Errorf("the report has not one heading %q", d.title())
		}
	}
	alone, err := loadReproduction([]string{filepath.Join(root, "a")}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if got := alone.sections[0].title(); got != "The `cpu` preset on CPU (XLA's CPU plugin)" {
		t.Errorf("a section alone is titled %q", got)
	}
}

// TestReportNamesOffPresetRecipes: runs of a recipe changed from their preset's (a paper run
// shortened by -set) are titled and scaled with the settings changed, even in a section alone,
// and do not count as the paper preset's experiment: the report still says it is to be measured.
func TestReportNamesOffPresetRecipes(t *testing.T) {
	root := t.TempDir()
	fakeStudy(t, filepath.Join(root, "a"), "paper", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	setRecipe(t, filepath.Join(root, "a"), "MaxIters", 4)
	rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.sections) != 1 {
		t.Fatalf("%d sections, want 1", len(rp.sections))
	}
	d := rp.sections[0]
	if want := "The `paper` preset on CPU (XLA's CPU plugin), max_iters=4"; d.title() != want {
		t.Errorf("title %q, want %q", d.title(), want)
	}
	if want := "`paper` (12k params, CPU, max_iters=4)"; d.scale() != want {
		t.Errorf("scale %q, want %q", d.scale(), want)
	}
	md := rp.markdown()
	for _, want := range []string{"| every claim | `paper` (10.7M params, GPU) | | | | | **still to be measured on a GPU** |",
		"- [The `paper` preset](#the-paper-preset): still to be measured on a GPU."} {
		if !strings.Contains(md, want) {
			t.Errorf("the report of a shortened paper study lacks %q", want)
		}
	}
}

// setRecipe sets one field of the recipe (gpt.Config) in every published metrics file of the
// study folder dir.
func setRecipe(t *testing.T, dir, field string, value any) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "runs", "*", "metrics.json"))
	if len(paths) == 0 {
		t.Fatalf("no metrics in %s", dir)
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		cfg := v["config"].(map[string]any)
		if _, ok := cfg[field]; !ok {
			t.Fatalf("%s: the recipe has no field %s", path, field)
		}
		cfg[field] = value
		if err := results.WriteJSON(path, v); err != nil {
			t.Fatal(err)
		}
	}
}
