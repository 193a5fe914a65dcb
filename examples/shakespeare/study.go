package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/backend"
)

// A study trains a grid of the paper's runs x seeds on one preset, one run after another, into
// one folder, then analyses every final model, measures their inference speed side by side,
// and writes the reproduction report from what it published:
//
//	DIR/study.json                      the grid and every invocation (command, revision, time)
//	DIR/runs/<preset>-run<r>-seed<s>/   a train run directory (checkpoints, metrics, analysis)
//	DIR/speed.json                      interleaved inference speed of all final models
//	DIR/steps.json                      interleaved training-step time of every configuration
//	PUBLISH/runs/<name>/metrics.json    the small files the report is made from, published as
//	PUBLISH/runs/<name>/analysis.json   each is written, compact and with the run's provenance
//	PUBLISH/speed.json, steps.json,     (code revision, machine, accelerator, backend): commit
//	PUBLISH/study.json                  these (no checkpoints)
//
// Every step is resumable: a finished run is skipped, an interrupted one resumes from its
// checkpoint, a grid with more runs or seeds trains only what is missing. A study can be done
// in pieces: any subset of runs x seeds, on any machine, publishes into a folder of its own
// (see defaultPublish), and the report merges every published folder it finds.

// studyOptions are the study command's flags.
type studyOptions struct {
	Preset, Dir, Publish, Report, Data, Set string
	Device                                  string   // cpu, cuda or auto (backend.SetDevice); "": $SMI_DEVICE, else cpu
	From                                    []string // published folders the report is made from
	Runs                                    []int
	Seeds                                   []int64
	Quiet, NoSpeed, ReportOnly              bool
	SpeedTokens, SpeedReps, AnalyzeBatches  int
	StepRounds, StepSteps                   int

	// tests: stop (as if interrupted) the training of the given grid position (1-based) at this
	// iteration
	stopRun, stopAt int
}

// studyFile is DIR/study.json.
type studyFile struct {
	Preset      string       `json:"preset"`
	Runs        []int        `json:"runs"`
	Seeds       []int64      `json:"seeds"`
	Invocations []invocation `json:"invocations"`
}

// invocation is one execution of the study command on the folder.
type invocation struct {
	Command     string   `json:"command"`
	Revision    string   `json:"revision"` // git revision of the code, "+dirty" when it had uncommitted changes
	Machine     Machine  `json:"machine"`
	Accelerator string   `json:"accelerator,omitempty"` // the GPU(s) a GPU backend computes on
	Backend     string   `json:"backend"`
	Started     string   `json:"started_utc"`
	Updated     string   `json:"updated_utc"`
	Seconds     float64  `json:"seconds"`            // wall time of this invocation so far
	Trained     []string `json:"trained"`            // runs this invocation trained (or finished)
	Analysed    []string `json:"analysed,omitempty"` // runs whose final model this invocation analysed
}

// provenance is where and with what code a published run file was made: the study adds it to
// each run's metrics.json and analysis.json as it publishes them, from the invocation that
// trained (or analysed) the run, so that a file copied alone still says where it came from.
type provenance struct {
	Revision    string   `json:"revision"` // git revision of the code, "+dirty" with uncommitted changes
	Command     string   `json:"command,omitempty"`
	Machine     *Machine `json:"machine,omitempty"`
	Accelerator string   `json:"accelerator,omitempty"`
	Backend     string   `json:"backend,omitempty"`
	Started     string   `json:"invocation_started_utc,omitempty"`
}

// speedFile is DIR/speed.json: the interleaved inference measurement of every final model.
type speedFile struct {
	Tokens  int                  `json:"tokens_per_rep"`
	Reps    int                  `json:"reps"`
	Backend string               `json:"backend"`
	Machine Machine              `json:"machine"`
	Date    string               `json:"date_utc"`
	Rates   map[string][]float64 `json:"tokens_per_sec"` // per run name, one per repetition
}

func studyFlags() (*flag.FlagSet, *studyOptions, *string, *string, *string) {
	o := &studyOptions{}
	fs := flag.NewFlagSet("study", flag.ContinueOnError)
	runs := fs.String("runs", "0,1,2,3,4,5", "the paper's runs to train (0: AdamW alone, 1-5: SMI)")
	seeds := fs.String("seeds", "", "seeds: each trains every run (same initial weights and batches per seed); default 1337,1 for the paper preset (the paper's 2 seeds), 1337,1,2,3,4 otherwise")
	from := fs.String("from", "", "published folders the report merges, comma-separated, each searched for study folders (default docs/reproduction, with -publish added when outside it)")
	fs.StringVar(&o.Preset, "preset", "cpu", "model and recipe (see train -help)")
	fs.StringVar(&o.Device, "device", "", backend.DeviceUsage)
	fs.StringVar(&o.Dir, "dir", "", "study folder with checkpoints (default results/study/<preset>)")
	fs.StringVar(&o.Publish, "publish", "", "folder for the small files the report is made from (default docs/reproduction/<preset> for the full grid on a CPU, else docs/reproduction/<preset>/<backend>-runs<R>-seeds<S>: a piece's own folder)")
	fs.StringVar(&o.Report, "report", "", "the report to write (default docs/REPRODUCTION.md); its plots go to reproduction/<section>/ beside it")
	fs.BoolVar(&o.ReportOnly, "report_only", false, "train and measure nothing: only write the report from the published folders (-from)")
	fs.StringVar(&o.Data, "data", data.DefaultPath(), "tiny Shakespeare text file (the paper's data: no other text)")
	fs.StringVar(&o.Set, "set", "", "hyperparameters for every run (see train -help); changes the recipe, so use another -dir")
	fs.BoolVar(&o.Quiet, "quiet", false, "a line per evaluation instead of progress bars (for logs)")
	fs.BoolVar(&o.NoSpeed, "no_speed", false, "skip the inference-speed and step-time measurements")
	fs.IntVar(&o.StepRounds, "step_rounds", 10, "interleaved rounds of the training-step time measurement")
	fs.IntVar(&o.StepSteps, "step_steps", 10, "training steps per configuration and round of the step-time measurement")
	fs.IntVar(&o.SpeedTokens, "speed_tokens", 100, "characters generated per repetition of the speed measurement")
	fs.IntVar(&o.SpeedReps, "speed_reps", 20, "interleaved repetitions per model of the speed measurement")
	fs.IntVar(&o.AnalyzeBatches, "analyze_batches", 10, "validation batches for the activation-sparsity analysis")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: shakespeare study [flags]

Trains every run x seed of the grid, one process and one run at a time (the runs share the
machine's cores; two at once would only slow both and distort their timings), then analyses
every final model, measures the inference speed of all of them interleaved in one process, and
writes the reproduction report. Rerun the same command after any interruption: finished runs
are skipped and an interrupted one resumes from its checkpoint. More -runs or -seeds extend the
study without retraining what exists. The default grid on the cpu preset takes 1 to 2 hours on
2 cores.

A study can be done in pieces: any subset of -runs x -seeds, on any machine, publishes its small
result files into a folder of its own, and the report merges every published study folder found
under -from, pairing runs only within one preset, recipe and kind of backend. -report_only
rewrites the report from the published files without training.

`)
		fs.PrintDefaults()
	}
	return fs, o, runs, seeds, from
}

func cmdStudy(args []string) error {
	fs, o, runs, seeds, from := studyFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -help)", fs.Args())
	}
	if *seeds == "" {
		*seeds = defaultSeeds(o.Preset)
	}
	var err error
	if o.Runs, err = parseInts(*runs, "-runs", func(s string) (int, error) { return strconv.Atoi(s) }); err != nil {
		return err
	}
	if o.Seeds, err = parseInts(*seeds, "-seeds", func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		return err
	}
	for _, f := range strings.Split(*from, ",") {
		if f = strings.TrimSpace(f); f != "" {
			o.From = append(o.From, f)
		}
	}
	o.defaults()
	return runStudy(o, "shakespeare study "+strings.Join(publicArgs(args), " "))
}

// defaultSeeds are the seeds of a preset's full study: the paper's 2 for the paper preset (a
// GPU's work), 5 for the smaller ones.
func defaultSeeds(preset string) string {
	if preset == "paper" {
		return "1337,1"
	}
	return "1337,1,2,3,4"
}

func (o *studyOptions) defaults() {
	if o.Dir == "" {
		o.Dir = filepath.Join("results", "study", o.Preset)
	}
	if o.Report == "" {
		o.Report = filepath.Join("docs", "REPRODUCTION.md")
	}
}

// fullGrid reports whether the study is the preset's full default grid: runs 0-5 x its default
// seeds.
func (o *studyOptions) fullGrid() bool {
	seeds, _ := parseInts(defaultSeeds(o.Preset), "", func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
	runs := slices.Sorted(slices.Values(o.Runs))
	return slices.Equal(runs, []int{0, 1, 2, 3, 4, 5}) && len(o.Seeds) == len(seeds) &&
		!slices.ContainsFunc(seeds, func(s int64) bool { return !slices.Contains(o.Seeds, s) })
}

// defaultPublish is where a study publishes when -publish is not given: docs/reproduction/<preset>
// for the full grid trained on a CPU (where the committed cpu study lives), else a folder of the
// piece's own under it, named by backend kind, runs and seeds, so that pieces done on different
// machines can be brought back side by side.
func (o *studyOptions) defaultPublish(kind string) string {
	root := filepath.Join("docs", "reproduction", o.Preset)
	if kind == "cpu" && o.fullGrid() {
		return root
	}
	join := func(xs []string) string { return strings.Join(xs, "_") }
	var runs, seeds []string
	for _, r := range o.Runs {
		runs = append(runs, strconv.Itoa(r))
	}
	for _, s := range o.Seeds {
		seeds = append(seeds, strconv.FormatInt(s, 10))
	}
	return filepath.Join(root, fmt.Sprintf("%s-runs%s-seeds%s", kind, join(runs), join(seeds)))
}

// reportSources completes -from: docs/reproduction by default (or the publish folder when it
// lies outside it), with the publish folder added when no folder given holds it.
func (o *studyOptions) reportSources() {
	root := filepath.Join("docs", "reproduction")
	if len(o.From) == 0 {
		if o.Publish == "" || within(root, o.Publish) {
			o.From = []string{root}
		} else {
			o.From = []string{o.Publish}
		}
		return
	}
	if o.Publish != "" && !slices.ContainsFunc(o.From, func(f string) bool { return within(f, o.Publish) }) {
		o.From = append(o.From, o.Publish)
	}
}

// within reports whether path is root or lies under it.
func within(root, path string) bool {
	a, err1 := filepath.Abs(root)
	b, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(a, b)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func parseInts[T int | int64](s, flagName string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an integer", flagName, f)
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("%s: %v is given twice", flagName, v)
		}
		out = append(out, v)
	}
	return out, nil
}

// gridPoint is one run x seed of a study.
type gridPoint struct {
	run  int
	seed int64
}

func (o *studyOptions) name(p gridPoint) string {
	return fmt.Sprintf("%s-run%d-seed%d", o.Preset, p.run, p.seed)
}

// grid lists the runs seed by seed, so an unfinished study holds complete seeds (pairs) first.
func (o *studyOptions) grid() []gridPoint {
	var g []gridPoint
	for _, s := range o.Seeds {
		for _, r := range o.Runs {
			g = append(g, gridPoint{r, s})
		}
	}
	return g
}

func (o *studyOptions) trainOptions(p gridPoint) *trainOptions {
	return &trainOptions{Preset: o.Preset, Run: p.run, Seed: p.seed, Data: o.Data, Set: o.Set, Quiet: o.Quiet,
		Out: filepath.Join(o.Dir, "runs", o.name(p)), Thresholds: defaultThresholds}
}

func runStudy(o *studyOptions, command string) error {
	began := time.Now()
	if o.ReportOnly {
		o.reportSources()
		if err := writeReproduction(o.From, o.Report); err != nil {
			return err
		}
		fmt.Printf("Report (from %s, nothing trained): %s\n", strings.Join(o.From, ", "), o.Report)
		return nil
	}
	for _, r := range o.Runs {
		if _, err := lookupRun(r); err != nil {
			return fmt.Errorf("-runs: %v", err)
		}
	}
	corpus, err := loadCorpus(o.Data)
	if err != nil {
		return err
	}
	if err := corpus.CheckTinyShakespeare(); err != nil { // the paper's runs are on its data
		return fmt.Errorf("-data %s: the study reproduces the paper's runs, on tiny Shakespeare: %v (train takes any text)", o.Data, err)
	}
	// Check every run's settings before training any.
	grid := o.grid()
	for _, p := range grid {
		if _, _, err := o.trainOptions(p).settings(len(corpus.Chars)); err != nil {
			return fmt.Errorf("run %d, seed %d: %v", p.run, p.seed, err)
		}
	}
	lock, err := lockRun(o.Dir) // one study per folder (each run also locks its own directory)
	if err != nil {
		return err
	}
	defer lock.release()
	if err := backend.SetDevice(o.Device); err != nil {
		return err
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	if o.Publish == "" {
		o.Publish = o.defaultPublish(backend.PlatformOf(b))
	}
	o.reportSources()
	sf, inv, err := o.openStudyFile(command, b, began)
	if err != nil {
		return err
	}
	save := func() error {
		inv.Updated, inv.Seconds = nowUTC(), time.Since(began).Seconds()
		if err := writeJSON(filepath.Join(o.Dir, "study.json"), sf); err != nil {
			return err
		}
		return o.publish("study.json")
	}
	if err := save(); err != nil {
		return err
	}

	// 1. Training, one run at a time.
	var pending []gridPoint
	for _, p := range grid {
		done, err := o.finished(p, len(corpus.Chars))
		if err != nil {
			return err
		}
		if !done {
			pending = append(pending, p)
		} else if err := o.publishRun(sf, p, "metrics.json"); err != nil {
			return err
		}
	}
	fmt.Printf("Study %s: %d runs x %d seeds = %d; %d finished, %d to train, one at a time; publishing in %s.\n",
		o.Dir, len(o.Runs), len(o.Seeds), len(grid), len(grid)-len(pending), len(pending), o.Publish)
	trainStart := time.Now()
	for k, p := range pending {
		eta := "after the first run"
		if k > 0 {
			per := time.Since(trainStart) / time.Duration(k)
			eta = fmt.Sprintf("%s (%.0f s per run)", (per * time.Duration(len(pending)-k)).Round(time.Second), per.Seconds())
		}
		pos := slices.Index(grid, p) + 1
		fmt.Printf("\n[%d/%d] run %d, seed %d: training (%d of %d left to train; ETA %s)\n",
			pos, len(grid), p.run, p.seed, len(pending)-k, len(pending), eta)
		to := o.trainOptions(p)
		if pos == o.stopRun {
			to.stopAt = o.stopAt
		}
		ctx, cfg, _ := to.settings(len(corpus.Chars))
		thresholds, _ := parseThresholds(to.Thresholds)
		m, err := trainRun(b, ctx, cfg, corpus, to, thresholds)
		if err != nil {
			return fmt.Errorf("run %d, seed %d (%s): %w", p.run, p.seed, to.Out, err)
		}
		fmt.Printf("[%d/%d] run %d, seed %d: val loss %.4f, %.0f s training\n", pos, len(grid), p.run, p.seed, m.FinalValLoss, m.TrainSeconds)
		inv.Trained = append(inv.Trained, o.name(p))
		if err := o.publishRun(sf, p, "metrics.json"); err != nil {
			return err
		}
		if err := save(); err != nil {
			return err
		}
	}

	// 2. Parameter analysis of every final model.
	for _, p := range grid {
		dir := filepath.Join(o.Dir, "runs", o.name(p))
		path := filepath.Join(dir, "analysis.json")
		if _, err := os.Stat(path); err != nil {
			fmt.Printf("Analysing %s...\n", dir)
			if err := analyzeRunDir(b, corpus, dir, o.AnalyzeBatches); err != nil {
				return fmt.Errorf("analysing %s: %w", dir, err)
			}
			inv.Analysed = append(inv.Analysed, o.name(p))
		}
		if err := o.publishRun(sf, p, "analysis.json"); err != nil {
			return err
		}
	}

	// 3. Inference speed of every final model and the training-step time of every
	// configuration, each interleaved in this one process.
	if !o.NoSpeed {
		if err := o.measureSpeed(b, corpus, grid); err != nil {
			return err
		}
		if err := o.measureSteps(b, corpus); err != nil {
			return err
		}
	}
	if err := save(); err != nil {
		return err
	}

	// 4. The report, from the published files only: this study's and every other found.
	if err := writeReproduction(o.From, o.Report); err != nil {
		return err
	}
	fmt.Printf("\nStudy complete (%s in this invocation). Report: %s\n", time.Since(began).Round(time.Second), o.Report)
	return nil
}

// openStudyFile reads DIR/study.json (or starts one), checks that it is the same preset,
// merges the grid and appends this invocation.
func (o *studyOptions) openStudyFile(command string, b backends.Backend, began time.Time) (*studyFile, *invocation, error) {
	path := filepath.Join(o.Dir, "study.json")
	sf := &studyFile{Preset: o.Preset}
	if raw, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(raw, sf); err != nil {
			return nil, nil, fmt.Errorf("%s: %v", path, err)
		}
		if sf.Preset != o.Preset {
			return nil, nil, fmt.Errorf("%s is a study of the %s preset, not %s: use another -dir", o.Dir, sf.Preset, o.Preset)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	for _, r := range o.Runs {
		if !slices.Contains(sf.Runs, r) {
			sf.Runs = append(sf.Runs, r)
		}
	}
	for _, s := range o.Seeds {
		if !slices.Contains(sf.Seeds, s) {
			sf.Seeds = append(sf.Seeds, s)
		}
	}
	sf.Invocations = append(sf.Invocations, invocation{Command: command, Revision: gitRevision(),
		Machine: thisMachine(), Accelerator: accelerator(b), Backend: backend.Description(b), Started: began.UTC().Format(time.RFC3339)})
	return sf, &sf.Invocations[len(sf.Invocations)-1], nil
}

// finished reports whether p's run directory holds complete metrics of the same settings.
func (o *studyOptions) finished(p gridPoint, vocab int) (bool, error) {
	to := o.trainOptions(p)
	path := filepath.Join(to.Out, "metrics.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var m Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		fmt.Printf("%s does not parse (%v): the run will be completed again from its checkpoint.\n", path, err)
		return false, nil
	}
	ctx, cfg, err := to.settings(vocab)
	if err != nil {
		return false, err
	}
	want := canonicalJSON(cfg, smiSettings(ctx))
	got := canonicalJSON(m.Config, m.SMI)
	if got != want {
		return false, fmt.Errorf("%s holds a run with other settings than this study's: use another -dir", to.Out)
	}
	return len(m.IterLoss) == cfg.MaxIters, nil
}

// publish copies DIR/rel to PUBLISH/rel (atomically, as compact JSON), when it exists.
func (o *studyOptions) publish(rel string) error {
	raw, err := os.ReadFile(filepath.Join(o.Dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	out, err := publishedForm(raw, nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(o.Dir, rel), err)
	}
	return writePublished(filepath.Join(o.Publish, rel), out)
}

// publishRun publishes run p's file (metrics.json or analysis.json) in its published form,
// with the provenance of the invocation that trained or analysed it; a run made before this
// invocation that sf does not record keeps the provenance an earlier publication gave it.
func (o *studyOptions) publishRun(sf *studyFile, p gridPoint, file string) error {
	rel := filepath.Join("runs", o.name(p), file)
	raw, err := os.ReadFile(filepath.Join(o.Dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	dst := filepath.Join(o.Publish, rel)
	prov := runProvenance(sf, o.name(p), file == "analysis.json")
	if prov == nil {
		prov = publishedProvenance(dst)
	}
	out, err := publishedForm(raw, droppedFields, prov)
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(o.Dir, rel), err)
	}
	return writePublished(dst, out)
}

// droppedFields are the run-file fields the report does not read and the published form leaves
// out: the SMI telemetry (alpha and kept energy at every iteration) is most of a metrics file,
// and stays in the study folder's own copy.
var droppedFields = []string{"smi_telemetry"}

// publishedForm is a JSON file as published: compact (no indentation), without the fields
// named in drop, with prov as its "provenance" when given, and (in a run's metrics, with drop)
// the per-iteration losses in their float32 form (float32Losses). Every other value is kept
// byte for byte, and the report reads the same numbers.
func publishedForm(raw []byte, drop []string, prov *provenance) ([]byte, error) {
	if drop == nil && prov == nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		return append(buf.Bytes(), '\n'), nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	for _, k := range drop {
		delete(fields, k)
	}
	if losses, ok := fields["iter_loss"]; ok && fields[iterLossDTypeField] == nil {
		if short, ok := float32Losses(losses); ok {
			fields["iter_loss"], fields[iterLossDTypeField] = short, json.RawMessage(`"float32"`)
		}
	}
	if prov != nil {
		p, err := json.Marshal(prov)
		if err != nil {
			return nil, err
		}
		fields["provenance"] = p
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// iterLossDTypeField, "float32" in a published metrics file, says that its iter_loss holds each
// loss as the shortest decimal that identifies it as a float32 (float32Losses), to be read back
// as a float32 (readIterLoss32).
const iterLossDTypeField = "iter_loss_dtype"

// float32Losses rewrites a JSON array of losses that are all float32 values (as the trainer
// records them: each iteration's loss is a float32 of the graph) with each as the shortest
// decimal that identifies it as a float32, about half the digits of its float64 form; read back
// as a float32, each is the very same value. ok is false, and nothing is rewritten, when any value
// is not a float32.
func float32Losses(raw json.RawMessage) (json.RawMessage, bool) {
	var losses []float64
	if err := json.Unmarshal(raw, &losses); err != nil || len(losses) == 0 {
		return nil, false
	}
	out := []byte{'['}
	for i, l := range losses {
		if float64(float32(l)) != l || math.IsInf(l, 0) || math.IsNaN(l) {
			return nil, false
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendFloat(out, l, 'g', -1, 32)
	}
	return append(out, ']'), true
}

// readIterLoss32 reads a published metrics file's iter_loss as float32 values when the file
// says it holds them in that form (iterLossDTypeField).
type readIterLoss32 struct {
	DType    string          `json:"iter_loss_dtype"`
	IterLoss json.RawMessage `json:"iter_loss"`
}

// apply puts the losses, decoded as float32 values, into m when the file held them in float32
// form; it leaves m alone otherwise.
func (r *readIterLoss32) apply(m *Metrics) error {
	if r.DType == "" {
		return nil
	} else if r.DType != "float32" {
		return fmt.Errorf("%s %q: only float32 is known", iterLossDTypeField, r.DType)
	}
	var losses []float32
	if err := json.Unmarshal(r.IterLoss, &losses); err != nil {
		return fmt.Errorf("iter_loss: %v", err)
	}
	m.IterLoss = make([]float64, len(losses))
	for i, l := range losses {
		m.IterLoss[i] = float64(l)
	}
	return nil
}

func writePublished(dst string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(dst, content)
}

// runProvenance is the provenance of run name's metrics (or, with analysed, its analysis): the
// last invocation of sf that trained (analysed) it; nil when none did.
func runProvenance(sf *studyFile, name string, analysed bool) *provenance {
	for i := len(sf.Invocations) - 1; i >= 0; i-- {
		inv := &sf.Invocations[i]
		list := inv.Trained
		if analysed {
			list = inv.Analysed
		}
		if slices.Contains(list, name) {
			m := inv.Machine
			return &provenance{Revision: inv.Revision, Command: inv.Command, Machine: &m, Accelerator: inv.Accelerator,
				Backend: inv.Backend, Started: inv.Started}
		}
	}
	return nil
}

// publishedProvenance is the provenance recorded in an already published file; nil without one.
func publishedProvenance(path string) *provenance {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var f struct {
		P *provenance `json:"provenance"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	return f.P
}

// compactPublished rewrites a published study folder's files in the published form, each run
// file with its provenance from the folder's study.json where it records one: for folders
// published before the form was compact. The report reads the same numbers before and after.
func compactPublished(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "study.json"))
	if err != nil {
		return fmt.Errorf("%s is not a published study: %v", dir, err)
	}
	var sf studyFile
	if err := json.Unmarshal(raw, &sf); err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(dir, "study.json"), err)
	}
	for _, name := range []string{"study.json", "speed.json", "steps.json"} {
		path := filepath.Join(dir, name)
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		out, err := publishedForm(raw, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if err := writeFileAtomic(path, out); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "runs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		for _, file := range []string{"metrics.json", "analysis.json"} {
			path := filepath.Join(dir, "runs", e.Name(), file)
			raw, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			prov := runProvenance(&sf, e.Name(), file == "analysis.json")
			if prov == nil {
				prov = publishedProvenance(path)
			}
			out, err := publishedForm(raw, droppedFields, prov)
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			if err := writeFileAtomic(path, out); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Printf("%s: %d run files in the published form.\n", dir, n)
	return nil
}

// accelerator names the GPUs a GPU backend computes on ("1 x NVIDIA H200, driver 580.159.03",
// from nvidia-smi; else the backend's description of its first device); "" for a CPU backend.
func accelerator(b backends.Backend) string {
	switch backend.PlatformOf(b) {
	case "cpu", "go", "":
		return ""
	case "cuda":
		if out, err := exec.Command("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader").Output(); err == nil {
			var names []string
			count := map[string]int{}
			for _, line := range strings.Split(string(out), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					name, driver, _ := strings.Cut(line, ",")
					key := strings.TrimSpace(name)
					if d := strings.TrimSpace(driver); d != "" {
						key += ", driver " + d
					}
					if count[key] == 0 {
						names = append(names, key)
					}
					count[key]++
				}
			}
			for i, n := range names {
				names[i] = fmt.Sprintf("%d x %s", count[n], n)
			}
			if len(names) > 0 {
				return strings.Join(names, "; ")
			}
		}
	}
	if b.NumDevices() > 0 {
		return b.DeviceDescription(0)
	}
	return ""
}

// measureSpeed times every final model's inference in one process, interleaved (see
// interleavedSpeed), unless speed.json already holds exactly these runs.
func (o *studyOptions) measureSpeed(b backends.Backend, corpus *data.Corpus, grid []gridPoint) error {
	path := filepath.Join(o.Dir, "speed.json")
	names := make([]string, len(grid))
	dirs := make([]string, len(grid))
	for i, p := range grid {
		names[i] = o.name(p)
		dirs[i] = filepath.Join(o.Dir, "runs", names[i])
	}
	if raw, err := os.ReadFile(path); err == nil {
		var old speedFile
		if json.Unmarshal(raw, &old) == nil && len(old.Rates) == len(names) && old.Reps == o.SpeedReps && old.Tokens == o.SpeedTokens {
			same := true
			for _, n := range names {
				same = same && len(old.Rates[n]) == o.SpeedReps
			}
			if same {
				return o.publish("speed.json")
			}
		}
	}
	fmt.Printf("Measuring the inference speed of %d models, interleaved...\n", len(dirs))
	rates, err := interleavedSpeed(b, corpus, dirs, o.SpeedTokens, o.SpeedReps)
	if err != nil {
		return err
	}
	sp := speedFile{Tokens: o.SpeedTokens, Reps: o.SpeedReps, Backend: backend.Description(b), Machine: thisMachine(),
		Date: nowUTC(), Rates: map[string][]float64{}}
	for i, n := range names {
		sp.Rates[n] = rates[i]
	}
	if err := writeJSON(path, sp); err != nil {
		return err
	}
	return o.publish("speed.json")
}

// measureSteps times the training steps of every configuration of the study, interleaved (see
// interleavedStepTimes), unless steps.json already holds exactly these runs.
func (o *studyOptions) measureSteps(b backends.Backend, corpus *data.Corpus) error {
	path := filepath.Join(o.Dir, "steps.json")
	if raw, err := os.ReadFile(path); err == nil {
		var old stepFile
		if json.Unmarshal(raw, &old) == nil && len(old.Seconds) == len(o.Runs) && old.Rounds == o.StepRounds && old.StepsPerRound == o.StepSteps {
			same := true
			for _, r := range o.Runs {
				same = same && len(old.Seconds[fmt.Sprintf("run%d", r)]) == o.StepRounds
			}
			if same {
				return o.publish("steps.json")
			}
		}
	}
	var opts []*trainOptions
	for _, r := range o.Runs {
		opts = append(opts, o.trainOptions(gridPoint{r, o.Seeds[0]}))
	}
	secs, err := interleavedStepTimes(b, corpus, opts, o.StepSteps, o.StepRounds)
	if err != nil {
		return err
	}
	sf := stepFile{StepsPerRound: o.StepSteps, Rounds: o.StepRounds, Backend: backend.Description(b), Machine: thisMachine(),
		Date: nowUTC(), Seconds: map[string][]float64{}}
	for i, r := range o.Runs {
		sf.Seconds[fmt.Sprintf("run%d", r)] = secs[i]
	}
	if err := writeJSON(path, sf); err != nil {
		return err
	}
	return o.publish("steps.json")
}

// publicArgs is a command's arguments as the study records them in the files it publishes and
// in the report: a path in the working directory relative to it, one under the user's home
// directory as ~/..., and any other path (outside both, as -data's file often is) by its file
// name after ".../": the machine's own paths mean nothing elsewhere. A path is an argument, or a
// -flag=value's value, that is absolute or begins with "..".
func publicArgs(args []string) []string {
	wd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	public := func(p string) string {
		if !filepath.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../") {
			return p
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return ".../" + filepath.Base(p)
		}
		for _, base := range []struct{ dir, as string }{{wd, ""}, {home, "~/"}} {
			if base.dir == "" || base.dir == "/" || !filepath.IsAbs(base.dir) {
				continue
			}
			if rel, err := filepath.Rel(base.dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				if base.as == "" {
					return rel
				}
				return base.as + rel
			}
		}
		return ".../" + filepath.Base(abs)
	}
	out := make([]string, len(args))
	for i, a := range args {
		if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "-") {
			out[i] = name + "=" + public(value)
		} else {
			out[i] = public(a)
		}
	}
	return out
}

// gitRevision names the code's git revision, "+dirty" with uncommitted changes to the Go code
// or its modules (not to data such as the study's own published files). Outside a git checkout
// (a copy of the tree on a rented machine) it is $SMI_GIT_REVISION, which the copy's sender can
// set, marked "(not checked)"; else "unknown".
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		if rev := strings.TrimSpace(os.Getenv("SMI_GIT_REVISION")); rev != "" {
			return rev + " (not checked)"
		}
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD", "--", "*.go", "go.mod", "go.sum").Run() != nil {
		rev += "+dirty"
	}
	return rev
}

// canonicalJSON encodes a run's model settings and SMI settings so that equal settings give
// equal strings whatever their Go types (through JSON and back, maps in key order).
func canonicalJSON(cfg, smi any) string {
	raw, _ := json.Marshal([]any{cfg, smi})
	var v any
	_ = json.Unmarshal(raw, &v)
	raw, _ = json.Marshal(v)
	return string(raw)
}
