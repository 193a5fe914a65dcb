package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/report"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
	"github.com/smi-gomlx/smi/internal/machine"
)

// The plugins section (-sections plugins) times the same training steps under several XLA CPU
// plugins side by side: each plugin runs in a process of its own (this program with
// -plugin-worker and SMI_PJRT_PLUGIN, XLA_FLAGS set for it), and the parent interleaves their
// steps round by round, so each plugin's time is a ratio to the first plugin's, paired by round.
// Each worker also reports the losses of its first steps, which must agree across plugins.

// pluginVariant is one entry of -plugins: a plugin of backend.CPUPlugins and extra XLA flags,
// written NAME or NAME+FLAG+FLAG (e.g. xla-cpu-pjrt+--xla_cpu_max_isa=AVX2).
type pluginVariant struct {
	Plugin backend.CPUPlugin
	Flags  []string
}

func (v pluginVariant) String() string {
	return strings.Join(append([]string{v.Plugin.Name}, v.Flags...), " ")
}

func parsePluginVariants(list string) ([]pluginVariant, error) {
	var vs []pluginVariant
	for _, entry := range splitList(list) {
		parts := strings.Split(strings.TrimSpace(entry), "+")
		p, err := backend.FindCPUPlugin(parts[0])
		if err != nil {
			return nil, fmt.Errorf("-plugins: %w", err)
		}
		for _, f := range parts[1:] {
			if !strings.HasPrefix(f, "--xla_") {
				return nil, fmt.Errorf("-plugins: %q: what follows + must be an XLA flag (--xla_...), got %q", entry, f)
			}
		}
		vs = append(vs, pluginVariant{Plugin: p, Flags: parts[1:]})
	}
	if len(vs) < 2 {
		return nil, fmt.Errorf("-plugins needs at least two plugins to compare, got %q", list)
	}
	return vs, nil
}

// lossSteps is how many first steps of each trainer the workers report the losses of.
const lossSteps = 3

// workerInfo is a worker's first line.
type workerInfo struct {
	Backend  string `json:"backend"`
	XLAFlags string `json:"xla_flags"`
}

// pluginWorker is a running worker process.
type pluginWorker struct {
	variant pluginVariant
	info    workerInfo
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  bytes.Buffer
}

func startPluginWorker(v pluginVariant, presets []string) (*pluginWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	w := &pluginWorker{variant: v}
	w.cmd = exec.Command(exe, "-plugin-worker", "-presets", strings.Join(presets, ","))
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, backend.PluginEnv+"=") || strings.HasPrefix(kv, "GOMLX_BACKEND=") ||
			strings.HasPrefix(kv, backend.XLAFlagsEnv+"=") || strings.HasPrefix(kv, backend.DeviceEnv+"=")
	})
	flags := strings.TrimSpace(os.Getenv(backend.XLAFlagsEnv) + " " + strings.Join(v.Flags, " "))
	env = append(env, backend.PluginEnv+"="+v.Plugin.Name, backend.DeviceEnv+"="+backend.DeviceCPU) // CPU plugins, whatever $SMI_DEVICE says
	if flags != "" {
		env = append(env, backend.XLAFlagsEnv+"="+flags)
	}
	w.cmd.Env = env
	w.cmd.Stderr = &w.stderr
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w.stdout = bufio.NewReader(out)
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the worker of %s: %w", v, err)
	}
	line, err := w.stdout.ReadString('\n')
	if err != nil {
		return nil, w.failed(err)
	}
	if err := json.Unmarshal([]byte(line), &w.info); err != nil {
		return nil, w.failed(fmt.Errorf("its first line %q is not its description: %w", strings.TrimSpace(line), err))
	}
	return w, nil
}

// call sends one request and returns the answer's line.
func (w *pluginWorker) call(request string) (string, error) {
	if _, err := io.WriteString(w.stdin, request+"\n"); err != nil {
		return "", w.failed(err)
	}
	line, err := w.stdout.ReadString('\n')
	if err != nil {
		return "", w.failed(err)
	}
	line = strings.TrimSpace(line)
	if msg, isErr := strings.CutPrefix(line, "error "); isErr {
		return "", fmt.Errorf("worker of %s: %s: %s", w.variant, request, msg)
	}
	return line, nil
}

// timed is call for a request answered with seconds.
func (w *pluginWorker) timed(request string) (time.Duration, error) {
	line, err := w.call(request)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseFloat(line, 64)
	if err != nil {
		return 0, fmt.Errorf("worker of %s: answer %q to %q", w.variant, line, request)
	}
	return time.Duration(s * float64(time.Second)), nil
}

func (w *pluginWorker) failed(err error) error {
	msg := strings.TrimSpace(w.stderr.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	if msg != "" {
		return fmt.Errorf("worker of %s: %w (its last line on stderr: %s)", w.variant, err, msg)
	}
	return fmt.Errorf("worker of %s: %w", w.variant, err)
}

func (w *pluginWorker) close() error {
	_ = w.stdin.Close()
	return w.cmd.Wait()
}

// pluginsSection is -sections plugins.
type pluginsSection struct {
	variants    []pluginVariant
	presets     []string
	paperRounds int
	out         string // Markdown report; "" prints it to stdout
}

// pluginCases are the timed cases of one preset for each plugin: the AdamW and SMI(AdamW) steps and
// the model's FFTs (benchmarks.ModelFFTCase), in this order.
var pluginCases = []string{gptbench.OptAdamW, gptbench.OptSMIAdamW, report.GraphFFTs}

func (s pluginsSection) run() error {
	start, loadStart := time.Now(), gptbench.LoadAverage()
	logf("load average at start: %s", loadStart)
	var workers []*pluginWorker
	defer func() {
		for _, w := range workers {
			_ = w.close()
		}
	}()
	for _, v := range s.variants {
		w, err := startPluginWorker(v, s.presets)
		if err != nil {
			return err
		}
		logf("plugins: %s: %s (XLA_FLAGS %q)", v, w.info.Backend, w.info.XLAFlags)
		workers = append(workers, w)
	}
	var md strings.Builder
	s.header(&md, workers)
	for _, preset := range s.presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		opt := warmStepOptions()
		if preset == "paper" {
			// Seconds per step on a CPU: few rounds, no warm call before each sample.
			opt = benchmarks.Options{Warmup: 1, Rounds: s.paperRounds, Budget: 10 * time.Minute, MinRounds: min(s.paperRounds, 3),
				Settle: 50 * time.Millisecond}
		}
		var cases []benchmarks.Case
		for _, w := range workers {
			for _, c := range pluginCases {
				request := "step\t" + preset + "\t" + c
				if c == report.GraphFFTs {
					request = "fft\t" + preset
				}
				cases = append(cases, benchmarks.Case{Name: w.variant.String() + " | " + c,
					Timed: func() (time.Duration, error) { return w.timed(request) }})
			}
		}
		logf("plugins %s: timing %d cases (%d plugins), interleaved", preset, len(cases), len(workers))
		res, err := benchmarks.Interleave(cases, opt)
		if err != nil {
			return fmt.Errorf("plugins %s: %w", preset, err)
		}
		losses := make([]map[string][]float32, len(workers))
		for i, w := range workers {
			line, err := w.call("losses\t" + preset)
			if err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(line), &losses[i]); err != nil {
				return fmt.Errorf("worker of %s: losses %q: %w", w.variant, line, err)
			}
		}
		s.presetTable(&md, preset, cfg, workers, res, losses)
	}
	fmt.Fprintf(&md, "\nLoad average (1, 5, 15 minutes) at start %s, at end %s; %s in all.\n", loadStart,
		gptbench.LoadAverage(), time.Since(start).Round(time.Second))
	logf("load average at end: %s", gptbench.LoadAverage())
	if s.out == "" {
		fmt.Print(md.String())
		return nil
	}
	if err := writeFile(s.out, []byte(md.String())); err != nil {
		return err
	}
	logf("wrote %s", s.out)
	return nil
}

func (s pluginsSection) header(md *strings.Builder, workers []*pluginWorker) {
	env := gptbench.CurrentEnv(nil)
	fmt.Fprintf(md, "# XLA CPU plugins side by side\n\n")
	fmt.Fprintf(md, "Generated by `%s` on %s: %s, %d logical CPUs (%s), %s, %s, %s, revision %s.\n\n",
		pluginsCommand(s), env.Date.Format("2006-01-02"), env.CPU, env.NumCPU, strings.Join(machine.VectorFlags(), " "),
		env.OS, env.GoVersion, env.GoMLX, env.Revision)
	fmt.Fprintf(md, "Each plugin runs in a process of its own; one round times every case of every plugin once, "+
		"in an order that changes each round (a Williams design: over a full set of rounds every case follows every other equally often). A ratio is the median of the per-round ratios of a plugin's time "+
		"to the time of the plugin in the column against (the first plugin run with the same extra XLA flags, else the "+
		"first plugin), with an approximately 95%% distribution-free interval. Steps are the training step of "+
		"smibench's step section (nanoGPT's GPT through GoMLX's trainer, gradients clipped, the optimizer), on one "+
		"fixed random batch; FFTs are the 2-D real FFT and its inverse of every variable of the model "+
		"(benchmarks.ModelFFTCase), the least an exact filter computes; their share is of the SMI(AdamW) step. "+
		"Losses are those of the first %d steps of each configuration, from the same initialisation.\n\n", lossSteps)
	fmt.Fprintf(md, "| plugin | backend | XLA_FLAGS |\n|---|---|---|\n")
	for _, w := range workers {
		fmt.Fprintf(md, "| %s | %s | %s |\n", w.variant, w.info.Backend, code(w.info.XLAFlags))
	}
}

func code(s string) string {
	if s == "" {
		return "-"
	}
	return "`" + s + "`"
}

func pluginsCommand(s pluginsSection) string {
	var names []string
	for _, v := range s.variants {
		names = append(names, strings.Join(append([]string{v.Plugin.Name}, v.Flags...), "+"))
	}
	cmd := "go run ./benchmarks/cmd/smibench -sections plugins -plugins " + strings.Join(names, ",") +
		" -presets " + strings.Join(s.presets, ",")
	if slices.Contains(s.presets, "paper") {
		cmd += fmt.Sprintf(" -paper-rounds %d", s.paperRounds)
	}
	if s.out != "" {
		cmd += " -plugins-out " + s.out
	}
	return cmd
}

func (s pluginsSection) presetTable(md *strings.Builder, preset string, cfg gpt.Config, workers []*pluginWorker,
	res []benchmarks.Result, losses []map[string][]float32) {
	n := len(pluginCases)
	result := func(w, c int) benchmarks.Result { return res[w*n+c] }
	fmt.Fprintf(md, "\n## `%s` (%d layers, %d x %d, batch %d x %d), %d rounds\n\n", preset, cfg.NLayer, cfg.NEmbd, cfg.NEmbd,
		cfg.BatchSize, cfg.BlockSize, len(res[0].Samples))
	fmt.Fprintf(md, "| plugin | against | AdamW step | ratio | SMI(AdamW) step | ratio | SMI(AdamW) / AdamW | FFTs | ratio | FFT share of the SMI step |\n")
	fmt.Fprintf(md, "|---|---|---|---|---|---|---|---|---|---|\n")
	for w, wk := range workers {
		adam, smi, fft := result(w, 0), result(w, 1), result(w, 2)
		ref := referenceOf(workers, w)
		vs := func(c int) string {
			if ref == w {
				return "1"
			}
			return benchmarks.PairedRatio(result(ref, c), result(w, c)).String()
		}
		against := "-"
		if ref != w {
			against = workers[ref].variant.String()
		}
		fmt.Fprintf(md, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f%% |\n", wk.variant, against,
			gptbench.HumanDuration(adam.Median()), vs(0), gptbench.HumanDuration(smi.Median()), vs(1),
			benchmarks.PairedRatio(adam, smi), gptbench.HumanDuration(fft.Median()), vs(2),
			100*fft.Median().Seconds()/smi.Median().Seconds())
		logf("plugins %s: %s against %s: AdamW %s (%s), SMI(AdamW) %s (%s), SMI/AdamW %s, FFTs %s (%s)", preset, wk.variant, against,
			gptbench.HumanDuration(adam.Median()), vs(0), gptbench.HumanDuration(smi.Median()), vs(1),
			benchmarks.PairedRatio(adam, smi), gptbench.HumanDuration(fft.Median()), vs(2))
	}
	fmt.Fprintf(md, "\nLosses of the first %d steps (float32, shortest decimal), and the largest relative difference from the first "+
		"plugin's; they agree when it is at most %.0e (another XLA may sum products and reductions in another order, "+
		"a few float32 roundings over %d steps):\n\n", lossSteps, lossTolerance, lossSteps)
	fmt.Fprintf(md, "| plugin | AdamW | SMI(AdamW) | largest difference |\n|---|---|---|---|\n")
	for w, wk := range workers {
		worst, complete := lossDifference(losses[0], losses[w])
		diff := fmt.Sprintf("%.2g, agree", worst)
		switch {
		case !complete:
			diff = "**missing losses**"
		case worst == 0:
			diff = "0 (bit-identical)"
		case worst > lossTolerance:
			diff = fmt.Sprintf("**%.2g: differ**", worst)
			logf("plugins %s: %s: the losses differ from %s's by %.2g (relative), more than %.0e", preset, wk.variant,
				workers[0].variant, worst, lossTolerance)
		}
		fmt.Fprintf(md, "| %s | %s | %s | %s |\n", wk.variant, lossList(losses[w][gptbench.OptAdamW]),
			lossList(losses[w][gptbench.OptSMIAdamW]), diff)
	}
}

// lossTolerance is the largest relative difference between two plugins' losses of the first
// lossSteps steps that counts as the same result.
const lossTolerance = 1e-5

// lossDifference is the largest relative difference between the losses of got and ref, step by
// step and configuration by configuration; complete is false when got lacks one of ref's.
func lossDifference(ref, got map[string][]float32) (worst float64, complete bool) {
	complete = true
	for opt, r := range ref {
		g := got[opt]
		if len(g) != len(r) {
			complete = false
		}
		for i := range min(len(g), len(r)) {
			worst = max(worst, math.Abs(float64(g[i])-float64(r[i]))/math.Abs(float64(r[i])))
		}
	}
	return worst, complete && len(got) == len(ref)
}

// referenceOf is the variant that variant w's ratios are to: the first variant with the same
// extra XLA flags (a plugin against the default under the same flags, e.g. --xla_cpu_max_isa=AVX2),
// or, for the first with its flags, the first variant.
func referenceOf(workers []*pluginWorker, w int) int {
	for i := range w {
		if slices.Equal(workers[i].variant.Flags, workers[w].variant.Flags) {
			return i
		}
	}
	return 0
}

func lossList(ls []float32) string {
	var s []string
	for _, l := range ls {
		s = append(s, strconv.FormatFloat(float64(l), 'g', -1, 32))
	}
	return strings.Join(s, ", ")
}

// runPluginWorker is -plugin-worker: the worker of the plugins section, on the backend its
// environment selects. Requests, one a line, tab-separated: "step PRESET OPT" (one training step;
// the trainer is built and compiled at its first request), "fft PRESET" (the model's FFTs),
// "losses PRESET" (JSON: the first steps' losses of each OPT). Answers: seconds, or JSON, or
// "error MESSAGE".
func runPluginWorker(presets []string) error {
	b, err := backend.New()
	if err != nil {
		return err
	}
	info, _ := json.Marshal(workerInfo{Backend: backend.Description(b), XLAFlags: os.Getenv(backend.XLAFlagsEnv)})
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "%s\n", info)
	if err := out.Flush(); err != nil {
		return err
	}
	trainers := map[string]*gptbench.Trainer{}
	losses := map[string]map[string][]float32{}
	ffts := map[string]benchmarks.Case{}
	answer := func(request string) (string, error) {
		f := strings.Split(request, "\t")
		if len(f) < 2 || !slices.Contains(presets, f[1]) {
			return "", fmt.Errorf("bad request %q", request)
		}
		preset := f[1]
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return "", err
		}
		switch {
		case f[0] == "step" && len(f) == 3:
			key := preset + "\t" + f[2]
			t, ok := trainers[key]
			if !ok {
				if t, err = gptbench.NewTrainer(b, cfg, f[2], 1); err != nil {
					return "", err
				}
				trainers[key] = t
				if losses[preset] == nil {
					losses[preset] = map[string][]float32{}
				}
			}
			runtime.GC()
			start := time.Now()
			loss, err := t.StepLoss()
			d := time.Since(start)
			if err != nil {
				return "", err
			}
			if l := losses[preset][f[2]]; len(l) < lossSteps {
				losses[preset][f[2]] = append(l, loss)
			}
			return strconv.FormatFloat(d.Seconds(), 'g', -1, 64), nil
		case f[0] == "fft":
			c, ok := ffts[preset]
			if !ok {
				shapes, _, err := gptbench.ModelShapes(b, cfg)
				if err != nil {
					return "", err
				}
				if c, _, err = benchmarks.ModelFFTCase(b, report.GraphFFTs, shapes); err != nil {
					return "", err
				}
				ffts[preset] = c
			}
			start := time.Now()
			if err := c.Run(); err != nil {
				return "", err
			}
			return strconv.FormatFloat(time.Since(start).Seconds(), 'g', -1, 64), nil
		case f[0] == "losses":
			js, err := json.Marshal(losses[preset])
			return string(js), err
		}
		return "", fmt.Errorf("bad request %q", request)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		a, err := answer(in.Text())
		if err != nil {
			a = "error " + strings.Join(strings.Fields(err.Error()), " ")
		}
		fmt.Fprintf(out, "%s\n", a)
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return in.Err()
}
