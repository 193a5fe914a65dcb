package gpt

import (
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// Optimizer is the training recipe that the Shakespeare trainer and the benchmarks share: the raw
// gradients clipped by their global norm at cfg.GradClip (as nanoGPT; 0 turns clipping off),
// then, when configure is not nil, SMI around base with the settings configure gives it, then base
// (AdamW(cfg) in the trainer). The error is SMI's Done's.
func Optimizer(cfg Config, base gomlxopt.Interface, configure func(*smiopt.SMIConfig) *smiopt.SMIConfig) (gomlxopt.Interface, error) {
	opt := base
	if configure != nil {
		var err error
		if opt, err = configure(smiopt.SMI(base)).Done(); err != nil {
			return nil, err
		}
	}
	return smiopt.ClipByGlobalNorm(opt, cfg.GradClip), nil
}
