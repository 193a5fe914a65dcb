package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/report"
	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/backend"
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
func (s partsSection) measure(r *report.Report, b backends.Backend, quick bool) error {
	for _, preset := range s.presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		opt := warmStepOptions()
		if quick {
			opt = benchmarks.Options{Warmup: 1, Rounds: 3}
		}
		var res gptbench.PartsResult
		withTorch := false
		if s.python != "" {
			var torchErr error
			res, torchErr = s.measureWithTorch(b, preset, cfg, opt, quick, progress)
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
			if res, err = gptbench.MeasureParts(b, preset, cfg, true, nil, opt, progress); err != nil {
				return err
			}
			if res.Products, err = measureProducts(b, preset, cfg, nil, quick); err != nil {
				return err
			}
		}
		if r != nil {
			r.Parts = append(r.Parts, res)
			r.Rounds["parts "+preset] = fmt.Sprint(len(res.Results[0].Samples))
		}
		for _, res1 := range res.Results {
			logf("parts %s: %-45s %s", preset, res1.Name, gptbench.HumanDuration(res1.Median()))
		}
		if m, ok := res.Time(gptbench.PartMaterialized); ok {
			def, _ := res.Time(gptbench.PartStep)
			logf("parts %s: %s", preset, pairedLine(gptbench.PartMaterialized, m, gptbench.PartStep, def))
		}
		for _, p := range gptbench.StepParts(res) {
			torchPart := ""
			if res.Torch != nil {
				torchPart = "  PyTorch " + gptbench.HumanDuration(p.Torch.Median)
			}
			logf("parts %s: %-10s ours %s [%s, %s]%s", preset, p.Name, gptbench.HumanDuration(p.Ours.Median),
				gptbench.HumanDuration(p.Ours.Lo), gptbench.HumanDuration(p.Ours.Hi), torchPart)
		}
	}
	return nil
}

// measureWithTorch times the preset's parts and its layers' products with PyTorch's beside them;
// any error is returned (PyTorch's or ours), for measure to retry without PyTorch.
func (s partsSection) measureWithTorch(b backends.Backend, preset string, cfg gpt.Config, opt benchmarks.Options, quick bool,
	progress func(string)) (gptbench.PartsResult, error) {
	logf("parts %s: starting PyTorch (%s %s)", preset, s.python, s.script)
	torch, err := gptbench.StartTorch(s.python, s.script, cfg)
	if err != nil {
		return gptbench.PartsResult{}, err
	}
	res, err := gptbench.MeasureParts(b, preset, cfg, true, torch, opt, progress)
	if err == nil {
		res.Products, err = measureProducts(b, preset, cfg, torch, quick)
	}
	if cerr := torch.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("PyTorch step_parts.py: %w", cerr)
	}
	return res, err
}

// measureProducts times the dense layers' matrix products of the preset (with PyTorch's when
// torch is not nil) and logs them.
func measureProducts(b backends.Backend, preset string, cfg gpt.Config, torch *gptbench.Torch, quick bool) (*gptbench.ProductsResult, error) {
	opt := benchmarks.Options{Warmup: 3, Rounds: 15, MinSample: 50 * time.Millisecond, Budget: 2 * time.Minute, MinRounds: 7,
		Settle: 20 * time.Millisecond, WarmEach: true}
	if quick {
		opt = benchmarks.Options{Warmup: 1, Rounds: 3}
	}
	shapes := gptbench.LinearProducts(cfg)
	logf("parts %s: timing the dense layers' %d matrix products, the gradients in two forms", preset, 3*len(shapes))
	res, err := gptbench.MeasureProducts(b, shapes, torch, opt)
	if err != nil {
		return nil, fmt.Errorf("parts %s: products: %w", preset, err)
	}
	for _, s := range shapes {
		for _, form := range gptbench.ProductForms {
			ours, _ := res.Time(form, s, false)
			line := fmt.Sprintf("parts %s: product %-16s %-8s ours %s (%.0f GFLOP/s)", preset, form, s.Label(),
				gptbench.HumanDuration(ours.Median()), s.Flops()/ours.Median().Seconds()/1e9)
			if m, ok := res.Materialized(form, s); ok {
				line += fmt.Sprintf("  %s %s (%s)", dotgrad.Materialized, gptbench.HumanDuration(m.Median()), benchmarks.PairedRatio(ours, m))
			}
			if t, ok := res.Time(form, s, true); ok {
				line += fmt.Sprintf("  PyTorch %s (%.0f GFLOP/s)", gptbench.HumanDuration(t.Median()), s.Flops()/t.Median().Seconds()/1e9)
			}
			logf("%s", line)
		}
		if c, ok := res.Control(s); ok {
			first, _ := res.Time(gptbench.ControlForm, s, false)
			logf("parts %s: product %-16s %-8s A/A control (the same graph compiled twice, two cases): %s", preset, gptbench.ControlForm,
				s.Label(), benchmarks.PairedRatio(first, c))
		}
	}
	return &res, nil
}

// oneLine joins an error's lines (PyTorch's stderr, say) into one for a Markdown list item.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// runParts is -sections parts: the parts only, logged; no report is written.
func runParts(quick bool, s partsSection) error {
	b := backend.ForMain()
	logf("load average at start: %s", gptbench.LoadAverage())
	err := s.measure(nil, b, quick)
	logf("load average at end: %s", gptbench.LoadAverage())
	return err
}

// runProducts is -sections products: the dense layers' products of the parts presets only
// (PyTorch's beside them when -pytorch is given), logged; no report is written.
func runProducts(quick bool, s partsSection) error {
	b := backend.ForMain()
	logf("load average at start: %s", gptbench.LoadAverage())
	for _, preset := range s.presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		var torch *gptbench.Torch
		if s.python != "" {
			if torch, err = gptbench.StartTorch(s.python, s.script, cfg); err != nil {
				return err
			}
		}
		_, err = measureProducts(b, preset, cfg, torch, quick)
		if torch != nil {
			if cerr := torch.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("PyTorch step_parts.py: %w", cerr)
			}
		}
		if err != nil {
			return err
		}
	}
	logf("load average at end: %s", gptbench.LoadAverage())
	return nil
}

// isDefault: the section as `make bench` runs it (PyTorch or not, the command is the same).
func (s partsSection) isDefault() bool {
	return len(s.presets) == 1 && s.presets[0] == "cpu"
}

// warmStepOptions times a step's parts or a plugin's cases (parts and plugins sections): samples of
// at least 100 ms, each after an untimed call and a pause (WarmEach, Settle), 7 to 15 rounds within
// 4 minutes.
func warmStepOptions() benchmarks.Options {
	return benchmarks.Options{Warmup: 3, Rounds: 15, MinSample: 100 * time.Millisecond, Budget: 4 * time.Minute, MinRounds: 7,
		Settle: 50 * time.Millisecond, WarmEach: true}
}
