package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/ui/commandline"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
	"github.com/smi-gomlx/smi/spectral"
)

// TestMemoryError checks the memory floor's arithmetic on made-up machines: the state counts once
// per device of -devices, the attention weights once for the whole batch, and a floor exactly
// equal to the memory fits.
func TestMemoryError(t *testing.T) {
	tiny, err := gpt.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	wide := tiny // the parameters outweigh the attention weights
	wide.NEmbd, wide.NHead = 4096, 1
	long := tiny // the attention weights outweigh the parameters
	long.BlockSize = 4096
	for _, c := range []struct {
		cfg       gpt.Config
		histories bool
	}{{wide, false}, {wide, true}, {long, false}, {long, true}} {
		cfg := c.cfg
		attention, state := attentionFloor(cfg, cfg.BatchSize), stateFloor(cfg, c.histories)
		one := int64(attention + state)
		if float64(one) != attention+state {
			t.Fatalf("floor %g is not a whole number of bytes", attention+state)
		}
		for _, tc := range []struct {
			devices int
			have    int64
			want    string // "" for no error
		}{
			{1, one, ""},
			{0, one, ""}, // 0 and 1 both mean one device
			{1, one - 1, "need more memory than this machine has"},
			{2, one, "(a copy on each of the 2 devices of -devices)"},
			{2, int64(attention + 2*state), ""},
			{4, int64(attention + 4*state), ""},
			{4, int64(attention+4*state) - 1, "each of the 4 devices"},
		} {
			err := memoryError(cfg, tc.devices, c.histories, tc.have)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("n_embd=%d block_size=%d on %d devices with %d bytes: got %v, want no error", cfg.NEmbd, cfg.BlockSize, tc.devices, tc.have, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("n_embd=%d block_size=%d on %d devices with %d bytes: got %v, want an error containing %q",
					cfg.NEmbd, cfg.BlockSize, tc.devices, tc.have, err, tc.want)
			}
		}
	}
	// The advice names what dominates.
	if err := memoryError(wide, 2, true, 1); err == nil || !strings.Contains(err.Error(), "lower n_embd") ||
		!strings.Contains(err.Error(), "fewer devices") || !strings.Contains(err.Error(), "SMI's histories") {
		t.Errorf("wide on 2 devices with SMI: got %v, want SMI's histories named and advice to lower n_embd or use fewer devices", err)
	}
	if err := memoryError(long, 1, false, 1); err == nil || !strings.Contains(err.Error(), "lower block_size") {
		t.Errorf("long blocks: got %v, want advice to lower block_size", err)
	}
}

// TestHistoryFloor checks that the floor counts SMI's histories as spectral.HistoryShape sizes
// them, for the variables the model builds, and only for runs whose SMI filters every variable.
func TestHistoryFloor(t *testing.T) {
	for _, preset := range gpt.PresetNames() {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, w := range cfg.Weights(true) {
			h, ok := spectral.HistoryShape(shapes.Make(dtypes.Float32, w.Rows, w.Cols))
			if !ok || h.DType != dtypes.Float32 {
				t.Fatalf("%s: %s is not filtered in float32 (%v)", preset, w.Name, h)
			}
			want += w.Count * h.Size()
		}
		if got := stateFloor(cfg, true) - stateFloor(cfg, false); got != 4*float64(want) {
			t.Errorf("%s: the histories add %g bytes to the floor, want %d", preset, got, 4*want)
		}
	}
	for _, tc := range []struct {
		set  string
		want bool
	}{
		{"optimizer=smi", true},
		{"optimizer=smi;smi_exclude=", true},
		{"optimizer=smi;smi_exclude=gain$", false},
		{"optimizer=adamw", false},
		{"", false},
	} {
		ctx := context.New()
		smiopt.SetDefaultParams(ctx)
		if tc.set != "" {
			if _, err := commandline.ParseContextSettings(ctx, tc.set); err != nil {
				t.Fatal(err)
			}
		}
		if got := keepsHistories(ctx); got != tc.want {
			t.Errorf("-set %q: keepsHistories = %v, want %v", tc.set, got, tc.want)
		}
	}
}

// TestCheckRunCountsHistories checks that a run's check counts SMI's histories: on this machine's
// memory, an n_embd whose floor fits without the histories but not with them is refused for run 5
// (SMI) and passes the check for run 0 (AdamW). Nothing is trained.
func TestCheckRunCountsHistories(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	have, known := hostMemory()
	if !onCPU(b) || !known {
		t.Skipf("the memory check runs on a CPU whose memory is known (%s; known: %v)", b.Name(), known)
	}
	corpus, err := data.Load(sharedData)
	if err != nil {
		t.Fatalf("the tests need tiny Shakespeare at %s (set SMI_DATA to the file, or run make data): %v", sharedData, err)
	}
	cfg, err := gpt.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NHead = 1
	floor := func(histories bool) float64 { return attentionFloor(cfg, cfg.BatchSize) + stateFloor(cfg, histories) }
	cfg.NEmbd = 64
	for floor(true) <= float64(have) {
		cfg.NEmbd += 64
	}
	if floor(false) > float64(have) {
		t.Skipf("no multiple of 64 for n_embd lies between the floors on %d bytes", have)
	}
	for run, want := range map[int]string{5: "SMI's histories of their spectra", 0: ""} {
		o := &trainOptions{Preset: "tiny", Run: run, Seed: 1, Data: sharedData, Out: t.TempDir(), Quiet: true,
			Set: fmt.Sprintf("n_embd=%d;n_head=1", cfg.NEmbd)}
		ctx, runCfg, err := o.settings(len(corpus.Chars))
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkRun(b, ctx, runCfg, corpus, o)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("run %d, n_embd=%d on %d bytes: checkRun gave %v, want %q (\"\": no error)", run, cfg.NEmbd, have, err, want)
		}
	}
}
