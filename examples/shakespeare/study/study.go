// Package study is the paper's experiment at scale and its report: it trains a grid of the
// paper's runs x seeds on one preset, one run after another, into one folder, then analyses
// every final model, measures their inference speed side by side, and writes the reproduction
// report (docs/REPRODUCTION.md) from what it published, with the paired statistics and a
// verdict on each of the paper's claims. It also compares any runs (the report command).
//
// The study trains, analyses and measures through a Trainer, which the Shakespeare command
// (package main) provides; it builds no graph and loads no model itself. Its files:
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
package study

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
)

// Options are the study command's flags.
type Options struct {
	Preset, Dir, Publish, Report, Data, Set string
	Device                                  string   // cpu, cuda or auto (backend.SetDevice); "": $SMI_DEVICE, else cpu
	From                                    []string // published folders the report is made from
	Runs                                    []int
	Seeds                                   []int64
	Quiet, NoSpeed, ReportOnly              bool
	SpeedTokens, SpeedReps, AnalyzeBatches  int
	StepRounds, StepSteps                   int
}

func studyFlags() (*flag.FlagSet, *Options, *string, *string, *string) {
	o := &Options{}
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
	fs.StringVar(&o.Set, "set", "", "hyperparameters for every run (see train -help); changes the recipe, so use another -dir and -publish")
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
study without retraining what exists. The default grid on the cpu preset is 30 runs of 2,000
iterations; the report gives the wall time each published study took and on which machine
(the study prints its own estimate of the time left as it goes).

A study can be done in pieces: any subset of -runs x -seeds, on any machine, publishes its small
result files into a folder of its own, and the report merges every published study folder found
under -from, pairing runs only within one preset, recipe and kind of backend. -report_only
rewrites the report from the published files without training.

`)
		fs.PrintDefaults()
	}
	return fs, o, runs, seeds, from
}

// Command is the study command: args are its flags (see -help); t trains, analyses and
// measures.
func Command(args []string, t Trainer) error {
	fs, o, runs, seeds, from := studyFlags()
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fs, args, ""); err != nil {
		return err
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
	if *from != "" {
		if o.From, err = splitFolders("-from", *from); err != nil {
			return err
		}
	}
	return Run(o, t, "shakespeare study "+strings.Join(publicArgs(args), " "))
}

// defaultSeeds are the seeds of a preset's full study: the paper's 2 for the paper preset (a
// GPU's work), 5 for the smaller ones.
func defaultSeeds(preset string) string {
	if preset == "paper" {
		return "1337,1"
	}
	return "1337,1,2,3,4"
}

// defaults fills in the folders not given.
func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = filepath.Join("results", "study", o.Preset)
	}
	if o.Report == "" {
		o.Report = filepath.Join("docs", "REPRODUCTION.md")
	}
}

// fullGrid reports whether the study is the preset's full default grid: runs 0-5 x its default
// seeds.
func (o *Options) fullGrid() bool {
	seeds, _ := parseInts(defaultSeeds(o.Preset), "", func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
	runs := slices.Sorted(slices.Values(o.Runs))
	return slices.Equal(runs, []int{0, 1, 2, 3, 4, 5}) && len(o.Seeds) == len(seeds) &&
		!slices.ContainsFunc(seeds, func(s int64) bool { return !slices.Contains(o.Seeds, s) })
}

// defaultPublish is where a study publishes when -publish is not given: docs/reproduction/<preset>
// for the full grid trained on a CPU (where the committed cpu study lives), else a folder of the
// piece's own under it, named by backend kind, runs and seeds, so that pieces done on different
// machines can be brought back side by side.
func (o *Options) defaultPublish(kind string) string {
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
func (o *Options) reportSources() {
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

// parseInts reads a comma-separated list of distinct integers (the flag flagName's).
func parseInts[T int | int64](s, flagName string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, cli.Usagef("%s: %q is not an integer", flagName, f)
		}
		if slices.Contains(out, v) {
			return nil, cli.Usagef("%s: %v is given twice", flagName, v)
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

// name is p's run directory name, as train names it by default.
func (o *Options) name(p gridPoint) string {
	return fmt.Sprintf("%s-run%d-seed%d", o.Preset, p.run, p.seed)
}

// grid lists the runs seed by seed, so an unfinished study holds complete seeds (pairs) first.
func (o *Options) grid() []gridPoint {
	var g []gridPoint
	for _, s := range o.Seeds {
		for _, r := range o.Runs {
			g = append(g, gridPoint{r, s})
		}
	}
	return g
}

// spec is how the trainer is asked for p.
func (o *Options) spec(p gridPoint) Spec {
	return Spec{Preset: o.Preset, Run: p.run, Seed: p.seed, Data: o.Data, Set: o.Set, Quiet: o.Quiet,
		Out: filepath.Join(o.Dir, "runs", o.name(p))}
}
