package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// writeText writes a UTF-8 text of about n characters in several scripts, not tiny Shakespeare,
// and returns its path.
func writeText(t *testing.T, n int) string {
	t.Helper()
	words := []string{"Grüße", "世界", "naïve", "café", "Ωμέγα", "и", "the", "λόγος", "—", "日本語"}
	rng := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	for sb.Len() < n {
		sb.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(8) == 0 {
			sb.WriteString(".\n")
		} else {
			sb.WriteString(" ")
		}
	}
	path := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainsOnAnyText: train takes a UTF-8 text that is not tiny Shakespeare (its vocabulary is
// the text's characters), records which text it was, and sample reads the run with that text
// only.
func TestTrainsOnAnyText(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
	text := writeText(t, 6000)
	corpus, err := data.Load(text)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"-preset", "tiny", "-data", text, "-out", dir, "-quiet", "-bench_tokens", "0",
		"-set", "max_iters=4;eval_interval=2;eval_iters=1"}
	if err := runCommand(cmdTrain, args); err != nil {
		t.Fatal(err)
	}
	var m results.Metrics
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	if m.Config.VocabSize != len(corpus.Chars) || m.Data == nil || m.Data.File != "input.txt" || m.Data.TinyShakespeare ||
		m.Data.SHA256 != corpus.SHA256 || m.Data.Characters != len(corpus.Train)+len(corpus.Val) {
		t.Fatalf("vocab_size %d (want %d), data %+v", m.Config.VocabSize, len(corpus.Chars), m.Data)
	}
	if math.Abs(m.Evals[0].Val-math.Log(float64(len(corpus.Chars)))) > 0.3 {
		t.Errorf("initial validation loss %.3f, want about ln(%d)", m.Evals[0].Val, len(corpus.Chars))
	}
	// sample prints as it generates: the prompt, then each character as it is sampled, the text
	// the generator returns.
	var printed strings.Builder
	if err := runCommand(func(args []string) error { return sampleTo(&printed, args) },
		[]string{"-out", dir, "-data", text, "-tokens", "5", "-prompt", "café", "-seed", "3"}); err != nil {
		t.Errorf("sample with the run's text: %v", err)
	}
	_, ctx, cfg, b, err := openRun(text, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := newGenerator(b, ctx, cfg).generate(corpus.Encode([]byte("café")), 5, 0.8, data.RNG(3, 0), nil)
	if err != nil || printed.String() != corpus.Decode(want)+"\n" {
		t.Errorf("sample printed %q, want %q (%v)", printed.String(), corpus.Decode(want)+"\n", err)
	}
	// A prompt's characters out of the vocabulary are named, not the whole vocabulary.
	err = runCommand(cmdSample, []string{"-out", dir, "-data", text, "-tokens", "5", "-prompt", "caféZ€Z"})
	if err == nil || !strings.Contains(err.Error(), `-prompt: "Z", "€" are not in the training text's vocabulary`) ||
		strings.Contains(err.Error(), "Ω") || !cli.IsUsage(err) {
		t.Errorf("sample -prompt caféZ€Z: got %v, want a usage error naming \"Z\" and \"€\" only", err)
	}
	err = runCommand(cmdSample, []string{"-out", dir, "-data", sharedData, "-tokens", "5"})
	if err == nil || !strings.Contains(err.Error(), "was trained on another text") {
		t.Errorf("sample with tiny Shakespeare: got %v, want an error saying the run trained on another text", err)
	}
	// Resuming with another text is refused, naming the text as the cause.
	args[3] = sharedData
	if err := runCommand(cmdTrain, args); err == nil || !strings.Contains(err.Error(), "was trained on another text") ||
		!strings.Contains(err.Error(), "pass -data with the text it was trained on") {
		t.Errorf("resuming on tiny Shakespeare: got %v, want the run's text named as the cause, and -data as the cure", err)
	}
	// The study's runs are the paper's: tiny Shakespeare only.
	err = runCommand(cmdStudy, []string{"-data", text, "-dir", filepath.Join(t.TempDir(), "study"), "-runs", "0", "-seeds", "1"})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("study on another text: got %v, want a checksum mismatch", err)
	}
}

// TestUnrunnableSettings: settings the model cannot run with are refused before any graph is
// built, with what to change, and nothing is written.
func TestUnrunnableSettings(t *testing.T) {
	short := writeText(t, 400) // about 360 characters for training, 40 for validation
	binary := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(binary, []byte{0x7f, 'E', 'L', 'F', 0xff, 0xfe, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	tiny, _ := gpt.Preset("tiny")
	longBlocks, wide := tiny, tiny
	longBlocks.BlockSize = 100000
	wide.NEmbd, wide.NHead = 1<<20, 1
	have, known := hostMemory()
	for _, tc := range []struct {
		data, set, want string
		floor           float64 // the settings' memory floor: the case is left out where the machine holds it
	}{
		{sharedData, "block_size=200000", "block_size=200000 is longer than the data allows: a block is block_size+1 consecutive " +
			"characters of one split, and the validation split of tinyshakespeare.txt has 111540", 0},
		// XLA's "Out of memory allocating" before
		{sharedData, "block_size=100000", "need more memory than this machine has", attentionFloor(longBlocks, longBlocks.BatchSize)},
		// 2.6e13 parameters: XLA's "Out of memory" before, or the kernel's OOM killer
		{sharedData, "n_embd=1048576;n_head=1", "need more memory than this machine has: training keeps at least", stateFloor(wide, false)},
		{short, "", "lower block_size to at most", 0},
		{binary, "", "is not UTF-8 text: byte 0xff at offset 4", 0},
	} {
		if tc.floor > 0 && (!known || tc.floor <= float64(have)) {
			t.Logf("this machine's memory (%d bytes, known: %v) could hold %s: that case is left out", have, known, tc.set)
			continue
		}
		args := []string{"-preset", "tiny", "-data", tc.data, "-out", out, "-set", tc.set}
		err := runCommand(cmdTrain, args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("train %s: got %v, want an error containing %q", strings.Join(args, " "), err, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("train %s left %s behind", strings.Join(args, " "), out)
		}
	}
}

// TestOneIteration: a run of one iteration writes its metrics, each defined or null with the
// reason, and the report reads them (a free-form SMI run on run 0, through optimizer=smi).
func TestOneIteration(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	t.Parallel()
	dir := t.TempDir()
	m, err := tinyRun(t, 0, dir, "max_iters=1;optimizer=smi", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.RunName != "free-form SMI" || m.SMI[smiopt.ParamTotalSteps] != 1 {
		t.Errorf("run name %q, SMI settings %v", m.RunName, m.SMI)
	}
	if _, ok := m.SMI[smiopt.ParamBase]; ok {
		t.Errorf("smi_base in the metrics' SMI settings: %v", m.SMI)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var thresholds []results.Threshold
	if err := json.Unmarshal(fields["iters_to_threshold"], &thresholds); err != nil || len(thresholds) != 2 ||
		thresholds[0].Iter != nil || string(fields["final_loss_variance"]) != "null" {
		t.Errorf("final_loss_variance %s, iters_to_threshold %s", fields["final_loss_variance"], fields["iters_to_threshold"])
	}
	var undefined map[string]string
	if err := json.Unmarshal(fields["undefined"], &undefined); err != nil ||
		!strings.Contains(undefined["final_loss_variance"], "the run has 1 iteration") ||
		!strings.Contains(undefined["iters_to_threshold"], "not defined in a run of 1 iteration") {
		t.Errorf("undefined: %s", fields["undefined"])
	}
	var back results.Metrics
	if err := json.Unmarshal(raw, &back); err != nil || !math.IsNaN(float64(back.FinalLossVariance)) {
		t.Errorf("read back: final_loss_variance %v, %v", back.FinalLossVariance, err)
	}
	// The report takes the run (nothing it needs is missing) and says n/a for the variance.
	if err := runCommand(study.ReportCommand, []string{"-out", filepath.Join(dir, "report"), dir}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report", "report.md"))
	if !strings.Contains(string(md), "free-form SMI") || strings.Contains(string(md), "lacks") {
		t.Errorf("report.md:\n%s", md)
	}
	// Two iterations have a variance.
	m2, err := tinyRun(t, 0, t.TempDir(), "max_iters=2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(float64(m2.FinalLossVariance)) || m2.Undefined["final_loss_variance"] != "" {
		t.Errorf("2 iterations: variance %v, undefined %v", m2.FinalLossVariance, m2.Undefined)
	}
}
