package main

import (
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/internal/gpt"
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
	for _, cfg := range []gpt.Config{wide, long} {
		attention, state := attentionFloor(cfg, cfg.BatchSize), stateFloor(cfg)
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
			err := memoryError(cfg, tc.devices, tc.have)
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
	if err := memoryError(wide, 2, 1); err == nil || !strings.Contains(err.Error(), "lower n_embd") || !strings.Contains(err.Error(), "fewer devices") {
		t.Errorf("wide on 2 devices: got %v, want advice to lower n_embd or use fewer devices", err)
	}
	if err := memoryError(long, 1, 1); err == nil || !strings.Contains(err.Error(), "lower block_size") {
		t.Errorf("long blocks: got %v, want advice to lower block_size", err)
	}
}
