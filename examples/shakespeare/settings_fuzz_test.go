package main

import (
	"testing"

	"github.com/smi-gomlx/smi/internal/gpt"
)

// FuzzSettings: any -set value, with any preset and run, gives settings and an optimizer, or an
// error; never a panic (which would reach the user as runCommand's bare message instead of what
// to change).
func FuzzSettings(f *testing.F) {
	for _, s := range []string{"", "max_iters=500;learning_rate=3e-4;optimizer=smi;smi_quantile=0.3", "n_head=0",
		"n_embd=7;n_head=2", "smi_total_steps=-1", "dropout=2", "batch_size=0", "smi=true", "smi_quantile=1e400",
		"optimizer=lion", "smi_base=adam", "block_size=-3;max_iters=0", "learning_rate=nan", "warmup_iters=9999999999999",
		"max_iters=4611686018427387904", "run=3;seed=5"} {
		f.Add(s, uint8(0), uint8(5))
	}
	presets := gpt.PresetNames()
	f.Fuzz(func(t *testing.T, set string, preset, run uint8) {
		o := &trainOptions{Preset: presets[int(preset)%len(presets)], Run: int(run) % 6, Set: set}
		ctx, cfg, err := o.settings(65)
		if err != nil {
			return
		}
		if _, err := newOptimizer(ctx, cfg); err != nil {
			return
		}
		if cfg.NHead <= 0 || cfg.NEmbd%cfg.NHead != 0 || cfg.BlockSize <= 0 || cfg.BatchSize <= 0 || cfg.MaxIters <= 0 || cfg.MaxIters > maxIters {
			t.Fatalf("-set %q accepted, with an unrunnable model: %+v", set, cfg)
		}
	})
}
