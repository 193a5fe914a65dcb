package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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
//	PUBLISH/runs/<name>/metrics.json    the small files the report is made from, copied as
//	PUBLISH/runs/<name>/analysis.json   each is written: commit these (no checkpoints)
//	PUBLISH/speed.json, steps.json, study.json
//
// Every step is resumable: a finished run is skipped, an interrupted one resumes from its
// checkpoint, a grid with more runs or seeds trains only what is missing.

// studyOptions are the study command's flags.
type studyOptions struct {
	Preset, Dir, Publish, Report, Data, Set string
	Runs                                    []int
	Seeds                                   []int64
	Quiet, NoSpeed                          bool
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
	Command  string   `json:"command"`
	Revision string   `json:"revision"` // git revision of the code, "+dirty" when it had uncommitted changes
	Machine  Machine  `json:"machine"`
	Backend  string   `json:"backend"`
	Started  string   `json:"started_utc"`
	Updated  string   `json:"updated_utc"`
	Seconds  float64  `json:"seconds"` // wall time of this invocation so far
	Trained  []string `json:"trained"` // runs this invocation trained (or finished)
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

func studyFlags() (*flag.FlagSet, *studyOptions, *string, *string) {
	o := &studyOptions{}
	fs := flag.NewFlagSet("study", flag.ContinueOnError)
	runs := fs.String("runs", "0,1,2,3,4,5", "the paper's runs to train (0: AdamW alone, 1-5: SMI)")
	seeds := fs.String("seeds", "1337,1,2,3,4", "seeds: each trains every run (same initial weights and batches per seed)")
	fs.StringVar(&o.Preset, "preset", "cpu", "model and recipe (see train -help)")
	fs.StringVar(&o.Dir, "dir", "", "study folder with checkpoints (default results/study/<preset>)")
	fs.StringVar(&o.Publish, "publish", "", "folder for the small files the report is made from (default docs/reproduction/<preset>)")
	fs.StringVar(&o.Report, "report", "", "the report to write (default docs/REPRODUCTION.md for cpu, docs/REPRODUCTION-<preset>.md otherwise)")
	fs.StringVar(&o.Data, "data", data.DefaultPath(), "tiny Shakespeare text file")
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

`)
		fs.PrintDefaults()
	}
	return fs, o, runs, seeds
}

func cmdStudy(args []string) error {
	fs, o, runs, seeds := studyFlags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -help)", fs.Args())
	}
	var err error
	if o.Runs, err = parseInts(*runs, "-runs", func(s string) (int, error) { return strconv.Atoi(s) }); err != nil {
		return err
	}
	if o.Seeds, err = parseInts(*seeds, "-seeds", func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		return err
	}
	o.defaults()
	return runStudy(o, "shakespeare study "+strings.Join(args, " "))
}

func (o *studyOptions) defaults() {
	if o.Dir == "" {
		o.Dir = filepath.Join("results", "study", o.Preset)
	}
	if o.Publish == "" {
		o.Publish = filepath.Join("docs", "reproduction", o.Preset)
	}
	if o.Report == "" {
		o.Report = filepath.Join("docs", "REPRODUCTION.md")
		if o.Preset != "cpu" {
			o.Report = filepath.Join("docs", "REPRODUCTION-"+o.Preset+".md")
		}
	}
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
	for _, r := range o.Runs {
		if _, err := lookupRun(r); err != nil {
			return fmt.Errorf("-runs: %v", err)
		}
	}
	corpus, err := loadCorpus(o.Data)
	if err != nil {
		return err
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
	b, err := backend.New()
	if err != nil {
		return err
	}
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
		} else if err := o.publish(filepath.Join("runs", o.name(p), "metrics.json")); err != nil {
			return err
		}
	}
	fmt.Printf("Study %s: %d runs x %d seeds = %d; %d finished, %d to train, one at a time.\n",
		o.Dir, len(o.Runs), len(o.Seeds), len(grid), len(grid)-len(pending), len(pending))
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
		if err := o.publish(filepath.Join("runs", o.name(p), "metrics.json")); err != nil {
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
		}
		if err := o.publish(filepath.Join("runs", o.name(p), "analysis.json")); err != nil {
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

	// 4. The report, from the published files only.
	if err := writeReproduction(o.Publish, o.Report); err != nil {
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
		Machine: thisMachine(), Backend: b.Description(), Started: began.UTC().Format(time.RFC3339)})
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

// publish copies DIR/rel to PUBLISH/rel (atomically), when it exists.
func (o *studyOptions) publish(rel string) error {
	raw, err := os.ReadFile(filepath.Join(o.Dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	dst := filepath.Join(o.Publish, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(dst, raw)
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
	sp := speedFile{Tokens: o.SpeedTokens, Reps: o.SpeedReps, Backend: b.Description(), Machine: thisMachine(),
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
	sf := stepFile{StepsPerRound: o.StepSteps, Rounds: o.StepRounds, Backend: b.Description(), Machine: thisMachine(),
		Date: nowUTC(), Seconds: map[string][]float64{}}
	for i, r := range o.Runs {
		sf.Seconds[fmt.Sprintf("run%d", r)] = secs[i]
	}
	if err := writeJSON(path, sf); err != nil {
		return err
	}
	return o.publish("steps.json")
}

// gitRevision names the code's git revision, "+dirty" with uncommitted changes to the Go code
// or its modules (not to data such as the study's own published files); "unknown" outside a
// git checkout.
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
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
