package main

import (
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/benchmarks"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// partsSection is the step split into parts (forward, backward, optimizer, SMI), ours beside
// PyTorch's when a Python with torch is given.
type partsSection struct {
	presets []string
	python  string // "" leaves PyTorch out
	script  string
}

// measure times the parts of each preset and logs them.
func (s partsSection) measure(r *benchmarks.Report, b backends.Backend, quick bool) error {
	for _, preset := range s.presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		var torch *benchmarks.Torch
		if s.python != "" {
			logf("parts %s: starting PyTorch (%s %s)", preset, s.python, s.script)
			if torch, err = benchmarks.StartTorch(s.python, s.script, cfg); err != nil {
				return err
			}
		}
		opt := benchmarks.Options{Warmup: 3, Rounds: 15, MinSample: 100 * time.Millisecond, Budget: 4 * time.Minute, MinRounds: 7,
			Settle: 50 * time.Millisecond, WarmEach: true}
		if quick {
			opt = benchmarks.Options{Warmup: 1, Rounds: 3}
		}
		res, err := benchmarks.MeasureParts(b, preset, cfg, true, torch, opt, func(m string) { logf("%s", m) })
		if torch != nil {
			if cerr := torch.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("PyTorch step_parts.py: %w", cerr)
			}
		}
		if err != nil {
			return err
		}
		if r != nil {
			r.Parts = append(r.Parts, res)
			r.Rounds["parts "+preset] = fmt.Sprint(len(res.Results[0].Samples))
		}
		for _, res1 := range res.Results {
			logf("parts %s: %-45s %s", preset, res1.Name, benchmarks.HumanDuration(res1.Median()))
		}
		for _, p := range benchmarks.StepParts(res) {
			logf("parts %s: %-10s ours %s [%s, %s]  PyTorch %s", preset, p.Name, benchmarks.HumanDuration(p.Ours.Median),
				benchmarks.HumanDuration(p.Ours.Lo), benchmarks.HumanDuration(p.Ours.Hi), benchmarks.HumanDuration(p.Torch.Median))
		}
	}
	return nil
}

// runParts is -sections parts: the parts only, logged; no report is written.
func runParts(quick bool, s partsSection) error {
	b := backend.ForMain()
	logf("load average at start: %s", benchmarks.LoadAverage())
	err := s.measure(nil, b, quick)
	logf("load average at end: %s", benchmarks.LoadAverage())
	return err
}

// isDefault: the section as `make bench` runs it (PyTorch or not, the command is the same).
func (s partsSection) isDefault() bool {
	return len(s.presets) == 1 && s.presets[0] == "cpu"
}
