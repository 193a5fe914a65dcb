package main

import (
	"fmt"
	"strings"
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

// measure times the parts of each preset and logs them. If PyTorch's side cannot start or fails
// on the way, the preset's parts are timed without it and r (when not nil) gets a note saying
// why: a broken PyTorch install costs that column, not the report.
func (s partsSection) measure(r *benchmarks.Report, b backends.Backend, quick bool) error {
	for _, preset := range s.presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		opt := benchmarks.Options{Warmup: 3, Rounds: 15, MinSample: 100 * time.Millisecond, Budget: 4 * time.Minute, MinRounds: 7,
			Settle: 50 * time.Millisecond, WarmEach: true}
		if quick {
			opt = benchmarks.Options{Warmup: 1, Rounds: 3}
		}
		progress := func(m string) { logf("%s", m) }
		var res benchmarks.PartsResult
		withTorch := false
		if s.python != "" {
			var torchErr error
			res, torchErr = s.measureWithTorch(b, preset, cfg, opt, progress)
			withTorch = torchErr == nil
			if !withTorch {
				logf("parts %s: PyTorch's side failed, timing ours alone: %v", preset, torchErr)
				if r != nil {
					r.Notes = append(r.Notes, fmt.Sprintf("PyTorch's side of section 1b (`%s`) on `%s`: it failed, so ours is timed alone: %v",
						preset, s.python, oneLine(torchErr)))
				}
			}
		}
		if !withTorch {
			if res, err = benchmarks.MeasureParts(b, preset, cfg, true, nil, opt, progress); err != nil {
				return err
			}
		}
		if r != nil {
			r.Parts = append(r.Parts, res)
			r.Rounds["parts "+preset] = fmt.Sprint(len(res.Results[0].Samples))
		}
		for _, res1 := range res.Results {
			logf("parts %s: %-45s %s", preset, res1.Name, benchmarks.HumanDuration(res1.Median()))
		}
		for _, p := range benchmarks.StepParts(res) {
			torchPart := ""
			if res.Torch != nil {
				torchPart = "  PyTorch " + benchmarks.HumanDuration(p.Torch.Median)
			}
			logf("parts %s: %-10s ours %s [%s, %s]%s", preset, p.Name, benchmarks.HumanDuration(p.Ours.Median),
				benchmarks.HumanDuration(p.Ours.Lo), benchmarks.HumanDuration(p.Ours.Hi), torchPart)
		}
	}
	return nil
}

// measureWithTorch times the preset's parts with PyTorch's beside them; any error is returned
// (PyTorch's or ours), for measure to retry without PyTorch.
func (s partsSection) measureWithTorch(b backends.Backend, preset string, cfg gpt.Config, opt benchmarks.Options,
	progress func(string)) (benchmarks.PartsResult, error) {
	logf("parts %s: starting PyTorch (%s %s)", preset, s.python, s.script)
	torch, err := benchmarks.StartTorch(s.python, s.script, cfg)
	if err != nil {
		return benchmarks.PartsResult{}, err
	}
	res, err := benchmarks.MeasureParts(b, preset, cfg, true, torch, opt, progress)
	if cerr := torch.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("PyTorch step_parts.py: %w", cerr)
	}
	return res, err
}

// oneLine joins an error's lines (PyTorch's stderr, say) into one for a Markdown list item.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
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
