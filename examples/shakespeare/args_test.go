package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// TestHelpListsCommands: -help and help list every command with its line (then give train's
// flags, train being the default command); help COMMAND gives that command's flags.
func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"-help"}, {"-h"}, {"--help"}, {"help"}} {
		var stderr bytes.Buffer
		if code := run(args, &stderr); code != 0 {
			t.Errorf("%q: exit status %d, want 0", args, code)
		}
		for _, c := range commands {
			if !strings.Contains(stderr.String(), "  "+padRight(c.name, 8)+" "+c.summary+"\n") {
				t.Errorf("%q does not list %s:\n%s", args, c.name, stderr.String())
			}
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"help", "sample"}, &stderr); code != 0 || stderr.Len() != 0 {
		t.Errorf("help sample: exit status %d, %q before sample's flags", code, stderr.String())
	}
	for _, args := range [][]string{{"help", "bogus"}, {"help", "a", "b"}, {"bogus"}} {
		var stderr bytes.Buffer
		if code := run(args, &stderr); code != 2 || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: exit status %d, %q; want 2 and one line", args, code, stderr.String())
		}
	}
}

func padRight(s string, n int) string { return s + strings.Repeat(" ", max(n-len(s), 0)) }

// TestCommandsRefuseStrayArguments: train, sample, eval, analyze and data take no positional arguments,
// and speed takes run directories with its flags before them: a stray argument, or a flag after
// a positional one (which Go's flag package would not read), is a usage error (status 2, one
// line) before any work, with the hint that flags go first when one looks like a flag.
func TestCommandsRefuseStrayArguments(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-data.txt") // reading it would fail otherwise: the check comes first
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "-data", missing, "r1", "-run", "3"}, "flags go before any other argument"},
		{[]string{"-data", missing, "r1"}, `unexpected arguments ["r1"]: train takes flags only`},
		{[]string{"train", "-no_such_flag"}, "flag provided but not defined: -no_such_flag"},
		{[]string{"sample", "-data", missing, "r1", "-tokens", "3"}, "flags go before any other argument"},
		{[]string{"sample", "-data", missing, "r1"}, `unexpected arguments ["r1"]: sample takes flags only`},
		{[]string{"eval", "-data", missing, "r1", "-batches", "3"}, "flags go before any other argument"},
		{[]string{"analyze", "-data", missing, "r1"}, `unexpected arguments ["r1"]: analyze takes flags only`},
		{[]string{"data", "-data", missing, "extra"}, `unexpected arguments ["extra"]: data takes flags only`},
		{[]string{"speed", "-data", missing, "-out", filepath.Join(dir, "x.md"), "base", "r1", "-reps", "2", "-tokens", "5"},
			"-reps comes after the run directories, where flags are not read: flags go before the run directories"},
		{[]string{"report", filepath.Join(dir, "runs"), "-out", filepath.Join(dir, "rep")}, "flags go before the run directories"},
		{[]string{"speed", "-data", missing, "-reps", "1", "base"}, "-reps must be at least 2"},
		{[]string{"speed", "-data", missing, "-tokens", "0", "base"}, "-tokens must be at least 1"},
		{[]string{"analyze", "-data", missing, "-batches", "0"}, "-batches must be at least 1"},
		{[]string{"sample", "-data", missing, "-device", "abacus"}, `-device: unknown device "abacus"`},
		{[]string{"eval", "-data", missing, "-device", "abacus"}, `-device: unknown device "abacus"`},
		{[]string{"analyze", "-data", missing, "-device", "abacus"}, `-device: unknown device "abacus"`},
		{[]string{"speed", "-data", missing, "-device", "abacus", "base"}, `-device: unknown device "abacus"`},
	} {
		var stderr bytes.Buffer
		code := run(c.args, &stderr)
		out := stderr.String()
		if code != 2 || !strings.HasPrefix(out, "error: ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, c.want) {
			t.Errorf("%q: exit status %d, %q; want 2 and an error line with %q", c.args, code, stderr.String(), c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused command left %v", entries)
	}
}

// TestSpeedChecksOutFirst: speed refuses an -out it cannot write before it reads any run (the
// run directories here do not exist, so reading them would fail otherwise).
func TestSpeedChecksOutFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{"/proc/smi-no-such/speed.md", filepath.Join(file, "speed.md"), dir} {
		var stderr bytes.Buffer
		code := run([]string{"speed", "-out", out, filepath.Join(dir, "base"), filepath.Join(dir, "r1")}, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "-out "+out) {
			t.Errorf("-out %s: exit status %d, %q; want 2 and an error naming -out", out, code, stderr.String())
		}
	}
}

// TestOutChecksFirst: analyze, train and study refuse an output they cannot write (-out, -dir)
// and the study a bad -set as a bad command line (status 2), before they read the run or the data
// (neither exists here, so reading would fail otherwise).
func TestOutChecksFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-data.txt")
	for _, out := range []string{"/proc/smi-no-such/run", filepath.Join(file, "run")} {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"analyze", "-data", missing, "-out", out}, "-out " + filepath.Join(out, "analysis.json") + ": cannot write it"},
			{[]string{"train", "-preset", "tiny", "-data", missing, "-out", out}, "-out " + out + ": cannot write files in it"},
			{[]string{"study", "-preset", "tiny", "-runs", "0", "-seeds", "1", "-data", missing, "-dir", out,
				"-publish", filepath.Join(dir, "pub"), "-report", filepath.Join(dir, "R.md")}, "-dir " + out + ": cannot write files in it"},
			{[]string{"study", "-preset", "tiny", "-runs", "0", "-seeds", "1", "-data", missing, "-dir", filepath.Join(dir, "study"),
				"-set", "optimizer=smi;smi_quantile=2", "-publish", filepath.Join(dir, "pub"), "-report", filepath.Join(dir, "R.md")},
				"run 0, seed 1: "},
		} {
			var stderr bytes.Buffer
			code := run(c.args, &stderr)
			if msg := stderr.String(); code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.want) {
				t.Errorf("%q: exit status %d, %q; want 2 and an error line with %q", c.args, code, msg, c.want)
			}
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("the refused commands wrote in %s: %v (%d entries, want only the file)", dir, err, len(entries))
	}
}

// TestStudyRefusesAnotherRecipeFirst: study -set with another recipe than the runs its folder
// holds is refused before anything trains.
func TestStudyRefusesAnotherRecipeFirst(t *testing.T) {
	if _, err := os.Stat(sharedData); err != nil {
		t.Skip("no tiny Shakespeare at", sharedData)
	}
	dir := t.TempDir()
	cfg, err := gpt.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxIters = 2
	run := filepath.Join(dir, "study", "runs", "tiny-run1-seed1337")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(filepath.Join(run, "metrics.json"), results.Metrics{Preset: "tiny", Run: 1, Seed: 1337, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	err = cmdStudy([]string{"-preset", "tiny", "-runs", "0", "-seeds", "1337", "-set", "max_iters=3", "-quiet", "-data", sharedData,
		"-dir", filepath.Join(dir, "study"), "-publish", filepath.Join(dir, "pub"), "-report", filepath.Join(dir, "R.md")})
	if !cli.IsUsage(err) || !strings.Contains(err.Error(), "another recipe (max_iters=2) than this study's (max_iters=3)") {
		t.Errorf("%v, want a usage error naming max_iters 2 and 3", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "study", "runs", "tiny-run0-seed1337")); err == nil {
		t.Error("the study trained before refusing")
	}
}

// TestTrainBadSettingsAreUsageErrors: a bad -preset, -run, -thresholds, -devices, -device or
// -set is a usage error (status 2), for train and for the study, and nothing is written.
func TestTrainBadSettingsAreUsageErrors(t *testing.T) {
	if _, err := os.Stat(sharedData); err != nil {
		t.Skip("no tiny Shakespeare at", sharedData)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-preset", "huge"}, "huge"},
		{[]string{"-run", "9"}, "9"},
		{[]string{"-thresholds", "x"}, "x"},
		{[]string{"-devices", "-1"}, "-devices must be >= 0"},
		{[]string{"-checkpoint_every", "-1"}, "-checkpoint_every must be >= 0"},
		{[]string{"-device", "abacus"}, "abacus"},
		{[]string{"-set", "max_iters=20,eval_iters=200"}, "max_iters=20,eval_iters=200"},
		{[]string{"-set", "max_iters=0"}, "max_iters"},
		{[]string{"-set", "seed=5"}, "choose it with the flag -seed"},
		{[]string{"-set", "smi_quantile=0.5"}, "no effect with SMI off"},
		{[]string{"-set", "optimizer=smi;smi_quantile=2"}, "Quantile must be in [0, 1), got 2"},
		{[]string{"-set", "optimizer=foo"}, "optimizer=foo"},
		{[]string{"-run", "5", "-set", "smi_base=lion"}, "smi_base=lion"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"train", "-preset", "tiny", "-data", sharedData, "-out", out}, c.args...)
		code := run(args, &stderr)
		msg := stderr.String()
		if code != 2 || !strings.HasPrefix(msg, "error: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%q: exit status %d, %q; want 2 and an error with %q", c.args, code, msg, c.want)
		}
	}
	for set, want := range map[string]string{"max_iters=0": "max_iters", "optimizer=smi;smi_quantile=2": "Quantile must be in [0, 1)"} {
		var stderr bytes.Buffer
		code := run([]string{"study", "-preset", "tiny", "-runs", "0", "-seeds", "1", "-set", set, "-data", sharedData,
			"-dir", out, "-publish", filepath.Join(dir, "pub"), "-report", filepath.Join(dir, "R.md")}, &stderr)
		if msg := stderr.String(); code != 2 || !strings.Contains(msg, "run 0, seed 1: ") || !strings.Contains(msg, want) {
			t.Errorf("study -set %s: exit status %d, %q; want 2 and an error naming the run and %q", set, code, msg, want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused command wrote its -out (or the study its -dir)")
	}
}
