package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// legacySet is the -set of the run in testdata/legacy-run5, a checkpoint the trainer saved before
// it chose its optimizer by the "optimizer" hyperparameter (its settings hold the boolean "smi").
const legacySet = "max_iters=20;eval_interval=10;eval_iters=2;n_embd=8;n_head=2;n_layer=1;block_size=8;batch_size=2"

// TestLegacyCheckpointResumes: a run whose checkpoint an older version saved (with "smi": true)
// resumes under the same command, continues as that version's uninterrupted run did, and its new
// checkpoints hold today's names.
func TestLegacyCheckpointResumes(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "checkpoint"), os.DirFS(filepath.Join("testdata", "legacy-run5", "checkpoint"))); err != nil {
		t.Fatal(err)
	}
	var want struct {
		IterLoss     []float64      `json:"iter_loss"`
		FinalValLoss float64        `json:"final_val_loss"`
		SMI          map[string]any `json:"smi"`
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "legacy-run5", "expected.json"))
	if err != nil || json.Unmarshal(raw, &want) != nil {
		t.Fatalf("expected.json: %v", err)
	}

	m, err := tinyRun(t, 5, dir, legacySet, 0)
	if err != nil {
		t.Fatalf("resuming the old checkpoint: %v", err)
	}
	if len(m.IterLoss) != 20 || len(want.IterLoss) != 20 {
		t.Fatalf("%d iterations, want 20", len(m.IterLoss))
	}
	for i := range 10 { // from the old checkpoint's history
		if m.IterLoss[i] != want.IterLoss[i] {
			t.Fatalf("iteration %d: loss %v, the checkpoint's history says %v", i+1, m.IterLoss[i], want.IterLoss[i])
		}
	}
	exact := true
	for i := 10; i < 20; i++ { // trained now; the same on the machine that made the file, rounding elsewhere
		exact = exact && m.IterLoss[i] == want.IterLoss[i]
		if math.Abs(m.IterLoss[i]-want.IterLoss[i]) > 1e-4*want.IterLoss[i] {
			t.Errorf("iteration %d: loss %.7f after resuming, %.7f in the old version's run", i+1, m.IterLoss[i], want.IterLoss[i])
		}
	}
	t.Logf("iterations 11-20 equal the old version's bit for bit: %v", exact)
	if math.Abs(m.FinalValLoss-want.FinalValLoss) > 1e-4*want.FinalValLoss {
		t.Errorf("final validation loss %.7f, the old version's %.7f", m.FinalValLoss, want.FinalValLoss)
	}
	if got, _ := json.Marshal(m.SMI); string(got) != mustJSON(t, want.SMI) {
		t.Errorf("metrics' smi settings %s, the old version wrote %s", got, mustJSON(t, want.SMI))
	}

	// The checkpoint saved now uses today's names, and leaves the old boolean out.
	saved, _, err := readCheckpoint(filepath.Join(dir, "checkpoint", "step-00000020"))
	if err != nil {
		t.Fatal(err)
	}
	if _, found := saved.GetParam(legacyParamSMI); found {
		t.Errorf("the new checkpoint still holds %q", legacyParamSMI)
	}
	if v := context.GetParamOr(saved, gomlxopt.ParamOptimizer, ""); v != smiopt.OptimizerName {
		t.Errorf("the new checkpoint's optimizer is %q", v)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestMigrateParams: the old boolean becomes "optimizer" and smi_base; today's names are kept.
func TestMigrateParams(t *testing.T) {
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{legacyParamSMI: true}, "smi"},
		{map[string]any{legacyParamSMI: false}, "adamw"},
		{map[string]any{legacyParamSMI: true, gomlxopt.ParamOptimizer: "adamw"}, "adamw"}, // today's wins
		{map[string]any{}, ""}, // neither: nothing to migrate
	} {
		ctx := context.New()
		ctx.SetParams(tc.params)
		migrateParams(ctx)
		if got := context.GetParamOr(ctx, gomlxopt.ParamOptimizer, ""); got != tc.want {
			t.Errorf("%v: optimizer %q, want %q", tc.params, got, tc.want)
		}
		_, hasBase := ctx.GetParam(smiopt.ParamBase)
		if _, legacy := tc.params[legacyParamSMI]; hasBase != (legacy && tc.params[gomlxopt.ParamOptimizer] == nil) {
			t.Errorf("%v: smi_base set: %v", tc.params, hasBase)
		}
	}
}
