package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// strategyRecord is one configuration's timing in the strategy section's JSON.
type strategyRecord struct {
	Preset    string    `json:"preset"`
	Name      string    `json:"name"`
	MedianMS  float64   `json:"median_ms"`
	SamplesMS []float64 `json:"samples_ms"`
	// Ratio to AdamW, paired by round, with its 95% interval (absent for AdamW itself).
	Ratio   float64 `json:"ratio,omitempty"`
	RatioLo float64 `json:"ratio_lo,omitempty"`
	RatioHi float64 `json:"ratio_hi,omitempty"`
}

// strategyReport is the strategy section's JSON: the backend and the records.
type strategyReport struct {
	Backend string `json:"backend"`
	// Device names the accelerator (nvidia-smi's name and driver) or the CPU model.
	Device string `json:"device,omitempty"`
	Date   string `json:"date"`
	// Revision is the code's git revision (from the binary's build information; "+dirty" when
	// built from a modified tree).
	Revision string `json:"revision,omitempty"`
	// Note says what a reader needs to know that the figures do not (added by hand, when any).
	Note    string           `json:"note,omitempty"`
	Records []strategyRecord `json:"records"`
}

// runStrategies is -sections strategies: AdamW and SMI(AdamW) under each of the filter
// strategies, interleaved with a time budget per preset, logged; with jsonPath the
// figures are also written there.
func runStrategies(presets []string, strategies []benchmarks.Strategy, budget time.Duration, jsonPath string) error {
	b := backend.ForMain()
	env := gptbench.CurrentEnv(b)
	rep := strategyReport{Backend: backend.Description(b), Device: deviceName(b, env), Date: time.Now().UTC().Format(time.RFC3339),
		Revision: codeRevision(env)}
	logf("backend: %s", rep.Backend)
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		res, err := gptbench.MeasureStrategies(b, preset, cfg, strategies, benchmarks.StepOptions(budget),
			func(s string) { logf("%s", s) })
		if err != nil {
			return err
		}
		base, _ := res.Time(gptbench.OptAdamW)
		for _, r := range res.Results {
			if r.Name != gptbench.OptAdamW {
				logf("strategies %s: %s", preset, pairedLine(r.Name, r, gptbench.OptAdamW, base))
			}
			rep.Records = append(rep.Records, strategyRecordOf(preset, r, base))
		}
	}
	if jsonPath == "" {
		return nil
	}
	if err := writeJSON(jsonPath, rep); err != nil {
		return err
	}
	logf("wrote %s", backend.HomeAsTilde(jsonPath))
	return nil
}

// strategyRecordOf is r's record, with its ratio to base, AdamW's result, unless r is AdamW's.
func strategyRecordOf(preset string, r, base benchmarks.Result) strategyRecord {
	rec := strategyRecord{Preset: preset, Name: r.Name, MedianMS: ms(r.Median())}
	for _, s := range r.Samples {
		rec.SamplesMS = append(rec.SamplesMS, ms(s))
	}
	if r.Name != gptbench.OptAdamW {
		ratio := benchmarks.PairedRatio(base, r)
		rec.Ratio, rec.RatioLo, rec.RatioHi = ratio.Median, ratio.Lo, ratio.Hi
	}
	return rec
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// selectStrategies returns the strategies whose IDs are listed (all for none).
func selectStrategies(ids []string) ([]benchmarks.Strategy, error) {
	if len(ids) == 0 {
		return benchmarks.Strategies, nil
	}
	var out []benchmarks.Strategy
	for _, id := range ids {
		s, ok := benchmarks.StrategyByID(strings.TrimSpace(id))
		if !ok {
			var known []string
			for _, st := range benchmarks.Strategies {
				known = append(known, st.ID)
			}
			return nil, fmt.Errorf("-strategies: unknown strategy %q (known: %s)", id, strings.Join(known, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

// deviceName describes what the backend computes on: the GPU's name and driver from nvidia-smi on
// a CUDA backend, else the CPU model.
func deviceName(b backends.Backend, env gptbench.Env) string {
	if backend.PlatformOf(b) == "cuda" {
		out, err := exec.Command("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader").Output()
		if err == nil {
			return "GPU: " + strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]) + " (driver)"
		}
	}
	return fmt.Sprintf("CPU: %s (%d cores)", env.CPU, env.NumCPU)
}

// codeRevision is the code's revision: the binary's (buildRevision), else, as under go run, which
// records none, what git says of this checkout (env.Revision).
func codeRevision(env gptbench.Env) string {
	if r := buildRevision(); r != "" {
		return r
	}
	return env.Revision
}

// buildRevision is the git revision the binary was built from, "+dirty" when the tree was
// modified, or "" when the build recorded none (go test binaries, go run outside a checkout).
func buildRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// renderStrategies writes a Markdown report of strategy JSON files (runStrategies's), one section
// per file, to out: what the GPU section of the benchmarks is generated from.
func renderStrategies(jsonPaths []string, out string) error {
	var buf bytes.Buffer
	buf.WriteString("# SMI's filter strategies by backend\n\n")
	buf.WriteString("Generated by `go run ./benchmarks/cmd/smibench -render-strategies " + strings.Join(jsonPaths, ",") +
		" -out " + out + "` from the figures `smibench -sections strategies -json FILE` (or `scripts/gpu-check.sh`) measured. " +
		"Each table times one GPT training step (forward, backward, clipping, optimizer) with AdamW and with SMI(AdamW) " +
		"computed by each strategy, interleaved round by round in one process; the ratio is SMI's step over AdamW's of the " +
		"same round, its median and an approximately 95% interval. A strategy is how the filter is computed, never what: " +
		"the quantile's counting (`scatter`: ScatterSum histograms; `compare`: compare-and-reduce) and the batch limit " +
		"(the largest variable stacked with the others of its shape; `no limit` stacks every shape class). `q=0` keeps " +
		"every frequency and computes no threshold: it prices the rest of the filter.\n")
	var presets []string
	for _, path := range jsonPaths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if isGPUProgramReport(raw) {
			if err := writeGPUPrograms(&buf, raw, path, out); err != nil {
				return err
			}
			continue
		}
		var rep strategyReport
		if err := json.Unmarshal(raw, &rep); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := checkStrategyRecords(rep.Records); err != nil {
			return fmt.Errorf("%s: %w (not a strategies JSON as smibench -sections strategies -json writes it)", path, err)
		}
		fmt.Fprintf(&buf, "\n## %s, %s\n\n", orUnknown(rep.Device), rep.Date)
		fmt.Fprintf(&buf, "Backend: `%s`. Code revision: %s. Data: [%s](%s).\n\n", rep.Backend, orUnknown(rep.Revision),
			filepath.Base(path), relTo(out, path))
		if rep.Note != "" {
			fmt.Fprintf(&buf, "Note: %s\n\n", rep.Note)
		}
		buf.WriteString("| preset | configuration | median step | / AdamW (95% interval) | rounds |\n|---|---|---|---|---|\n")
		for _, r := range rep.Records {
			if !slices.Contains(presets, r.Preset) {
				presets = append(presets, r.Preset)
			}
			ratio := "1 (base)"
			if r.Ratio > 0 {
				ratio = fmt.Sprintf("%.3fx [%.3f, %.3f]", r.Ratio, r.RatioLo, r.RatioHi)
			}
			fmt.Fprintf(&buf, "| %s | %s | %.2f ms | %s | %d |\n", r.Preset, r.Name, r.MedianMS, ratio, len(r.SamplesMS))
		}
		buf.WriteString("\n" + goalLine(rep.Records) + "\n")
		if others := siblingFiles(path); len(others) > 0 {
			var links []string
			for _, f := range others {
				links = append(links, fmt.Sprintf("[%s](%s)", f, relTo(out, filepath.Join(filepath.Dir(path), f))))
			}
			buf.WriteString("\nThe same session's other outputs on this machine (discovery, smoke test, test runs): " +
				strings.Join(links, ", ") + ".\n")
		}
	}
	if err := writePrograms(&buf, presets); err != nil {
		return err
	}
	if err := writeFile(out, buf.Bytes()); err != nil {
		return err
	}
	logf("wrote %s", out)
	return nil
}

// checkStrategyRecords checks that the records are what runStrategies writes before any is
// rendered: at least one; each with a known preset, a name and its samples; one AdamW record per
// preset, without a ratio; and each median and ratio to AdamW what its samples give, so that no
// figure is rendered that its samples do not back.
func checkStrategyRecords(records []strategyRecord) error {
	if len(records) == 0 {
		return fmt.Errorf("no records")
	}
	results := make([]benchmarks.Result, len(records))
	base := map[string]int{} // preset -> index of its AdamW record
	for i, r := range records {
		if _, err := gpt.Preset(r.Preset); err != nil {
			return fmt.Errorf("record %d: %w", i+1, err)
		}
		if r.Name == "" {
			return fmt.Errorf("record %d (%s): no configuration name", i+1, r.Preset)
		}
		if len(r.SamplesMS) == 0 {
			return fmt.Errorf("record %d (%s %s): no samples", i+1, r.Preset, r.Name)
		}
		for _, v := range r.SamplesMS {
			if !(v > 0) || math.IsInf(v, 0) {
				return fmt.Errorf("record %d (%s %s): sample %v ms is not a time", i+1, r.Preset, r.Name, v)
			}
			results[i].Samples = append(results[i].Samples, time.Duration(math.Round(v*float64(time.Millisecond))))
		}
		if m := ms(results[i].Median()); !near(r.MedianMS, m) {
			return fmt.Errorf("record %d (%s %s): median %v ms, and its samples' is %v ms", i+1, r.Preset, r.Name, r.MedianMS, m)
		}
		if r.Name == gptbench.OptAdamW {
			if _, seen := base[r.Preset]; seen {
				return fmt.Errorf("record %d: a second %s record for %s", i+1, r.Name, r.Preset)
			}
			if r.Ratio != 0 || r.RatioLo != 0 || r.RatioHi != 0 {
				return fmt.Errorf("record %d (%s %s): a ratio to itself", i+1, r.Preset, r.Name)
			}
			base[r.Preset] = i
		}
	}
	for i, r := range records {
		if r.Name == gptbench.OptAdamW {
			continue
		}
		b, ok := base[r.Preset]
		if !ok {
			return fmt.Errorf("record %d (%s %s): no %s record for %s to be the ratio's base", i+1, r.Preset, r.Name, gptbench.OptAdamW, r.Preset)
		}
		if len(r.SamplesMS) != len(records[b].SamplesMS) {
			return fmt.Errorf("record %d (%s %s): %d samples, and %s has %d (the ratio pairs them by round)", i+1, r.Preset, r.Name,
				len(r.SamplesMS), gptbench.OptAdamW, len(records[b].SamplesMS))
		}
		want := benchmarks.PairedRatio(results[b], results[i])
		if !near(r.Ratio, want.Median) || !near(r.RatioLo, want.Lo) || !near(r.RatioHi, want.Hi) {
			return fmt.Errorf("record %d (%s %s): ratio %v [%v, %v] to %s, and its samples give %s", i+1, r.Preset, r.Name,
				r.Ratio, r.RatioLo, r.RatioHi, gptbench.OptAdamW, want)
		}
	}
	return nil
}

// near reports whether a stored figure is b up to the rounding of its JSON and milliseconds.
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(math.Abs(a), math.Abs(b))+1e-9
}

// writePrograms adds to a strategies report what each strategy's training step gives XLA, counted
// (gptbench.StepProgram) on the code that renders the report, for each preset.
func writePrograms(buf *bytes.Buffer, presets []string) error {
	b := backend.ForMain()
	buf.WriteString("\n## What each strategy gives XLA\n\n")
	fmt.Fprintf(buf, "Counted, not timed: the nodes of the graph GoMLX builds for one training step after the loss "+
		"(backward pass, clipping, update), by kind, at code revision %s (the code that rendered this file; the same "+
		"on every machine, since a strategy fixes SMI's choices by platform). XLA fuses elementwise nodes into few "+
		"kernels; on a GPU every FFT and every scatter is a kernel of its own (a scatter-add, contended atomics), and "+
		"every reduction about one (XLA may fuse sibling reductions into one kernel, or split a very long one in two). `auto` is `scatter, limit 65536` on CPUs and `compare, no limit` on GPUs and "+
		"TPUs.\n", orUnknown(gptbench.CurrentEnv(b).Revision))
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		fmt.Fprintf(buf, "\n**`%s`** (%d layers):\n\n", preset, cfg.NLayer)
		buf.WriteString("| configuration | nodes | FFTs | scatters | reductions | gathers |\n|---|---:|---:|---:|---:|---:|\n")
		names := []string{gptbench.OptAdamW}
		for _, s := range benchmarks.Strategies {
			if s.ID != "auto" {
				names = append(names, gptbench.StrategyOpt(s))
			}
		}
		for _, name := range names {
			p, err := gptbench.StepProgram(b, cfg, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(buf, "| %s | %d | %d | %d | %d | %d |\n", p.Name, p.Nodes, p.FFTs, p.Scatters, p.Reductions, p.Gathers)
		}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// relTo is path relative to the folder of the file out (for links), or path when that fails. Both
// are made absolute first: filepath.Rel fails on an absolute and a relative path, and the
// link must resolve from out's folder whichever of them the command line gave relative.
func relTo(out, path string) string {
	absOut, errOut := filepath.Abs(out)
	absPath, errPath := filepath.Abs(path)
	if errOut != nil || errPath != nil {
		return path
	}
	rel, err := filepath.Rel(filepath.Dir(absOut), absPath)
	if err != nil {
		return path
	}
	return rel
}

// strategyGoal is the goal the strategy section checks: SMI(AdamW) at most this many times
// AdamW's step (the paper's claim is about 1.045).
const strategyGoal = 1.05

// goalLine says, per preset, whether the fastest SMI strategy (q = 0 aside, which is no
// strategy) meets strategyGoal: met when its interval's upper end is within it, "median only"
// when only its median is.
func goalLine(records []strategyRecord) string {
	best := map[string]strategyRecord{}
	var presets []string
	for _, r := range records {
		if !slices.Contains(presets, r.Preset) {
			presets = append(presets, r.Preset)
		}
		if r.Ratio == 0 || strings.Contains(r.Name, "q=0") || strings.Contains(r.Name, "q0-") {
			continue
		}
		if b, seen := best[r.Preset]; !seen || r.Ratio < b.Ratio {
			best[r.Preset] = r
		}
	}
	var parts []string
	for _, p := range presets {
		r, ok := best[p]
		if !ok {
			parts = append(parts, fmt.Sprintf("`%s`: not judged, no strategy that computes the threshold was timed (q=0 prices the rest of the filter only)", p))
			continue
		}
		verdict := "not met"
		switch {
		case r.RatioHi <= strategyGoal:
			verdict = "met"
		case r.Ratio <= strategyGoal:
			verdict = "met by the median only, not by the interval"
		}
		parts = append(parts, fmt.Sprintf("`%s`: fastest %s at %.3fx [%.3f, %.3f], goal <= %.2fx %s", p, r.Name, r.Ratio,
			r.RatioLo, r.RatioHi, strategyGoal, verdict))
	}
	return "Goal SMI(AdamW) / AdamW <= " + fmt.Sprintf("%.2f", strategyGoal) + "x per step: " + strings.Join(parts, "; ") + "."
}

// siblingFiles lists the other files in path's folder.
func siblingFiles(path string) []string {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != filepath.Base(path) {
			out = append(out, e.Name())
		}
	}
	return out
}
