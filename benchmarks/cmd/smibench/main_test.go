package main

import (
	"strings"
	"testing"
	"time"
)

// TestCheckFlags: every mistake checkFlags is for is reported by its flag, and make bench's and
// gpu-check.sh's flags pass.
func TestCheckFlags(t *testing.T) {
	type flags struct {
		args                                 []string
		presets, parts, devicesPreset, bases string
		paperRounds                          int
		budget                               time.Duration
	}
	ok := flags{nil, "tiny,cpu,paper", "cpu", "cpu", "AdamW,SGD-momentum,Lion", 15, time.Minute}
	for _, f := range []flags{ok,
		{nil, "cpu,paper", "", "cpu", "AdamW", 2, 45 * time.Second}, // gpu-check.sh, make bench-plugins
	} {
		if err := checkFlags(f.args, f.presets, f.parts, f.devicesPreset, f.bases, f.paperRounds, f.budget); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
	for want, change := range map[string]func(*flags){
		`unexpected arguments ["extra"]`:                  func(f *flags) { f.args = []string{"extra"} },
		`-presets: gpt.Preset: unknown preset "papr"`:     func(f *flags) { f.presets = "tiny,papr" },
		`-presets: gpt.Preset: unknown preset ""`:         func(f *flags) { f.presets = "tiny," },
		`-parts-presets: gpt.Preset: unknown preset "x"`:  func(f *flags) { f.parts = "x" },
		`-devices-preset: gpt.Preset: unknown preset "y"`: func(f *flags) { f.devicesPreset = "y" },
		`unknown base optimizer "Adam" in -bases`:         func(f *flags) { f.bases = "AdamW,Adam" },
		"-paper-rounds must be at least 2":                func(f *flags) { f.paperRounds = 1 },
		"-budget must be positive":                        func(f *flags) { f.budget = -time.Second },
	} {
		f := ok
		change(&f)
		err := checkFlags(f.args, f.presets, f.parts, f.devicesPreset, f.bases, f.paperRounds, f.budget)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: got %v, want an error containing %q", f, err, want)
		}
	}
}
