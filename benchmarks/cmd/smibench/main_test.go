package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/report"
	"github.com/smi-gomlx/smi/internal/cli"
)

// TestCheckFlags: every mistake checkFlags is for is reported by its flag, and make bench's and
// gpu-check.sh's flags pass.
func TestCheckFlags(t *testing.T) {
	type flags struct {
		args                                 []string
		section, render                      string
		presets, parts, devicesPreset, bases string
		paperRounds                          int
		budget                               time.Duration
	}
	check := func(f flags) error {
		return checkFlags(f.args, f.section, f.render, f.presets, f.parts, f.devicesPreset, f.bases, f.paperRounds, f.budget)
	}
	ok := flags{nil, "all", "", "tiny,cpu,paper", "cpu", "cpu", "AdamW,SGD-momentum,Lion", 15, time.Minute}
	for _, f := range []flags{ok,
		{nil, "steps", "", "cpu,paper", "", "cpu", "AdamW", 2, 45 * time.Second}, // gpu-check.sh, make bench-plugins
		// Sections that time no preset or no base optimizer take empty lists.
		{nil, "devices", "", "", "cpu", "cpu", "", 15, time.Minute},
		{nil, "strategies", "", "cpu", "cpu", "cpu", "", 15, time.Minute},
		{nil, sectionRender, "a.json,b.json", "", "cpu", "cpu", "", 15, time.Minute},
	} {
		if err := check(f); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
	for want, change := range map[string]func(*flags){
		`unexpected arguments ["extra"]`:                                 func(f *flags) { f.args = []string{"extra"} },
		`-presets: gpt.Preset: unknown preset "papr"`:                    func(f *flags) { f.presets = "tiny,papr" },
		`-presets: gpt.Preset: unknown preset ""`:                        func(f *flags) { f.presets = "tiny," },
		"-presets is empty: -sections all":                               func(f *flags) { f.presets = "" },
		"-presets is empty: -sections gpu-programs":                      func(f *flags) { f.section, f.presets = "gpu-programs", " " },
		"-bases is empty: -sections steps":                               func(f *flags) { f.section, f.bases = "steps", "" },
		`-parts-presets: gpt.Preset: unknown preset "x"`:                 func(f *flags) { f.parts = "x" },
		`-devices-preset: gpt.Preset: unknown preset "y"`:                func(f *flags) { f.devicesPreset = "y" },
		`unknown base optimizer "Adam" in -bases`:                        func(f *flags) { f.bases = "AdamW,Adam" },
		"-paper-rounds must be at least 2":                               func(f *flags) { f.paperRounds = 1 },
		"-budget must be positive":                                       func(f *flags) { f.budget = -time.Second },
		`-sections must be all, steps,`:                                  func(f *flags) { f.section = "step" },
		`-render-strategies: want JSON files, comma-separated, got ""`:   func(f *flags) { f.section = sectionRender },
		`-render-strategies: want JSON files, comma-separated, got "a,"`: func(f *flags) { f.section, f.render = sectionRender, "a," },
	} {
		f := ok
		change(&f)
		if err := check(f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: got %v, want an error containing %q", f, err, want)
		}
	}
}

// TestParseCounts: -devices takes counts >= 1, each once, like the study's -runs.
func TestParseCounts(t *testing.T) {
	if counts, err := parseCounts(" 1,2, 4,"); err != nil || len(counts) != 3 || counts[2] != 4 {
		t.Errorf("parseCounts(1,2,4): %v, %v", counts, err)
	}
	if counts, err := parseCounts(""); err != nil || len(counts) != 0 {
		t.Errorf("parseCounts(\"\"): %v, %v", counts, err)
	}
	for s, want := range map[string]string{"1,1": "-devices: 1 is given twice", "2,4,2": "-devices: 2 is given twice",
		"0": `-devices: "0" is not a device count >= 1`, "x": `"x" is not a device count`} {
		if _, err := parseCounts(s); err == nil || err.Error() != want && !strings.Contains(err.Error(), want) {
			t.Errorf("parseCounts(%q): got %v, want %q", s, err, want)
		}
	}
}

// TestDevicesFit: counts beyond the backend's devices are left out with a note; none left is a
// usage error for counts the user gave, and a skipped section for the default's.
func TestDevicesFit(t *testing.T) {
	d, notes, err := devicesSection{counts: []int{1, 2, 8}, explicit: true}.fit(4)
	if err != nil || len(d.counts) != 2 || len(notes) != 1 || notes[0] != "8 devices: the backend has 4." {
		t.Errorf("1,2,8 on 4 devices: %v, %q, %v", d.counts, notes, err)
	}
	_, _, err = devicesSection{counts: []int{8, 1000}, explicit: true}.fit(4)
	if !cli.IsUsage(err) || !strings.Contains(err.Error(), "-devices 8,1000: the backend has 4 device(s)") {
		t.Errorf("8,1000 on 4 devices, given: got %v, want a usage error", err)
	}
	d, notes, err = devicesSection{counts: []int{2, 4}}.fit(1)
	if err != nil || len(d.counts) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "the backend has 1 device(s)") {
		t.Errorf("default 2,4 on 1 device: %v, %q, %v; want the section skipped with a note", d.counts, notes, err)
	}
	d, notes, err = devicesSection{}.fit(4)
	if err != nil || len(d.counts) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "-devices was empty") {
		t.Errorf("no counts: %v, %q, %v", d.counts, notes, err)
	}
	if err := (devicesSection{preset: "tiny"}).measure(nil, nil, true); err == nil || !strings.Contains(err.Error(), "no device count to measure") {
		t.Errorf("measure without counts: got %v, want an error", err)
	}
}

// TestDevicesChildArgs: the several-devices child of the report's run measures the section as
// the parent was asked to, on the parent's -device, and its arguments pass the child's own checks.
func TestDevicesChildArgs(t *testing.T) {
	d := devicesSection{preset: "cpu", counts: []int{1, 2}, device: "cuda"}
	got := strings.Join(d.childArgs(true, "out.json"), " ")
	if want := "-sections devices -devices 1,2 -devices-preset cpu -devices-json out.json -device cuda -quick"; got != want {
		t.Errorf("child arguments %q, want %q", got, want)
	}
	d.device = ""
	args := d.childArgs(false, "out.json")
	if slices.Contains(args, "-device") || slices.Contains(args, "-quick") {
		t.Errorf("child arguments %q: no -device or -quick was given", args)
	}
	given := map[string]bool{}
	for _, a := range d.childArgs(true, "x") {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			given[name] = true
		}
	}
	given["device"] = true
	if err := checkSectionFlags("devices", given); err != nil {
		t.Errorf("the child would refuse its arguments: %v", err)
	}
}

// TestCheckOutputs: an output that cannot be written is refused by its flag; one that can leaves
// nothing behind, and an existing file is left as it was.
func TestCheckOutputs(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.json")
	if err := os.WriteFile(existing, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(dir, "a", "b", "report.md")
	for _, section := range []string{"all", sectionRender, "devices", "strategies", "gpu-programs", "plugins"} {
		outs, err := outputs(section, deep, existing, existing, deep, filepath.Join(dir, "p", "q"))
		if err != nil || len(outs) == 0 {
			t.Fatalf("%s: outputs %v, %v", section, outs, err)
		}
		if err := checkOutputs(outs); err != nil {
			t.Errorf("%s: %v", section, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if raw, _ := os.ReadFile(existing); len(entries) != 1 || string(raw) != "kept" {
		t.Errorf("the checks left %d entries in %s (want old.json alone), and old.json holds %q", len(entries), dir, raw)
	}
	if outs, _ := outputs("steps", deep, existing, existing, deep, dir); len(outs) != 0 {
		t.Errorf("-sections steps writes nothing, got %v", outs)
	}

	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		section, out, json string
		want               string
	}{
		{"all", "/proc/x/b.md", "", "-out /proc/x/b.md: cannot write it: mkdir /proc/x"},
		{sectionRender, dir, "", "-out " + dir + ": cannot write it: it is a folder"},
		{"strategies", "", "/proc/x/s.json", "-json /proc/x/s.json: cannot write it"},
		{"devices", "", "/proc/x/a.json", "-devices-json /proc/x/a.json: cannot write it"},
		{"all", filepath.Join(dir, "report"), "", "the report and its plots' folder would both be"},
		{"all", blocker + ".md", "", "-out " + blocker + ".md: cannot write files in its plots' folder " + blocker},
		{"gpu-programs", "", "", "-programs-dir " + blocker + ": cannot write files in it: mkdir " + blocker},
	} {
		outs, err := outputs(c.section, c.out, c.json, c.json, "", blocker)
		if err == nil {
			err = checkOutputs(outs)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -out %q -json %q: got %v, want an error containing %q", c.section, c.out, c.json, err, c.want)
		}
	}
}

// TestWritersMakeTheFolder: each section's writer makes the folder of its output when it does not
// exist yet, as checkOutputs accepted before measuring: -json (strategies, gpu-programs),
// -devices-json and -render-strategies's -out. (-plugins-out and the report's -out use writeFile
// too; TestDevicesFitBeforeTheChild covers -devices-json from the command line.)
func TestWritersMakeTheFolder(t *testing.T) {
	dir := t.TempDir()
	jsonOut := filepath.Join(dir, "new", "s.json")
	if err := writeJSON(jsonOut, strategyFile(t, 10)); err != nil {
		t.Errorf("-json: %v", err)
	}
	devicesOut := filepath.Join(dir, "new2", "deeper", "d.json")
	if err := (devicesSection{json: devicesOut}).writeJSON(&report.Report{}); err != nil {
		t.Errorf("-devices-json: %v", err)
	}
	data := filepath.Join(dir, "s.json")
	raw, err := jsonBytes(strategyFile(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "new3", "strategies.md")
	if err := renderStrategies([]string{data}, rendered); err != nil {
		t.Errorf("-render-strategies -out: %v", err)
	}
	for _, path := range []string{jsonOut, devicesOut, rendered} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("not written: %v", err)
		}
	}
}

// TestMainChild is smibench itself when runSmibench starts this test binary with its arguments;
// otherwise it is skipped.
func TestMainChild(t *testing.T) {
	args, ok := os.LookupEnv("SMIBENCH_TEST_ARGS")
	if !ok {
		t.Skip("runs only as runSmibench's child")
	}
	self := os.Args[0]
	os.Args = append([]string{"smibench"}, strings.Split(args, "\x1f")...)
	// smibench's flags alone, as its own binary has them: not the test binary's, set already.
	flag.CommandLine = flag.NewFlagSet("smibench", flag.ExitOnError)
	// smibench running itself (the several-devices child) runs this test binary's TestMainChild.
	selfCommand = func(args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(self, "-test.run=^TestMainChild$")
		cmd.Env = append(os.Environ(), "SMIBENCH_TEST_ARGS="+strings.Join(args, "\x1f"))
		return cmd, nil
	}
	main()
}

// runSmibench runs main with args in a child process, for at most 30 s (each case here fails
// in about a second, before measuring), and returns its exit status and stderr.
func runSmibench(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainChild$")
	cmd.Env = append(os.Environ(), "SMIBENCH_TEST_ARGS="+strings.Join(args, "\x1f"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("smibench %q was still running after 30 s: a mistake found after measuring", args)
	} else if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestBadFlagsFailFast: mistakes in the flags, including outputs that cannot be written and
// device counts the backend lacks, stop smibench with status 2 and one clear line before it
// measures anything.
func TestBadFlagsFailFast(t *testing.T) {
	if testing.Short() {
		t.Skip("starts smibench a few times (-short)")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-quick", "-gpt2=false", "-devices", "", "-parts-presets", "", "-out", "/proc/x/b.md"}, "smibench: -out /proc/x/b.md: cannot write it"},
		{[]string{"-sections", "strategies", "-presets", "tiny", "-budget", "1s", "-json", "/proc/x/s.json"}, "smibench: -json /proc/x/s.json: cannot write it"},
		{[]string{"-sections", "devices", "-quick", "-devices-json", "/proc/x/a.json"}, "smibench: -devices-json /proc/x/a.json: cannot write it"},
		{[]string{"-render-strategies", ""}, `smibench: -render-strategies: want JSON files, comma-separated, got ""`},
		{[]string{"-sections", "steps", "-presets", ""}, "smibench: -presets is empty"},
		{[]string{"-sections", "steps", "-bases", ""}, "smibench: -bases is empty"},
		{[]string{"-sections", "devices", "-devices", "1,1"}, "smibench: -devices: 1 is given twice"},
		{[]string{"-sections", "strategies", "-strategies", "nope"}, `smibench: -strategies: unknown strategy "nope"`},
	} {
		code, stderr := runSmibench(t, c.args...)
		if code != 2 || strings.TrimSpace(stderr) != c.want && !strings.HasPrefix(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("smibench %q: status %d, stderr %q; want status 2 and one line %q", c.args, code, stderr, c.want)
		}
	}
}

// TestTooManyDevices: device counts all beyond the backend's devices are refused (status 2)
// before the section measures, not met with a panic.
func TestTooManyDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("creates the backend in a child process (-short)")
	}
	for _, args := range [][]string{
		{"-sections", "devices", "-devices", "1000", "-quick"},
		// The report's run: refused before its first section, not when its devices section starts.
		{"-quick", "-gpt2=false", "-parts-presets", "", "-devices", "1000", "-out", filepath.Join(t.TempDir(), "b.md")},
	} {
		code, stderr := runSmibench(t, args...)
		if code != 2 || !strings.Contains(stderr, "smibench: -devices 1000: the backend has") || strings.Contains(stderr, "panic") {
			t.Errorf("smibench %q: status %d, stderr %q; want status 2 and the backend's device count", args, code, stderr)
		}
	}
}

// TestSectionFlags: each section takes the flags it reads (make bench's, gpu-check.sh's and
// make gpu-program's among them) and refuses the others, naming the sections that read them;
// every flag smibench defines is read by some section.
func TestSectionFlags(t *testing.T) {
	given := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	for _, c := range []struct {
		section string
		flags   []string
	}{
		{"all", []string{"out", "pytorch"}},
		{"steps", []string{"sections", "presets", "bases"}},
		{"strategies", []string{"sections", "presets", "strategies", "budget", "json", "device"}},
		{"gpu-programs", []string{"sections", "presets", "strategies", "programs-python", "json"}},
		{"plugins", []string{"sections", "plugins", "presets", "paper-rounds", "plugins-out"}},
		{"devices", []string{"sections", "devices", "devices-preset", "devices-json", "quick"}},
		{sectionRender, []string{"render-strategies", "out"}},
		{sectionPluginWorker, []string{"plugin-worker", "presets"}},
	} {
		if err := checkSectionFlags(c.section, given(c.flags...)); err != nil {
			t.Errorf("%s %v: %v", c.section, c.flags, err)
		}
	}
	for _, c := range []struct {
		section string
		flags   []string
		want    string
	}{
		{"steps", []string{"sections", "budget"}, "-budget has no effect with -sections steps: it is read by -sections strategies"},
		{"strategies", []string{"quick"}, "-quick has no effect with -sections strategies: it is read by -sections all, -sections devices, -sections parts, -sections products, -sections steps"},
		{"devices", []string{"json"}, "-json has no effect with -sections devices: it is read by -sections gpu-programs, -sections strategies"},
		{"steps", []string{"out"}, "-out has no effect with -sections steps: it is read by -render-strategies, -sections all"},
		{sectionRender, []string{"out", "sections"}, "-sections has no effect with -render-strategies, which measures nothing"},
		{sectionRender, []string{"device"}, "-device has no effect with -render-strategies, which measures nothing"},
		{"plugins", []string{"sections", "device"}, "-device has no effect with -sections plugins, which compares XLA CPU plugins"},
		{"plugins", []string{"sections", "render-strategies"}, "-render-strategies renders reports and measures nothing: it does not go with -sections plugins"},
		{sectionPluginWorker, []string{"plugin-worker", "sections"}, "-sections has no effect with -plugin-worker (internal: the workers of -sections plugins)"},
	} {
		if err := checkSectionFlags(c.section, given(c.flags...)); err == nil || err.Error() != c.want {
			t.Errorf("%s %v: %v, want %q", c.section, c.flags, err, c.want)
		}
	}
	if testing.Short() {
		return
	}
	_, help := runSmibench(t, "-help")
	defined := 0
	for _, line := range strings.Split(help, "\n") {
		name, ok := strings.CutPrefix(line, "  -")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		defined++
		read := name == "sections" || name == "device"
		for _, flags := range sectionFlags {
			read = read || slices.Contains(flags, name)
		}
		if !read {
			t.Errorf("-%s is read by no section: checkSectionFlags refuses it everywhere", name)
		}
	}
	if defined < 20 {
		t.Errorf("-help listed %d flags, want them all:\n%s", defined, help)
	}
}

// TestDevicesFitBeforeTheChild: -sections devices on XLA CPU fits the counts to the backend's
// devices in its own process and measures those left in a child whose thread pool is prepared
// for them (not for a count it then drops), and writes what the child measured.
func TestDevicesFitBeforeTheChild(t *testing.T) {
	if testing.Short() {
		t.Skip("times data-parallel steps in a child process (-short)")
	}
	if os.Getenv(devicesChildEnv) != "" {
		t.Skip("a child already")
	}
	path := filepath.Join(t.TempDir(), "new", "devices.json") // a folder to be made, as checkOutputs allows
	code, stderr := runSmibench(t, "-sections", "devices", "-devices", "1,2,1000", "-devices-preset", "tiny", "-quick", "-devices-json", path)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "left out: 1000 devices: the backend has") || strings.Count(stderr, " backend xla") != 2 {
		t.Errorf("want the count left out, then a second process (its own backend line):\n%s", stderr)
	}
	// The ratio is paired by round, so the line gives it apart from the medians, not as their ratio.
	if !regexp.MustCompile(`devices tiny: 2 devices \S+ \S+, 1 device \S+ \S+ \(medians\); paired ratio \S+ \[\S+, \S+\] ` +
		`\(median of the \d+ rounds' ratios\)`).MatchString(stderr) {
		t.Errorf("want the paired ratio of 2 devices to 1 beside both medians:\n%s", stderr)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out devicesOutput
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Devices) != 1 || !slices.Equal(out.Devices[0].Counts, []int{1, 2}) ||
		len(out.Notes) != 1 {
		t.Errorf("-devices-json: %v, %s; want counts 1 and 2 and the note on 1000", err, raw)
	}
}
