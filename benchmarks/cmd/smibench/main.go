// Command smibench measures what SMI costs on the XLA backend and writes docs/BENCHMARKS.md
// with its plots (`make bench`). Every figure in the report comes from this run.
//
//	go run ./benchmarks/cmd/smibench -out docs/BENCHMARKS.md
//	go run ./benchmarks/cmd/smibench -quick -out /tmp/b.md   # seconds-to-minutes harness check
//	go run ./benchmarks/cmd/smibench -sections steps -presets tiny,cpu -bases AdamW   # step ratios only, no report
//	go run ./benchmarks/cmd/smibench -sections devices -devices 1,2,4   # data-parallel step times only, no report
//	go run ./benchmarks/cmd/smibench -sections strategies -presets cpu -budget 1m -json s.json   # the filter strategies (quantile counting, batch limit) against AdamW
//	go run ./benchmarks/cmd/smibench -device cuda -sections devices -devices 1,2,4,8   # the same on GPUs (after make setup-cuda)
//	go run ./benchmarks/cmd/smibench -sections gpu-programs -presets paper -programs-python VENV/bin/python -json p.json   # the steps compiled for a GPU, without one (make gpu-program)
//	go run ./benchmarks/cmd/smibench -sections plugins -plugins xla-cpu-pjrt,lammps-jax-pjrt-cpu -presets cpu   # XLA CPU plugins side by side (make bench-plugins)
//
// Mistakes in the flags (a bad value, an output that cannot be written, a flag the chosen section
// does not read) stop it with status 2 and one line, before anything is measured.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/report"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
	"github.com/smi-gomlx/smi/internal/machine"
)

func main() {
	out := flag.String("out", "docs/BENCHMARKS.md", "Markdown report; plots go to a folder named after it (docs/benchmarks/)")
	quick := flag.Bool("quick", false, "few shapes and rounds: checks the harness, figures not for quoting")
	presets := flag.String("presets", "tiny,cpu,paper", "GPT presets whose training step is timed")
	paperRounds := flag.Int("paper-rounds", 15, "interleaved rounds for the paper preset (seconds per step on a CPU)")
	gpt2 := flag.Bool("gpt2", true, "time the filter on GPT-2 small's variable shapes (the 50257x768 embedding included)")
	sections := flag.String("sections", "all", "\"all\" writes the report; \"steps\" only times the training steps and prints "+
		"their ratios, \"devices\" only the data-parallel steps, \"parts\" only the step's parts, \"products\" only its dense layers' products (no report written); "+
		"\"strategies\" the filter strategies against AdamW; \"gpu-programs\" compiles the steps for a GPU without one and counts their kernels (-json); "+
		"\"plugins\" the step ratios under each CPU plugin of -plugins (-plugins-out)")
	devices := flag.String("devices", "1,2,4", "device counts of the data-parallel step section, each once; those beyond the backend's devices are left out "+
		"with a note, and it is an error when all are (\"\" skips it)")
	devicesPreset := flag.String("devices-preset", "cpu", "GPT preset of the data-parallel step section, trained with SMI(AdamW)")
	devicesJSON := flag.String("devices-json", "", "with -sections devices: also write the results to this JSON file")
	partsPresets := flag.String("parts-presets", "cpu", "GPT presets whose training step is split into parts (\"\" skips it)")
	python := flag.String("pytorch", "", "a Python with torch: the step-parts section times nanoGPT's PyTorch step beside ours")
	torchScript := flag.String("pytorch-script", "scripts/reference/step_parts.py", "the PyTorch side of the step-parts section")
	bases := flag.String("bases", "AdamW,SGD-momentum,Lion", "base optimizers whose step pairs are timed")
	budget := flag.Duration("budget", time.Minute, "with -sections strategies: interleaved timing per preset (after compilation)")
	jsonOut := flag.String("json", "", "with -sections strategies or gpu-programs: also write the figures to this JSON file")
	only := flag.String("strategies", "", "with -sections strategies or gpu-programs: the strategies to time or compile, by ID (default all: "+strategyIDs()+")")
	render := flag.String("render-strategies", "", "measure nothing: write -out as a Markdown report of these strategy JSON files (comma-separated)")
	device := flag.String("device", "", backend.DeviceUsage)
	plugins := flag.String("plugins", "", "with -sections plugins: the XLA CPU plugins to compare (make setup PLUGIN=NAME installs each), "+
		"comma-separated, the first the reference; NAME+--xla_flag=value adds XLA flags to one (e.g. "+backend.OfficialPlugin+"+--xla_cpu_max_isa=AVX2)")
	pluginsOut := flag.String("plugins-out", "", "with -sections plugins: write the Markdown report to this file (default: stdout)")
	pluginWorker := flag.Bool("plugin-worker", false, "internal: the worker process of -sections plugins")
	programsPython := flag.String("programs-python", "", "with -sections gpu-programs: a Python with jaxlib and JAX's CUDA PJRT plugin (make gpu-program installs one)")
	programsScript := flag.String("programs-script", "scripts/gpu-program/compile.py", "with -sections gpu-programs: the script that compiles the programs for the GPU")
	programsTarget := flag.String("programs-target", "scripts/gpu-program/h100.txtpb", "with -sections gpu-programs: the GPU to compile for, as XLA describes one (GpuTargetConfigProto, text format)")
	programsDir := flag.String("programs-dir", "", "with -sections gpu-programs: keep the programs (HLO before and after XLA's passes) in this folder")
	flag.Parse()
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := backend.SetDevice(*device); err != nil {
		fmt.Fprintf(os.Stderr, "smibench: %v\n", err)
		os.Exit(2)
	}
	// What runs: the first that applies of the plugin worker, -sections plugins,
	// -render-strategies and the section of -sections.
	section := *sections
	switch {
	case *pluginWorker:
		section = sectionPluginWorker
	case section == "plugins":
	case given["render-strategies"]:
		section = sectionRender
	}
	// Mistakes in the flags are reported before anything is measured (a run takes minutes).
	counts, err := parseCounts(*devices)
	if err == nil {
		err = checkFlags(flag.Args(), section, *render, *presets, *partsPresets, *devicesPreset, *bases, *paperRounds, *budget)
	}
	if err == nil {
		err = checkSectionFlags(section, given)
	}
	var variants []pluginVariant
	if err == nil && section == "plugins" {
		variants, err = parsePluginVariants(*plugins)
	}
	var strategies []benchmarks.Strategy
	if err == nil && (section == "strategies" || section == "gpu-programs") {
		strategies, err = selectStrategies(splitList(*only))
	}
	if err == nil {
		var outs []output
		if outs, err = outputs(section, *out, *jsonOut, *devicesJSON, *pluginsOut, *programsDir); err == nil {
			err = checkOutputs(outs)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "smibench: %v\n", err)
		os.Exit(2)
	}
	if *quick && !given["presets"] {
		*presets = "tiny"
	}
	dp := devicesSection{preset: *devicesPreset, counts: counts, explicit: given["devices"], json: *devicesJSON, device: *device}
	parts := partsSection{presets: splitList(*partsPresets), python: *python, script: *torchScript}
	switch section {
	case sectionPluginWorker:
		err = runPluginWorker(strings.Split(*presets, ","))
	case "plugins":
		err = pluginsSection{variants: variants, presets: strings.Split(*presets, ","), paperRounds: *paperRounds, out: *pluginsOut}.run()
	case sectionRender:
		err = renderStrategies(strings.Split(*render, ","), *out)
	case "all":
		err = run(*out, *quick, strings.Split(*presets, ","), *paperRounds, *gpt2, strings.Split(*bases, ","), dp, parts)
	case "steps":
		err = runSteps(*quick, strings.Split(*presets, ","), *paperRounds, strings.Split(*bases, ","))
	case "devices":
		err = runDevices(*quick, dp)
	case "parts":
		err = runParts(*quick, parts)
	case "products":
		err = runProducts(*quick, parts)
	case "strategies":
		err = runStrategies(strings.Split(*presets, ","), strategies, *budget, *jsonOut)
	case "gpu-programs":
		err = gpuPrograms{presets: strings.Split(*presets, ","), strategies: strategies, python: *programsPython,
			script: *programsScript, target: *programsTarget, jsonOut: *jsonOut, keep: *programsDir}.run()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "smibench: %v\n", err)
		if cli.IsUsage(err) { // a mistake in the flags found once the backend is known (its devices)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// The sections besides those of -sections.
const (
	sectionPluginWorker = "plugin-worker" // -plugin-worker
	sectionRender       = "render"        // -render-strategies
)

// checkFlags checks what the flags name before any measurement: no arguments besides flags, the
// section (see main), the files to render, the presets and base optimizers (each list not empty
// where the section needs it), the paper preset's rounds and the strategies' budget.
func checkFlags(args []string, section, render, presets, partsPresets, devicesPreset, bases string, paperRounds int, budget time.Duration) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q (smibench takes only flags; see -help)", args)
	}
	needsPresets, needsBases := false, false
	switch section {
	case "all", "steps":
		needsPresets, needsBases = true, true
	case "strategies", "gpu-programs", "plugins", sectionPluginWorker:
		needsPresets = true
	case "devices", "parts", "products":
	case sectionRender:
		for _, f := range strings.Split(render, ",") {
			if strings.TrimSpace(f) == "" {
				return fmt.Errorf("-render-strategies: want JSON files, comma-separated, got %q", render)
			}
		}
	default:
		return fmt.Errorf("-sections must be all, steps, devices, parts, products, strategies, gpu-programs or plugins, got %q", section)
	}
	if needsPresets && strings.TrimSpace(presets) == "" {
		return fmt.Errorf("-presets is empty: -sections %s times at least one preset (tiny, cpu or paper)", section)
	}
	if needsBases && strings.TrimSpace(bases) == "" {
		return fmt.Errorf("-bases is empty: -sections %s times at least one base optimizer (AdamW, SGD-momentum or Lion)", section)
	}
	for flagName, names := range map[string][]string{"-presets": splitList(presets), "-parts-presets": splitList(partsPresets),
		"-devices-preset": {devicesPreset}} {
		for _, name := range names {
			if _, err := gpt.Preset(name); err != nil {
				return fmt.Errorf("%s: %v", flagName, err)
			}
		}
	}
	if _, err := stepConfigurations(splitList(bases)); err != nil {
		return err
	}
	if paperRounds < 2 {
		return fmt.Errorf("-paper-rounds must be at least 2 (a ratio's interval needs two rounds), got %d", paperRounds)
	}
	if budget <= 0 {
		return fmt.Errorf("-budget must be positive, got %v", budget)
	}
	return nil
}

// sectionFlags lists the flags each section reads besides -sections and -device (which every
// section reads but -render-strategies, which measures nothing, and plugins, which compares XLA
// CPU plugins). A flag the section does not read would be ignored, and with it what the user
// meant: checkSectionFlags refuses it.
var sectionFlags = map[string][]string{
	"all":               {"out", "quick", "presets", "paper-rounds", "gpt2", "bases", "devices", "devices-preset", "parts-presets", "pytorch", "pytorch-script"},
	"steps":             {"quick", "presets", "paper-rounds", "bases"},
	"devices":           {"quick", "devices", "devices-preset", "devices-json"},
	"parts":             {"quick", "parts-presets", "pytorch", "pytorch-script"},
	"products":          {"quick", "parts-presets", "pytorch", "pytorch-script"},
	"strategies":        {"presets", "strategies", "budget", "json"},
	"gpu-programs":      {"presets", "strategies", "json", "programs-python", "programs-script", "programs-target", "programs-dir"},
	"plugins":           {"plugins", "presets", "paper-rounds", "plugins-out"},
	sectionRender:       {"render-strategies", "out"},
	sectionPluginWorker: {"plugin-worker", "presets"},
}

// checkSectionFlags refuses a flag given (by name, as flag.Visit sees them) that the section
// does not read, naming the sections that do.
func checkSectionFlags(section string, given map[string]bool) error {
	reads := sectionFlags[section]
	switch section {
	case sectionRender, sectionPluginWorker:
	case "plugins":
		reads = append([]string{"sections"}, reads...)
	default:
		reads = append([]string{"sections", "device"}, reads...)
	}
	var names []string
	for name := range given {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if slices.Contains(reads, name) {
			continue
		}
		switch {
		case section == sectionRender && (name == "sections" || name == "device"):
			return fmt.Errorf("-%s has no effect with -render-strategies, which measures nothing", name)
		case section == "plugins" && name == "device":
			return fmt.Errorf("-device has no effect with -sections plugins, which compares XLA CPU plugins")
		case name == "render-strategies":
			return fmt.Errorf("-render-strategies renders reports and measures nothing: it does not go with %s", sectionName(section))
		case section == sectionPluginWorker:
			return fmt.Errorf("-%s has no effect with -plugin-worker (internal: the workers of -sections plugins)", name)
		}
		var readers []string
		for s, flags := range sectionFlags {
			if s != sectionPluginWorker && slices.Contains(flags, name) {
				readers = append(readers, sectionName(s))
			}
		}
		slices.Sort(readers)
		return fmt.Errorf("-%s has no effect with %s: it is read by %s", name, sectionName(section), strings.Join(readers, ", "))
	}
	return nil
}

// sectionName is how the user chooses the section: by -sections, or -render-strategies.
func sectionName(section string) string {
	switch section {
	case sectionRender:
		return "-render-strategies"
	case sectionPluginWorker:
		return "-plugin-worker"
	}
	return "-sections " + section
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// pairedLine is how a log line gives r against base, timed in the same rounds: both medians, then
// the paired ratio r / base, the median of the rounds' ratios, which need not equal the ratio of
// the medians before it.
func pairedLine(name string, r benchmarks.Result, baseName string, base benchmarks.Result) string {
	ratio := benchmarks.PairedRatio(base, r)
	return fmt.Sprintf("%s %s, %s %s (medians); paired ratio %s (median of the %d rounds' ratios)", name,
		gptbench.HumanDuration(r.Median()), baseName, gptbench.HumanDuration(base.Median()), ratio, ratio.N)
}

// run measures every section and writes the report to out, with its plots in a folder named
// after it.
func run(out string, quick bool, presets []string, paperRounds int, gpt2 bool, bases []string, dp devicesSection, parts partsSection) error {
	start := time.Now()
	b := backend.ForMain()
	cmd := "make bench"
	if quick || !slices.Equal(presets, []string{"tiny", "cpu", "paper"}) || paperRounds != 15 || !gpt2 || len(bases) != 3 ||
		!dp.isDefault() || !parts.isDefault() {
		cmd = "go run ./benchmarks/cmd/smibench " + strings.Join(os.Args[1:], " ")
	}
	r := &report.Report{Env: gptbench.CurrentEnv(b), Command: cmd, Quick: quick, Rounds: map[string]string{}}
	// The device counts the backend lacks are known now, before minutes of measuring.
	dp, dpNotes, err := dp.fit(b.NumDevices())
	if err != nil {
		return err
	}

	// 5. Bandwidth first: the reference for everything else.
	if err := measureBandwidth(r, b, quick); err != nil {
		return err
	}
	// 2. The filter: a sweep of shapes with the breakdown, every distinct variable shape of the
	// models, and each model's filter as one graph.
	filterOpt, err := measureSweep(r, b, quick)
	if err != nil {
		return err
	}
	if err := measureModelShapes(r, b, quick, gpt2, filterOpt); err != nil {
		return err
	}
	if err := measureFilterGraphs(r, b, quick); err != nil {
		return err
	}
	// 1 and 3. Steps and memory.
	if err := measureSteps(r, b, quick, presets, paperRounds, bases); err != nil {
		return err
	}
	// 1b. The step's parts, beside PyTorch's when given.
	if err := parts.measure(r, b, quick); err != nil {
		return err
	}
	if parts.python == "" {
		r.Notes = append(r.Notes, "PyTorch's side of section 1b and the goal against it: no -pytorch given "+
			"(`make reference` installs PyTorch; `make bench` then passes it).")
	}
	// 6. Several devices: on XLA CPU in a child process prepared for them, elsewhere in this one
	// (see inChild).
	r.Notes = append(r.Notes, dpNotes...)
	switch {
	case dp.inChild(b):
		if err := dp.measureInChild(r, quick); err != nil {
			return err
		}
	case len(dp.counts) > 0:
		if err := dp.measure(r, b, quick); err != nil {
			return err
		}
	}
	// 7. The plugin's precompiled kernels, from its symbol table.
	readPluginKernels(r)
	return writeReport(r, out, start)
}

// progress logs a measurement's progress.
func progress(s string) { logf("%s", s) }

// measureBandwidth measures the memory bandwidth (section 5).
func measureBandwidth(r *report.Report, b backends.Backend, quick bool) error {
	// 48 MiB per array: several times the last-level caches of common CPUs, and under the 64 MiB
	// up to which glibc serves a thread's blocks from its heap (package hostmem), so each call's
	// output reuses the last one's memory. A 256 MiB output is mapped afresh at every call, and
	// its page faults, not the memory, would set the limit.
	bwElems, bwOpt := 12<<20, benchmarks.Options{Warmup: 2, Rounds: 15, MinSample: 200 * time.Millisecond}
	if quick {
		bwElems, bwOpt = 1<<22, benchmarks.Options{Warmup: 1, Rounds: 3, MinSample: 20 * time.Millisecond}
	}
	logf("bandwidth: %d float32", bwElems)
	bw, err := benchmarks.MeasureBandwidth(b, bwElems, bwOpt)
	if err != nil {
		return fmt.Errorf("bandwidth: %w", err)
	}
	r.Bandwidth = bw
	r.Rounds["bandwidth"] = fmt.Sprint(bwOpt.Rounds)
	return nil
}

// measureSweep times the filter with its breakdown over a sweep of square and skinny shapes,
// full and half spectrum (section 2), and returns the timing options the model shapes share.
func measureSweep(r *report.Report, b backends.Backend, quick bool) (benchmarks.Options, error) {
	sizes := []int{64, 128, 256, 512, 1024, 2048, 4096}
	skinny := [][]int{{16, 16384}, {16384, 16}, {256, 4096}, {4096, 256}, {65536}}
	filterOpt := benchmarks.Options{Warmup: 2, Rounds: 9, MinSample: 20 * time.Millisecond, Budget: 30 * time.Second, MinRounds: 5}
	if quick {
		sizes, skinny = []int{64, 256}, [][]int{{16, 1024}}
		filterOpt = benchmarks.Options{Warmup: 1, Rounds: 3, MinSample: 5 * time.Millisecond}
	}
	var sweep []benchmarks.FilterSpec
	for _, half := range []bool{false, true} {
		for _, n := range sizes {
			sweep = append(sweep, benchmarks.FilterSpec{Label: "square", Dims: []int{n, n}, Half: half, Parts: true})
		}
		for _, d := range skinny {
			sweep = append(sweep, benchmarks.FilterSpec{Label: "skinny", Dims: d, Half: half, Parts: true})
		}
	}
	var err error
	r.Sweep, err = benchmarks.MeasureFilter(b, sweep, filterOpt, progress)
	if err != nil {
		return benchmarks.Options{}, err
	}
	r.Rounds["filter sweep"] = fmt.Sprintf("up to %d (at least %d, %s budget per shape)", filterOpt.Rounds, filterOpt.MinRounds, filterOpt.Budget)
	if quick {
		r.Rounds["filter sweep"] = fmt.Sprint(filterOpt.Rounds)
	}
	return filterOpt, nil
}

// measureModelShapes times the whole filter on every distinct variable shape of the presets (and
// GPT-2 small unless quick or !gpt2), and on one square variable with as many elements as each.
func measureModelShapes(r *report.Report, b backends.Backend, quick, gpt2 bool, filterOpt benchmarks.Options) error {
	modelNames := []string{"tiny", "cpu", "paper"}
	if gpt2 && !quick {
		modelNames = append(modelNames, "GPT-2 small")
	} else {
		r.Notes = append(r.Notes, "GPT-2 small's variable shapes (run without -quick and with -gpt2).")
	}
	var modelSpecs []benchmarks.FilterSpec
	seen := map[string]bool{}
	for _, name := range modelNames {
		cfg := gptbench.GPT2Small()
		if name != "GPT-2 small" {
			var err error
			if cfg, err = gpt.Preset(name); err != nil {
				return err
			}
		}
		shapes, params, err := gptbench.ModelShapes(b, cfg)
		if err != nil {
			return err
		}
		// One square variable with as many elements: what the filter costs without the
		// per-variable fixed costs.
		// Not for GPT-2 small: an 11151x11151 filter would take minutes of this run.
		side := int(math.Round(math.Sqrt(float64(params))))
		if name == "GPT-2 small" {
			side = 0
		}
		r.Models = append(r.Models, report.ModelInfo{Name: name, Params: params, Shapes: shapes, EqualSquare: side})
		if side > 0 {
			shapes = append(shapes[:len(shapes):len(shapes)], benchmarks.ModelShape{Dims: []int{side, side}, Count: 1})
		}
		for _, sh := range shapes {
			key := fmt.Sprint(sh.Dims)
			if seen[key] {
				continue
			}
			seen[key] = true
			label := name
			if len(sh.Names) == 0 {
				label += ", equal-size square"
			}
			for _, half := range []bool{false, true} {
				modelSpecs = append(modelSpecs, benchmarks.FilterSpec{Label: label, Dims: sh.Dims, Half: half})
			}
		}
	}
	modelOpt := filterOpt
	modelOpt.Budget = 10 * time.Second
	var err error
	r.ModelFilters, err = benchmarks.MeasureFilter(b, modelSpecs, modelOpt, progress)
	if err != nil {
		return err
	}
	r.Rounds["model shapes"] = fmt.Sprintf("up to %d (at least %d, %s budget per shape)", modelOpt.Rounds, modelOpt.MinRounds, modelOpt.Budget)
	return nil
}

// measureFilterGraphs times each model's filter as one graph, full and half spectrum and the
// FFTs alone, interleaved.
func measureFilterGraphs(r *report.Report, b backends.Backend, quick bool) error {
	graphOpt := benchmarks.Options{Warmup: 2, Rounds: 9, MinSample: 50 * time.Millisecond, Budget: time.Minute, MinRounds: 3}
	if quick {
		graphOpt = benchmarks.Options{Warmup: 1, Rounds: 3}
	}
	for i := range r.Models {
		m := &r.Models[i]
		logf("filter graph %s", m.Name)
		var cases []benchmarks.Case
		var cleanups []func()
		for _, half := range []bool{false, true} {
			name := "full"
			if half {
				name = "half"
			}
			c, cleanup, err := benchmarks.ModelFilterCase(b, name, m.Shapes, half)
			if err != nil {
				return fmt.Errorf("filter graph %s: %w", m.Name, err)
			}
			cases, cleanups = append(cases, c), append(cleanups, cleanup)
		}
		c, cleanup, err := benchmarks.ModelFFTCase(b, report.GraphFFTs, m.Shapes)
		if err != nil {
			return fmt.Errorf("filter graph %s: %w", m.Name, err)
		}
		cases, cleanups = append(cases, c), append(cleanups, cleanup)
		res, err := benchmarks.Interleave(cases, graphOpt)
		for _, c := range cleanups {
			c()
		}
		if err != nil {
			return fmt.Errorf("filter graph %s: %w", m.Name, err)
		}
		m.Graph = res
	}
	r.Rounds["model filter graphs"] = fmt.Sprintf("up to %d (at least %d, %s budget per model)", graphOpt.Rounds, graphOpt.MinRounds, graphOpt.Budget)
	return nil
}

// readPluginKernels reads the XLA CPU plugin's precompiled kernels from its symbol table
// (section 7), or notes why not.
func readPluginKernels(r *report.Report) {
	r.CPUFlags = machine.VectorFlags()
	if path := filepath.Join(backend.PluginDir(), backend.PluginFileName); strings.Contains(r.Env.BackendDesc, path) {
		if k, err := gptbench.ReadPluginKernels(path); err == nil {
			r.Plugin = &k
		} else {
			r.Notes = append(r.Notes, fmt.Sprintf("Section 7 (the plugin's kernels): %v.", err))
		}
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("Section 7 (the plugin's kernels): the backend is not the project's XLA CPU plugin (%s).", path))
	}
}

// plotDir is the folder of the report out's plots: beside it, named after it in lower case
// without its extension (docs/BENCHMARKS.md's are in docs/benchmarks).
func plotDir(out string) string {
	base := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	return filepath.Join(filepath.Dir(out), strings.ToLower(base))
}

// writeReport writes the report to out and its plots to the folder named after it.
func writeReport(r *report.Report, out string, start time.Time) error {
	r.Env.LoadEnd = gptbench.LoadAverage()
	r.Elapsed = time.Since(start)
	plotDir := plotDir(out)
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := r.Write(&buf, plotDir, filepath.Base(plotDir)); err != nil {
		return err
	}
	if err := writeFile(out, buf.Bytes()); err != nil {
		return err
	}
	logf("wrote %s and %s/ in %s", out, plotDir, r.Elapsed.Round(time.Second))
	return nil
}

// measureSteps times the step pairs of each preset whose base is in bases, and logs their ratios.
func measureSteps(r *report.Report, b backends.Backend, quick bool, presets []string, paperRounds int, bases []string) error {
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		opts, err := stepConfigurations(bases)
		if err != nil {
			return err
		}
		stepOpt := benchmarks.Options{Warmup: 3, Rounds: 21, MinSample: 100 * time.Millisecond, Budget: 3 * time.Minute, MinRounds: 7}
		if preset == "paper" {
			// Seconds per step on a CPU: the AdamW trio only, few rounds.
			opts = slices.DeleteFunc(opts, func(o string) bool { return !strings.Contains(o, gptbench.OptAdamW) })
			// Rounds sized by time: seconds per step on a CPU, milliseconds on a GPU.
			stepOpt = benchmarks.Options{Warmup: 2, Rounds: paperRounds, MinSample: 200 * time.Millisecond,
				Budget: 3 * time.Minute, MinRounds: min(paperRounds, 5)}
			r.Notes = append(r.Notes, fmt.Sprintf("`paper` preset: AdamW and SMI(AdamW) full and half only, up to %d rounds "+
				"within a %v budget (a step takes seconds on this CPU); SGD-momentum and Lion pairs on the smaller presets.",
				paperRounds, stepOpt.Budget))
		}
		if quick {
			stepOpt = benchmarks.Options{Warmup: 1, Rounds: 3}
		}
		if len(opts) == 0 {
			continue
		}
		res, err := gptbench.MeasureSteps(b, preset, cfg, opts, stepOpt, func(s string) { logf("%s", s) })
		if err != nil {
			return err
		}
		r.Steps = append(r.Steps, res)
		r.Rounds["step "+preset] = fmt.Sprint(len(res.Results[0].Samples))
		for _, pair := range append(slices.Clone(gptbench.AdamWPairs), gptbench.OtherPairs...) {
			a, okA := res.Time(pair.Base)
			s, okS := res.Time(pair.SMI)
			if okA && okS {
				logf("step %s: %s", preset, pairedLine(pair.SMI, s, pair.Base, a))
			}
		}
	}
	return nil
}

// stepConfigurations are the optimizer configurations timed for the base optimizers of -bases:
// each base, SMI around it, and SMI's half-spectrum variant.
func stepConfigurations(bases []string) ([]string, error) {
	var opts []string
	for _, base := range bases {
		switch base {
		case gptbench.OptAdamW:
			opts = append(opts, gptbench.OptAdamW, gptbench.OptSMIAdamW, gptbench.OptSMIAdamWH)
		case gptbench.OptSGDM:
			opts = append(opts, gptbench.OptSGDM, gptbench.OptSMISGDM, gptbench.OptSMISGDMH)
		case gptbench.OptLion:
			opts = append(opts, gptbench.OptLion, gptbench.OptSMILion, gptbench.OptSMILionHalf)
		default:
			return nil, fmt.Errorf("unknown base optimizer %q in -bases (AdamW, SGD-momentum or Lion)", base)
		}
	}
	return opts, nil
}

// runSteps is -sections steps: the step ratios only, logged; no report is written.
func runSteps(quick bool, presets []string, paperRounds int, bases []string) error {
	b := backend.ForMain()
	r := &report.Report{Env: gptbench.CurrentEnv(b), Rounds: map[string]string{}}
	logf("load average at start: %s", gptbench.LoadAverage())
	err := measureSteps(r, b, quick, presets, paperRounds, bases)
	logf("load average at end: %s", gptbench.LoadAverage())
	return err
}

// splitList splits a comma-separated flag; "" is the empty list.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// strategyIDs lists the strategies' IDs for the flag's help.
func strategyIDs() string {
	var ids []string
	for _, s := range benchmarks.Strategies {
		ids = append(ids, s.ID)
	}
	return strings.Join(ids, ", ")
}
