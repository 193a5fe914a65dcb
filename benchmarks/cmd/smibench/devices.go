package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/report"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// devicesSection is the data-parallel step benchmark's settings (-devices, -devices-preset).
type devicesSection struct {
	preset   string
	counts   []int  // none: the section is skipped
	explicit bool   // the counts were given (-devices), not its default
	json     string // -devices-json: where -sections devices writes its results
	device   string // -device, for the child process (measureInChild)
}

// devicesOutput is what -sections devices writes to -devices-json for the report's run.
type devicesOutput struct {
	Devices []gptbench.DevicesResult
	Notes   []string
	Rounds  string
}

// measureInChild runs the section in a child process (this command with -sections devices):
// the XLA CPU plugin must be prepared for several devices before it is loaded (see
// backend.PrepareDevices), and the other sections keep the plugin's default thread pool. d's
// counts are fit's: without any, fit's notes say why, and nothing is run.
func (d devicesSection) measureInChild(r *report.Report, quick bool) error {
	if len(d.counts) == 0 {
		return nil
	}
	f, err := os.CreateTemp("", "smibench-devices-*.json")
	if err != nil {
		return err
	}
	_ = f.Close()
	defer os.Remove(f.Name())
	args := d.childArgs(quick, f.Name())
	cmd, err := selfCommand(args...)
	if err != nil {
		return err
	}
	cmd.Env = append(cmd.Environ(), devicesChildEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("several devices (%s %s): %w", cmd.Path, strings.Join(args, " "), err)
	}
	raw, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	var out devicesOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("several devices: %w", err)
	}
	r.Devices = append(r.Devices, out.Devices...)
	r.Notes = append(r.Notes, out.Notes...)
	if out.Rounds != "" {
		r.Rounds["several devices"] = out.Rounds
	}
	return nil
}

// inChild reports whether d's counts (fit's) are measured in a child process (measureInChild)
// rather than in this one: on XLA CPU, whose thread pool must be prepared for them before the
// plugin loads; not on a GPU, where a second process would find the GPU's memory taken by this
// one's allocator (GoMLX gives PJRT no allocator options).
func (d devicesSection) inChild(b backends.Backend) bool {
	return len(d.counts) > 0 && backend.PlatformOf(b) == backend.DeviceCPU
}

// childArgs are the command-line arguments of measureInChild's child: this section, on the same
// device as the parent (-device; $SMI_DEVICE the child inherits), its results written to jsonPath.
func (d devicesSection) childArgs(quick bool, jsonPath string) []string {
	args := []string{"-sections", "devices", "-devices", joinCounts(d.counts), "-devices-preset", d.preset, "-devices-json", jsonPath}
	if d.device != "" {
		args = append(args, "-device", d.device)
	}
	if quick {
		args = append(args, "-quick")
	}
	return args
}

func (d devicesSection) isDefault() bool {
	return d.preset == "cpu" && slices.Equal(d.counts, []int{1, 2, 4})
}

// parseCounts parses -devices: device counts >= 1, each once.
func parseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-devices: %q is not a device count >= 1", f)
		}
		if slices.Contains(counts, n) {
			return nil, fmt.Errorf("-devices: %d is given twice", n)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// fit leaves out the counts beyond the backend's n devices, each with a note, before anything is
// measured. When none is left, the section is skipped with a note if the counts are -devices's
// default (a machine with fewer devices), and it is a usage error (cli.UsageError) if the user gave them.
func (d devicesSection) fit(n int) (devicesSection, []string, error) {
	if len(d.counts) == 0 {
		return d, []string{"Several devices (-devices was empty)."}, nil
	}
	var kept []int
	var notes []string
	for _, c := range d.counts {
		if c > n {
			notes = append(notes, fmt.Sprintf("%d devices: the backend has %d.", c, n))
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == 0 {
		if d.explicit {
			return d, nil, cli.Usagef("-devices %s: the backend has %d device(s), fewer than every count given",
				joinCounts(d.counts), n)
		}
		notes = []string{fmt.Sprintf("Several devices: the backend has %d device(s), fewer than every count of -devices's default %s.",
			n, joinCounts(d.counts))}
	}
	d.counts = kept
	return d, notes, nil
}

func joinCounts(counts []int) string {
	s := make([]string, len(counts))
	for i, n := range counts {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// measure times SMI(AdamW)'s training step of the preset on each device count (fit's, at least
// one) and adds the section to r.
func (d devicesSection) measure(r *report.Report, b backends.Backend, quick bool) error {
	if len(d.counts) == 0 {
		return fmt.Errorf("several devices: no device count to measure")
	}
	cfg, err := gpt.Preset(d.preset)
	if err != nil {
		return err
	}
	opt := benchmarks.Options{Warmup: 3, Rounds: 15, MinSample: 100 * time.Millisecond, Budget: 2 * time.Minute, MinRounds: 5}
	if quick {
		opt = benchmarks.Options{Warmup: 1, Rounds: 3}
	}
	res, err := gptbench.MeasureDevices(b, d.preset, cfg, gptbench.OptSMIAdamW, d.counts, opt, func(s string) { logf("%s", s) })
	if err != nil {
		return fmt.Errorf("several devices: %w", err)
	}
	r.Devices = append(r.Devices, res)
	r.Rounds["several devices"] = fmt.Sprint(len(res.Results[0].Samples))
	for _, line := range res.Summary() {
		logf("%s", line)
	}
	return nil
}

// selfCommand is this program run with args (tests run their own binary's TestMainChild instead).
var selfCommand = func(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, args...), nil
}

// devicesChildEnv marks measureInChild's child process (internal): its counts are fit already,
// and it measures them itself.
const devicesChildEnv = "SMIBENCH_DEVICES_CHILD"

// runDevices is -sections devices: the data-parallel step times, logged with their ratios to
// one device; no report is written. On XLA CPU the plugin's thread pool must be sized for the
// largest count before the plugin loads (backend.PrepareDevices), but the counts the backend has
// are known only once it has: so this process fits the counts on the plugin as it loads by
// default, and a child prepared for the largest that fits measures them (measureInChild), as in
// the report's run. Elsewhere, and in that child, they are measured here.
func runDevices(quick bool, d devicesSection) error {
	child := os.Getenv(devicesChildEnv) != ""
	if child && len(d.counts) > 0 {
		if err := backend.PrepareDevices(slices.Max(d.counts)); err != nil {
			return err
		}
	}
	b := backend.ForMain()
	r := &report.Report{Env: gptbench.CurrentEnv(b), Rounds: map[string]string{}}
	logf("backend %s, %d devices; load average at start: %s", b.Name(), b.NumDevices(), gptbench.LoadAverage())
	d, notes, err := d.fit(b.NumDevices())
	if err != nil {
		return err
	}
	r.Notes = append(r.Notes, notes...)
	if !child && d.inChild(b) {
		for _, note := range r.Notes {
			logf("left out: %s", note)
		}
		if err := d.measureInChild(r, quick); err != nil { // it logs the times and ratios
			return err
		}
		return d.writeJSON(r)
	}
	if len(d.counts) > 0 {
		if err := d.measure(r, b, quick); err != nil {
			return err
		}
	}
	for _, note := range r.Notes {
		logf("left out: %s", note)
	}
	if len(r.Devices) > 0 {
		res := r.Devices[0]
		for i := 1; i < len(res.Results); i++ {
			if res.Counts[0] == 1 {
				logf("devices %s: %s", res.Preset, pairedLine(fmt.Sprintf("%d devices", res.Counts[i]), res.Results[i],
					"1 device", res.Results[0]))
			}
		}
	}
	logf("load average at end: %s", gptbench.LoadAverage())
	return d.writeJSON(r)
}

// writeJSON writes the section's results in r to -devices-json, when given.
func (d devicesSection) writeJSON(r *report.Report) error {
	if d.json == "" {
		return nil
	}
	return writeJSON(d.json, devicesOutput{Devices: r.Devices, Notes: r.Notes, Rounds: r.Rounds["several devices"]})
}
