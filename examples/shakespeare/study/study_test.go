package study

import (
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReproductionUpToDate: the committed report is what the committed study data generates,
// and none of its claims with a number is called reproduced while the paper's value lies
// outside our interval.
func TestReproductionUpToDate(t *testing.T) {
	data := filepath.Join("..", "..", "..", "docs", "reproduction")
	if _, err := os.Stat(filepath.Join(data, "cpu", "study.json")); err != nil {
		t.Skip("no committed study data")
	}
	report := filepath.Join("..", "..", "..", "docs", "REPRODUCTION.md")
	rp, err := loadReproduction([]string{data}, report)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if got := rp.markdown(); got != string(want) {
		t.Error("docs/REPRODUCTION.md is not what docs/reproduction generates: run `make study REPORT_ONLY=1` (or `go run ./examples/shakespeare report -from docs/reproduction`)")
	}
	for _, d := range rp.sections {
		for _, c := range d.claims() {
			cmp := d.compareClaim(c, c.run)
			v, _ := verdict(cmp, c.paperPct, c.m, slices.Contains(d.runs, c.run))
			inside := c.paperPct >= cmp.pctLo && c.paperPct <= cmp.pctHi
			if v == verdictReproduced && !inside {
				t.Errorf("%s, %s: reproduced, but the paper's %+.1f%% lies outside our %.1f to %.1f", d.slug, c.text, c.paperPct, cmp.pctLo, cmp.pctHi)
			}
		}
	}
	// The published files are compact: a few hundred kB for the whole cpu study, not megabytes.
	size := int64(0)
	_ = filepath.WalkDir(data, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".json") {
			info, _ := e.Info()
			size += info.Size()
		}
		return err
	})
	if size > 1<<20 {
		t.Errorf("docs/reproduction holds %d bytes of JSON (docs/ is to stay under 2 MB): publish it compact (shakespeare report -compact DIR)", size)
	}
}

// TestReportRejectsMissingFigures: a metrics file with a figure missing or null is skipped
// with a message naming it and the figure, not read as 0.
func TestReportRejectsMissingFigures(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"empty": `{}`, "null": `{"preset":"tiny","run":0,"seed":1,"config":{},"final_train_loss":1,"final_val_loss":null,"best_val_loss":1,"train_seconds":1,"iter_loss":[1],"evals":[],"final_loss_variance":0}`, "broken": `{"preset":`} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "metrics.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	records, problems, err := readRecordsChecked([]string{dir})
	if err == nil || len(records) != 0 || !strings.Contains(err.Error(), "no usable metrics.json") {
		t.Fatalf("records %d, err %v", len(records), err)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{filepath.Join(dir, "null", "metrics.json") + " lacks final_val_loss", filepath.Join(dir, "empty", "metrics.json") + " lacks preset, run",
		filepath.Join(dir, "broken", "metrics.json") + " is not valid JSON"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}

// TestPublicArgs: the command a study records names no path of the machine it ran on.
func TestPublicArgs(t *testing.T) {
	home := t.TempDir()
	wd := filepath.Join(home, "src", "smi")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Chdir(wd)
	got := strings.Join(publicArgs([]string{"-preset", "cpu", "-runs", "0,5", "-data", "../../../shared/data/tinyshakespeare.txt",
		"-dir=" + filepath.Join(wd, "results", "study"), "-from", filepath.Join(home, "pieces"), "-out", "/elsewhere/x.md", "-quiet"}), " ")
	want := "-preset cpu -runs 0,5 -data .../tinyshakespeare.txt -dir=results/study -from ~/pieces -out .../x.md -quiet"
	if got != want {
		t.Errorf("publicArgs = %q, want %q", got, want)
	}
}

// TestPublishedLossesExact: the published form writes the per-iteration losses as float32
// decimals, and the report reads back the very same values; losses that are not all float32
// values are kept as they were.
func TestPublishedLossesExact(t *testing.T) {
	var losses []float64 // float32 values, as the trainer records them
	for _, l := range []float64{4.157141, 1.7969689667224884, 1e-30, math.MaxFloat32, math.SmallestNonzeroFloat32, 0, 2} {
		losses = append(losses, float64(float32(l)))
	}
	for i := range 500 {
		losses = append(losses, float64(float32(1+float64(i)*0.0137+1e-9*float64(i*i))))
	}
	file := func(losses any) []byte {
		raw, err := json.Marshal(map[string]any{"preset": "tiny", "run": 0, "seed": 1, "config": map[string]any{}, "final_train_loss": 1,
			"final_val_loss": 1, "best_val_loss": 1, "train_seconds": 1, "iter_loss": losses, "evals": []any{}, "final_loss_variance": 0,
			"smi_telemetry": []any{}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		losses []float64
		dtype  bool
	}{"float32": {losses, true}, "float64": {append(slices.Clone(losses), 0.1), false}} {
		raw := file(tc.losses)
		pub, err := publishedForm(raw, droppedFields, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(pub), `"iter_loss_dtype":"float32"`); got != tc.dtype {
			t.Errorf("%s: published with iter_loss_dtype: %v, want %v", name, got, tc.dtype)
		}
		if tc.dtype && len(pub) > len(raw)*2/3 {
			t.Errorf("%s: published form %d bytes, from %d", name, len(pub), len(raw))
		}
		if again, _ := publishedForm(pub, droppedFields, nil); string(again) != string(pub) {
			t.Errorf("%s: publishing the published form again changed it", name)
		}
		path := filepath.Join(dir, name, "metrics.json")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pub, 0o644); err != nil {
			t.Fatal(err)
		}
		records, problems, err := readRecordsChecked([]string{path})
		if err != nil || len(problems) > 0 {
			t.Fatalf("%s: %v %v", name, err, problems)
		}
		if got := records[0].metrics.IterLoss; !slices.Equal(got, tc.losses) {
			t.Errorf("%s: read back %v, want %v", name, got[:8], tc.losses[:8])
		}
	}
}

// TestGitRevisionOfThisCode: the revision recorded is this code's: in this checkout a revision,
// and run from another git repository not that repository's. (A test binary carries no stamped
// revision, so both go through the checkout.)
func TestGitRevisionOfThisCode(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git here")
	}
	here := gitRevision()
	if here == "" || strings.HasPrefix(here, "unknown") {
		t.Skipf("not in a git checkout of this module (%q)", here)
	}
	other := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = other
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	t.Chdir(other)
	if got := gitRevision(); !strings.HasPrefix(got, "unknown") {
		t.Errorf("run from another repository: %q, want unknown (here: %q)", got, here)
	}
}
