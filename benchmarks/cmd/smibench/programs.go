package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// gpuProgramsKind marks a GPU-program report among the JSON files -render-strategies reads.
const gpuProgramsKind = "gpu-programs"

// gpuPrograms is -sections gpu-programs: the training steps SMI builds for a GPU, compiled by XLA's
// GPU compiler for a described GPU on a machine without one, and what they launch, counted.
//
// The steps are built here as on a CUDA backend (SMI's choices by platform read only the backend's
// description), compiled and run once on this machine's backend so that XLA writes each program's
// HLO (--xla_dump_to), then handed to a Python with jaxlib, which compiles them with the CUDA
// PJRT plugin for the target's device description and no device (scripts/gpu-program/compile.py).
// The optimized programs are counted with gptbench.ReadKernels.
type gpuPrograms struct {
	presets    []string
	strategies []benchmarks.Strategy
	python     string // a Python with jaxlib and the CUDA PJRT plugin (make gpu-program's)
	script     string // scripts/gpu-program/compile.py
	target     string // the GPU's description for XLA (a GpuTargetConfigProto in text format)
	jsonOut    string
	keep       string // folder for the HLO files, kept; a temporary one when ""
}

// programManifest is what gpuPrograms hands the compile script, and what it answers.
type programManifest struct {
	Target   string         `json:"target"`
	Programs []programEntry `json:"programs"`
	// Filled in by the compile script:
	Device  string `json:"device,omitempty"`  // the target's device_description_str
	Plugin  string `json:"plugin,omitempty"`  // the CUDA PJRT plugin's file, and its wheel's version
	Jaxlib  string `json:"jaxlib,omitempty"`  // jaxlib's version (the compile-only client)
	Options string `json:"options,omitempty"` // XLA_FLAGS the compilation ran with
}

type programEntry struct {
	Preset   string  `json:"preset"`
	Name     string  `json:"name"`
	HLO      string  `json:"hlo"`               // the program before XLA's passes (HloProto), from this machine's dump
	Compiled string  `json:"compiled"`          // the optimized program's text, written by the script
	Seconds  float64 `json:"seconds,omitempty"` // the script's compile time
	Error    string  `json:"error,omitempty"`   // the script's compile error, if any
}

// gpuProgramReport is -sections gpu-programs's JSON.
type gpuProgramReport struct {
	Kind     string `json:"kind"`
	Date     string `json:"date"`
	Revision string `json:"revision,omitempty"`
	// Host is the machine that compiled (no GPU needed), Device the GPU compiled for.
	Host    string             `json:"host"`
	Device  string             `json:"device"`
	Plugin  string             `json:"plugin"`
	Jaxlib  string             `json:"jaxlib"`
	Options string             `json:"options,omitempty"`
	Records []gpuProgramRecord `json:"records"`
}

type gpuProgramRecord struct {
	Preset string `json:"preset"`
	Name   string `json:"name"`
	// Kernels by class (gptbench.Kernels).
	Kernels     int   `json:"kernels"`
	Elementwise int   `json:"elementwise"`
	Reduce      int   `json:"reduce"`
	Scatter     int   `json:"scatter"`
	Product     int   `json:"product"`
	FFT         int   `json:"fft"`
	Other       int   `json:"other"`
	Small       int   `json:"small"`
	Bytes       int64 `json:"bytes"`
	// CompileSeconds is XLA's compilation for the GPU on the host, without autotuning (no device).
	CompileSeconds float64 `json:"compile_seconds"`
}

// dumpFlags adds to XLA flags those that make XLA write, under dir, each training step's program
// (GoMLX names its module Trainer...) as an HloProto before XLA's passes.
func dumpFlags(flags, dir string) string {
	return strings.TrimSpace(flags + " --xla_dump_to=" + dir + " --xla_dump_hlo_as_proto --xla_dump_hlo_module_re=Trainer")
}

// cudaDescribed is b described as CUDA (backend.DescribedAs): SMI builds its graphs as for CUDA, and
// they compile and run on b.
func cudaDescribed(b backends.Backend) backends.Backend {
	return backend.DescribedAs(b, "xla:cuda - graphs built as for CUDA, run by "+b.Description())
}

// run exports, compiles and counts the programs, logging each, and writes the JSON.
func (p gpuPrograms) run() error {
	for _, f := range []struct{ flag, path string }{{"-programs-script", p.script}, {"-programs-target", p.target}} {
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	if p.python == "" {
		return fmt.Errorf("-programs-python: a Python with jaxlib and JAX's CUDA PJRT plugin is needed (make gpu-program installs one)")
	}
	if _, err := exec.LookPath(p.python); err != nil {
		return fmt.Errorf("-programs-python: %w", err)
	}
	// Before minutes of exporting: does that Python have what the script imports?
	if out, err := exec.Command(p.python, "-c", "import jax, jaxlib, jax_plugins.xla_cuda13").CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("-programs-python %s cannot import jax, jaxlib and JAX's CUDA PJRT plugin (jax_plugins.xla_cuda13; "+
			"make gpu-program installs them): %s", p.python, lines[len(lines)-1])
	}
	dir := p.keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "smi-gpu-programs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dump := filepath.Join(dir, "xla-dump")
	// XLA reads XLA_FLAGS once, when the backend is created: set before it is. The compile script
	// gets the user's own (the dump is for this process's programs only).
	userFlags := os.Getenv("XLA_FLAGS")
	if err := os.Setenv("XLA_FLAGS", dumpFlags(userFlags, dump)); err != nil {
		return err
	}
	host := backend.ForMain()
	b := cudaDescribed(host)
	logf("building each training step as for CUDA, compiled here (%s) to export its program", backend.Description(host))
	programs, err := exportPrograms(b, p.presets, p.strategies, dump, dir)
	if err != nil {
		return err
	}
	man := programManifest{Target: p.target, Programs: programs}
	os.RemoveAll(dump)
	manPath := filepath.Join(dir, "programs.json")
	if err := writeJSON(manPath, man); err != nil {
		return err
	}
	cmd := exec.Command(p.python, p.script, manPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "XLA_FLAGS="+userFlags) // the last value of a variable wins
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", p.python, p.script, err)
	}
	raw, err := os.ReadFile(manPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		return fmt.Errorf("%s: %w", manPath, err)
	}
	env := gptbench.CurrentEnv(host)
	rep, err := summarizePrograms(man, fmt.Sprintf("%s (%d cores)", env.CPU, env.NumCPU), codeRevision(env))
	if err != nil {
		return err
	}
	for _, r := range rep.Records {
		logf("programs %s: %s for %s: %d kernels (%d under 1 MiB), %s moved, compiled in %.1f s", r.Preset, r.Name, rep.Device,
			r.Kernels, r.Small, gptbench.HumanBytes(r.Bytes), r.CompileSeconds)
	}
	if p.jsonOut == "" {
		return nil
	}
	if err := writeJSON(p.jsonOut, rep); err != nil {
		return err
	}
	logf("wrote %s", backend.HomeAsTilde(p.jsonOut))
	return nil
}

// exportPrograms writes, for each preset, the program of AdamW's training step and of SMI(AdamW)'s
// under each strategy, built on b, to dir (as <preset>-<i>.hlo.pb); XLA must be dumping the
// programs it compiles to dump.
func exportPrograms(b backends.Backend, presets []string, strategies []benchmarks.Strategy, dump, dir string) ([]programEntry, error) {
	var out []programEntry
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return nil, err
		}
		names := []string{gptbench.OptAdamW}
		for _, s := range strategies {
			names = append(names, gptbench.StrategyOpt(s))
		}
		for i, name := range names {
			start := time.Now()
			file, err := exportStep(b, cfg, name, dump, filepath.Join(dir, fmt.Sprintf("%s-%d.hlo.pb", preset, i)))
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", preset, name, err)
			}
			logf("programs %s: %s exported (%s)", preset, name, time.Since(start).Round(time.Second))
			out = append(out, programEntry{Preset: preset, Name: name, HLO: file,
				Compiled: strings.TrimSuffix(file, ".hlo.pb") + ".gpu.txt"})
		}
	}
	return out, nil
}

// summarizePrograms counts the kernels of each compiled program of a manifest the compile script
// answered; host is the machine that compiled, revision the code's.
func summarizePrograms(man programManifest, host, revision string) (gpuProgramReport, error) {
	rep := gpuProgramReport{Kind: gpuProgramsKind, Date: time.Now().UTC().Format(time.RFC3339), Revision: revision, Host: host,
		Device: man.Device, Plugin: man.Plugin, Jaxlib: man.Jaxlib, Options: man.Options}
	if man.Device == "" || man.Plugin == "" {
		return rep, fmt.Errorf("the compile script did not say which GPU and plugin it compiled with")
	}
	for _, e := range man.Programs {
		if e.Error != "" {
			return rep, fmt.Errorf("%s %s: XLA could not compile it for %s: %s", e.Preset, e.Name, man.Device, e.Error)
		}
		text, err := os.ReadFile(e.Compiled)
		if err != nil {
			return rep, fmt.Errorf("%s %s: %w", e.Preset, e.Name, err)
		}
		k, err := gptbench.ReadKernels(string(text))
		if err != nil {
			return rep, fmt.Errorf("%s %s: %s: %w", e.Preset, e.Name, e.Compiled, err)
		}
		rep.Records = append(rep.Records, gpuProgramRecord{Preset: e.Preset, Name: e.Name, Kernels: k.Total(),
			Elementwise: k.Elementwise, Reduce: k.Reduce, Scatter: k.Scatter, Product: k.Product, FFT: k.FFT, Other: k.Other, Small: k.Small, Bytes: k.Bytes,
			CompileSeconds: e.Seconds})
	}
	return rep, nil
}

// exportStep builds the training step of cfg with the named configuration on b, runs it once (so
// that XLA compiles it and writes its program under dump), and moves the program's HloProto to
// dst.
func exportStep(b backends.Backend, cfg gpt.Config, name, dump, dst string) (string, error) {
	before, _ := filepath.Glob(filepath.Join(dump, "*.before_optimizations.hlo.pb"))
	t, err := gptbench.NewTrainer(b, cfg, name, 1)
	if err != nil {
		return "", err
	}
	defer t.Finalize()
	if _, err := t.StepLoss(); err != nil {
		return "", err
	}
	after, _ := filepath.Glob(filepath.Join(dump, "*.before_optimizations.hlo.pb"))
	var added []string
	for _, f := range after {
		if !slices.Contains(before, f) {
			added = append(added, f)
		}
	}
	if len(added) != 1 {
		return "", fmt.Errorf("XLA wrote %d programs for one training step under %s, want 1 (XLA_FLAGS is read once per process: "+
			"was a backend created before -sections gpu-programs set its dump flags?)", len(added), dump)
	}
	if err := os.Rename(added[0], dst); err != nil {
		return "", err
	}
	return dst, nil
}

// isGPUProgramReport reports whether raw is a gpuProgramReport's JSON.
func isGPUProgramReport(raw []byte) bool {
	var head struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(raw, &head) == nil && head.Kind == gpuProgramsKind
}

// writeGPUPrograms renders a gpuProgramReport as a section of the strategies report.
func writeGPUPrograms(buf *bytes.Buffer, raw []byte, path, out string) error {
	var rep gpuProgramReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(rep.Records) == 0 {
		return fmt.Errorf("%s: no records (not a GPU-program JSON as smibench -sections gpu-programs -json writes it)", path)
	}
	fmt.Fprintf(buf, "\n## What XLA compiles for a GPU: %s, compiled without one, %s\n\n", orUnknown(rep.Device), rep.Date)
	fmt.Fprintf(buf, "Counted, not timed. Each training step is built as SMI builds it on a CUDA backend, exported, and compiled "+
		"by XLA's GPU compiler (%s, through jaxlib %s's compile-only client) for this GPU's description, on a machine "+
		"without a GPU (%s); then the optimized program's entry computation is counted: every fusion is one kernel "+
		"launch, every FFT one cuFFT call; a fusion is classed by what it ends in (a reduction, a scatter: on a GPU, "+
		"atomic additions; a matrix product), the rest (elementwise work, transposes, concatenations, copies) as "+
		"elementwise. Bytes: each kernel's operands and results, summed (what it moves if it reads "+
		"each operand once). Without a device XLA does not autotune: on a GPU it may configure, and so count, the "+
		"product kernels differently. `auto` is SMI's default on a GPU (compare "+
		"counting, no batch limit). Code revision %s. Data: [%s](%s). Regenerate "+
		"with `make gpu-program`.\n\n", "`"+rep.Plugin+"`", rep.Jaxlib, rep.Host, orUnknown(rep.Revision), filepath.Base(path), relTo(out, path))
	if rep.Options != "" {
		fmt.Fprintf(buf, "XLA_FLAGS of the compilation: `%s`.\n\n", rep.Options)
	}
	base := map[string]gpuProgramRecord{}
	for _, r := range rep.Records {
		if r.Name == gptbench.OptAdamW {
			base[r.Preset] = r
		}
	}
	buf.WriteString("| preset | configuration | kernels | elementwise | reductions | scatters | products | FFTs | other | under 1 MiB | moved | kernels beyond AdamW | moved beyond AdamW | compile (s) |\n" +
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Records {
		extraK, extraB := "-", "-"
		if b, ok := base[r.Preset]; ok && r.Name != gptbench.OptAdamW {
			extraK = fmt.Sprintf("%+d", r.Kernels-b.Kernels)
			extraB = signedBytes(r.Bytes - b.Bytes)
		}
		fmt.Fprintf(buf, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %.1f |\n", r.Preset, r.Name, r.Kernels,
			r.Elementwise, r.Reduce, r.Scatter, r.Product, r.FFT, r.Other, r.Small, gptbench.HumanBytes(r.Bytes), extraK, extraB, r.CompileSeconds)
	}
	return nil
}

func signedBytes(n int64) string {
	if n < 0 {
		return "-" + gptbench.HumanBytes(-n)
	}
	return "+" + gptbench.HumanBytes(n)
}
