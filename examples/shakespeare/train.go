package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/ui/commandline"

	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// trainOptions are the train command's flags; hyperparameters go through -set.
type trainOptions struct {
	Preset, Data, Out, Set string
	Run                    int
	Seed                   int64
	Restart, Quiet         bool
	BenchTokens, BenchReps int
	Thresholds             string
	CheckpointEvery        int
	Devices                int // data-parallel over this many devices (devices.go); 0 (the zero value): 1; allDevices: all

	Device        string // cpu, cuda or auto (backend.SetDevice); "": $SMI_DEVICE, else cpu
	Deterministic bool   // run-to-run determinism on a GPU (backend.SetDeterministic); false: $SMI_DETERMINISTIC

	stopAt int // tests: stop as if interrupted after this iteration (0: never)
}

// errStopped reports a run stopped early (Ctrl-C) after saving a checkpoint to resume from.
var errStopped = errors.New("stopped")

func trainFlags(name string) (*flag.FlagSet, *trainOptions) {
	o := &trainOptions{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&o.Preset, "preset", "cpu", "model and recipe: "+strings.Join(gpt.PresetNames(), ", "))
	fs.IntVar(&o.Run, "run", 0, "the paper's configuration: 0 (AdamW alone) to 5 (SMI, cosine alpha)")
	fs.Int64Var(&o.Seed, "seed", 1337, "seed for initialisation, dropout and batches")
	fs.StringVar(&o.Data, "data", data.DefaultPath(), "UTF-8 text file to train on, one character a token (default: tiny Shakespeare, downloaded there when missing)")
	fs.StringVar(&o.Out, "out", "", "run directory (default results/shakespeare/<preset>-run<run>-seed<seed>)")
	fs.StringVar(&o.Set, "set", "", `hyperparameters, e.g. "max_iters=500;learning_rate=3e-4;optimizer=smi;smi_quantile=0.3"`+
		"\n(names: "+strings.Join(append(gpt.ParamNames(), gomlxopt.ParamOptimizer+" (adamw or smi)",
		"smi_*: see the optimizers package"), ", ")+")")
	fs.BoolVar(&o.Restart, "restart", false, "delete the run directory's checkpoints and results (it says which) and start over")
	fs.IntVar(&o.CheckpointEvery, "checkpoint_every", 0, "also save a checkpoint every N iterations (0: only at evaluations and when stopped)")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress bar, a line per evaluation instead (for logs)")
	fs.IntVar(&o.BenchTokens, "bench_tokens", 100, "tokens generated per repetition of the inference-speed measurement (0 skips it)")
	fs.IntVar(&o.BenchReps, "bench_reps", 10, "repetitions of the inference-speed measurement")
	fs.StringVar(&o.Thresholds, "thresholds", results.DefaultThresholds, "training-loss thresholds for iterations-to-threshold")
	fs.IntVar(&o.Devices, "devices", 1, devicesUsage)
	fs.StringVar(&o.Device, "device", "", backend.DeviceUsage)
	fs.BoolVar(&o.Deterministic, "deterministic", false, backend.DeterministicUsage+" when set, else as the run resumed was started")
	return fs, o
}

func (o *trainOptions) outDir() string {
	if o.Out != "" {
		return o.Out
	}
	return filepath.Join("results", "shakespeare", fmt.Sprintf("%s-run%d-seed%d", o.Preset, o.Run, o.Seed))
}

// settings builds the hyperparameters of the requested run: preset, run table, then -set, and
// checks that they make a model and an optimizer. vocabSize is the data's; 0 before the data is
// read (checkSettings), where the preset's stands in and vocab_size alone is left unchecked.
func (o *trainOptions) settings(vocabSize int) (*context.Context, gpt.Config, error) {
	preset, err := gpt.Preset(o.Preset)
	if err != nil {
		return nil, gpt.Config{}, err
	}
	r, err := results.LookupRun(o.Run)
	if err != nil {
		return nil, gpt.Config{}, err
	}
	if vocabSize > 0 {
		preset.VocabSize = vocabSize
	}
	ctx := context.New()
	preset.SetParams(ctx)
	setRunParams(ctx, r)
	ctx.SetParam("preset", o.Preset)
	ctx.SetParam("run", o.Run)
	ctx.SetParam("seed", o.Seed)
	set, err := commandline.ParseContextSettings(ctx, o.Set)
	if err != nil {
		if legacySMISetting(o.Set) {
			return nil, gpt.Config{}, fmt.Errorf("-set %q: %v; %s=true is now optimizer=%s (and %s=false optimizer=%s)",
				o.Set, err, legacyParamSMI, smiopt.OptimizerName, legacyParamSMI, trainerBase)
		}
		return nil, gpt.Config{}, fmt.Errorf("-set %q: %v", o.Set, err)
	}
	// The run's identity has flags of its own, which name its directory and its batches; a -set
	// of them would be recorded with the run without changing what it trains.
	for _, name := range set {
		if name == "preset" || name == "run" || name == "seed" {
			return nil, gpt.Config{}, fmt.Errorf("-set %s: choose it with the flag -%s instead", name, name)
		}
	}
	if !smiOn(ctx) {
		for _, name := range set {
			if strings.HasPrefix(name, "smi_") {
				return nil, gpt.Config{}, fmt.Errorf("-set %s has no effect with SMI off (optimizer=%s, run 0): choose -run 1 to 5, or add optimizer=%s",
					name, context.GetParamOr(ctx, gomlxopt.ParamOptimizer, ""), smiopt.OptimizerName)
			}
		}
	}
	cfg, err := gpt.FromContext(ctx, preset)
	if err != nil {
		return nil, gpt.Config{}, err
	}
	if err := checkIters(cfg); err != nil {
		return nil, gpt.Config{}, err
	}
	if vocabSize > 0 && cfg.VocabSize != vocabSize {
		return nil, gpt.Config{}, fmt.Errorf("vocab_size is set by the data (%d), got %d", vocabSize, cfg.VocabSize)
	}
	// smi_total_steps defaults to max_iters; set, it must be positive like every other length.
	if slices.Contains(set, smiopt.ParamTotalSteps) {
		if n := context.GetParamOr(ctx, smiopt.ParamTotalSteps, 0); n <= 0 {
			return nil, gpt.Config{}, fmt.Errorf("-set %s=%d: it must be > 0 (leave it out for max_iters, %d)", smiopt.ParamTotalSteps, n, cfg.MaxIters)
		}
	} else {
		ctx.SetParam(smiopt.ParamTotalSteps, cfg.MaxIters)
	}
	// The optimizer's settings (optimizer, smi_base, smi_*) are checked by building it, which
	// reads ctx and changes nothing.
	if _, err := newOptimizer(ctx, cfg); err != nil {
		return nil, gpt.Config{}, err
	}
	return ctx, cfg, nil
}

// checkSettings checks the settings before the data is read (or downloaded), so that a bad -set
// is refused at once: all of them but vocab_size, which needs the data (settings checks it).
func (o *trainOptions) checkSettings() error {
	_, _, err := o.settings(0)
	return err
}

// legacySMISetting reports whether settings (-set's value) sets the "smi" boolean that chose SMI
// before the "optimizer" hyperparameter did.
func legacySMISetting(settings string) bool {
	for _, setting := range strings.Split(settings, ";") {
		if key, _, _ := strings.Cut(setting, "="); strings.TrimSpace(key) == legacyParamSMI {
			return true
		}
	}
	return false
}

// history is the run's record so far; it is saved with each checkpoint so a resumed run
// reports the whole run.
type history struct {
	IterLoss     []float64          `json:"iter_loss"` // training loss of each iteration's batch
	Evals        []results.Eval     `json:"evals"`
	TrainSeconds float64            `json:"train_seconds"` // training steps only (incl. first-step compilation)
	Telemetry    []results.SMIPoint `json:"smi_telemetry,omitempty"`

	// Deterministic: run-to-run determinism was asked for from the run's first iteration on
	// (backend.Deterministic): a resumed run continues so (see determinismFor).
	Deterministic bool `json:"deterministic,omitempty"`

	// Devices: the device counts (-devices) the run's iterations trained on, each once, in the
	// order first used; empty in checkpoints written before it was recorded.
	Devices []int `json:"devices,omitempty"`

	// TrainStarts: the invocations that trained the iterations recorded here, each of which
	// compiled the training step within TrainSeconds; 0 in checkpoints written before it was
	// recorded (and then never counted: the starts before are unknown).
	TrainStarts int `json:"train_starts,omitempty"`

	// Wall time outside the training steps (see results.Metrics): the evaluations, training's waits for
	// checkpoints, and the checkpoints' background writes; each up to the checkpoint that holds it.
	EvalSeconds            float64 `json:"eval_seconds"`
	CheckpointSeconds      float64 `json:"checkpoint_seconds"`
	CheckpointWriteSeconds float64 `json:"checkpoint_write_seconds"`
}

const historyFile = "history.json"

func cmdTrain(args []string) error {
	fs, o := trainFlags("train")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fs, args, ""); err != nil {
		return err
	}
	thresholds, err := results.ParseThresholds(o.Thresholds)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	// The inference-speed measurement: the speed command's rules, with 0 tokens to skip it.
	if o.BenchTokens != 0 {
		if err := study.CheckSpeedSize("-bench_tokens", o.BenchTokens, "-bench_reps", o.BenchReps); err != nil {
			return err
		}
	}
	// What needs no data is checked before the data is read (or downloaded), so that a mistyped
	// flag is not hidden behind a missing file: the preset, the run, the device, the settings
	// (-set) and the run directory.
	if _, err := gpt.Preset(o.Preset); err != nil {
		return &cli.UsageError{Err: err}
	}
	if _, err := results.LookupRun(o.Run); err != nil {
		return &cli.UsageError{Err: err}
	}
	if o.CheckpointEvery < 0 {
		return cli.Usagef("-checkpoint_every must be >= 0, got %d", o.CheckpointEvery)
	}
	switch {
	case o.Devices < 0:
		return cli.Usagef("-devices must be >= 0 (0: all of the backend's devices), got %d", o.Devices)
	case o.Devices == 0:
		o.Devices = allDevices
	}
	if err := study.CheckDevice(o.Device); err != nil {
		return err
	}
	if err := o.checkSettings(); err != nil {
		return &cli.UsageError{Err: err}
	}
	// The run directory is written throughout, its lock first: one that cannot be written is a
	// bad -out.
	if err := cli.CheckFolder("-out", o.outDir()); err != nil {
		return err
	}
	if err := backend.SetDevice(o.Device); err != nil {
		return err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "deterministic" })
	if set, inherited := determinismFor(o, given, os.Getenv(backend.DeterministicEnv)); set {
		backend.SetDeterministic(true)
		if inherited {
			fmt.Printf("%s was started with run-to-run determinism (-deterministic), which it keeps.\n", o.outDir())
		}
	}
	corpus, err := data.Open(o.Data)
	if err != nil {
		return err
	}
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil { // every setting comes from the command line: -preset, -run, -seed and -set
		return &cli.UsageError{Err: err}
	}
	if err := backend.PrepareDevices(o.Devices); err != nil {
		return err
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	res, err := trainRun(b, ctx, cfg, corpus, o, thresholds)
	if err != nil {
		return err
	}
	printSummary(res, o.outDir())
	return nil
}

// determinismFor says whether train asks the backend for run-to-run determinism (set), and
// whether because the run it resumes was started so (inherited): -deterministic when given
// (true or false), else $SMI_DETERMINISTIC when set (env: its value; the backend reads it), else
// as the run in o's directory began, so that a command repeated without the flag to resume does
// not make a deterministic run nondeterministic from there on; -restart starts anew.
func determinismFor(o *trainOptions, flagGiven bool, env string) (set, inherited bool) {
	if flagGiven || env != "" || o.Restart {
		return o.Deterministic, false
	}
	if runStore(o.outDir()).startedDeterministic() {
		return true, true
	}
	return false, false
}

// trainRun trains (or resumes) one run and writes its metrics, plot and checkpoint. It holds
// the run directory's lock throughout (see results.LockDir) and saves crash-safe checkpoints
// (see ckptStore).
func trainRun(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, o *trainOptions, thresholds []float64) (*results.Metrics, error) {
	start := time.Now()
	par, err := checkRun(b, ctx, cfg, corpus, o)
	if err != nil {
		return nil, err
	}
	dir := o.outDir()
	lock, err := results.LockDir(dir, "-out")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	r, err := startRun(b, ctx, cfg, corpus, o, par)
	if err != nil {
		return nil, err
	}
	if err := r.train(); err != nil {
		return nil, err
	}
	if r.startIter == cfg.MaxIters && !o.Quiet {
		fmt.Printf("%s is already complete; rewriting its metrics and plot.\n", dir)
	}
	return r.finish(thresholds, start)
}

// checkRun checks the run's settings before anything is written, and before any graph is
// built, and returns how it is spread over devices.
func checkRun(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, o *trainOptions) (*dataParallel, error) {
	if err := checkData(cfg, corpus, o.Data); err != nil {
		return nil, err
	}
	par, err := o.dataParallel(b, cfg)
	if err != nil {
		return nil, err
	}
	if err := checkMemory(b, cfg, par.numDevices(), keepsHistories(ctx)); err != nil {
		return nil, err
	}
	ctx.SetParam(paramData, corpus.SHA256)
	return par, nil
}

// runState is a run being trained, from its start (or resumption) to its metrics.
type runState struct {
	b      backends.Backend
	ctx    *context.Context
	cfg    gpt.Config
	corpus *data.Corpus
	o      *trainOptions
	par    *dataParallel

	store     ckptStore
	hist      *history
	loaded    *checkpoints.Handler // the checkpoint resumed from; nil for a new run
	startIter int                  // the iterations done before this invocation
	ev        *evaluator
	writer    *ckptWriter // checkpoints in the background; writer.saved is the newest complete one
	lastVal   float64     // the last evaluation's validation loss, for the progress bar

	interrupted      atomic.Bool // a signal asked to stop after this step
	stepStart        time.Time
	stopErr, saveErr error             // returned as they are, not wrapped in the training loop's context
	diverged         *results.Diverged // set when a loss was not finite; train returns it (divergence)
}

// startRun opens the run directory's checkpoints (-restart deletes them first) and resumes from
// the newest one that reads back, or starts anew from o.Seed.
func startRun(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, o *trainOptions, par *dataParallel) (*runState, error) {
	store := runStore(o.outDir())
	if o.Restart {
		if err := restartRun(store); err != nil {
			return nil, err
		}
	}
	hist, from, err := restore(ctx, store)
	if err != nil {
		return nil, err
	}
	resumed := from != ""
	// The record says deterministic only when every iteration was: a run started without it stays
	// without, and one resumed without it (a study's, which does not look) says so.
	switch now := backend.Deterministic(); {
	case !resumed:
		hist.Deterministic = now
	case len(hist.IterLoss) < cfg.MaxIters && hist.Deterministic && !now:
		fmt.Printf("%s was started with run-to-run determinism; it continues without (give -deterministic or %s=1 to keep it).\n",
			o.outDir(), backend.DeterministicEnv)
		hist.Deterministic = false
	}
	// The device counts that train: this invocation's joins the record when it trains iterations.
	if n := par.numDevices(); len(hist.IterLoss) < cfg.MaxIters && !slices.Contains(hist.Devices, n) {
		hist.Devices = append(hist.Devices, n)
	}
	if len(hist.IterLoss) < cfg.MaxIters && (len(hist.IterLoss) == 0 || hist.TrainStarts > 0) {
		hist.TrainStarts++
	}
	if err := store.prepareStaging(); err != nil {
		return nil, err
	}
	// GoMLX's handler reads the checkpoint resumed from, and gives each variable its value there
	// when the graphs create it. It writes nothing: saves go through snapshots (see ckptWriter).
	// The hyperparameters are ctx's, which restore found equal to the checkpoint's (after
	// migrateParams): names an older version saved and this one no longer has stay out.
	var loaded *checkpoints.Handler
	if resumed {
		if loaded, err = checkpoints.Build(ctx).Dir(from).ExcludeAllParams().Done(); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %v", from, err)
		}
	}
	ctx = ctx.Checked(false)
	if !resumed {
		if err := ctx.SetRNGStateFromSeed(o.Seed); err != nil {
			return nil, err
		}
	}
	r := &runState{b: b, ctx: ctx, cfg: cfg, corpus: corpus, o: o, par: par, store: store, hist: hist, loaded: loaded,
		startIter: len(hist.IterLoss), lastVal: math.NaN(), writer: &ckptWriter{store: store}}
	switch {
	case resumed && r.startIter < cfg.MaxIters:
		fmt.Printf("Resuming %s from iteration %d of %d.\n", o.outDir(), r.startIter, cfg.MaxIters)
	case !resumed: // the progress bar starts with the first step, after the first evaluation
		fmt.Printf("Training %s: %d iterations, after evaluating the initial model on %d batches of each split.\n",
			o.outDir(), cfg.MaxIters, cfg.EvalIters)
	}
	if n := len(hist.Evals); n > 0 {
		r.lastVal = hist.Evals[n-1].Val
	}
	r.writer.saved.Store(int64(r.startIter))
	return r, nil
}

// train runs the training loop to max_iters, evaluating and checkpointing as it goes; however
// it ends, the checkpoint being written is complete (or its failure reported) when it returns.
func (r *runState) train() error {
	opt, err := newOptimizer(r.ctx, r.cfg)
	if err != nil {
		return err
	}
	loop := train.NewLoop(newTrainer(r.b, r.ctx, r.cfg, opt))
	r.ev = r.par.evaluator(newEvaluator(r.b, r.ctx, r.cfg, r.corpus, r.o.Seed))
	// An evaluation's progress goes to the line below GoMLX's progress bar (where GoMLX leaves the
	// cursor), and is cleared from there when it ends, before GoMLX redraws its bar. GoMLX's bar
	// and the -quiet lines say the iteration.
	r.ev.progress = showProgress("evaluating")
	if !r.o.Quiet {
		r.attachProgressBar(loop)
	}
	if r.startIter == 0 {
		if err := r.evaluate(0); err != nil {
			if r.diverged != nil {
				return r.divergence()
			}
			return err
		}
	}
	stopSignals := r.watchSignals()
	// Steps are timed from one step's end to the next, so hook work (evaluation, checkpoints)
	// is left out of the training time.
	r.stepStart = time.Now()
	loop.OnStep("record", 0, r.afterStep)
	ds := r.par.dataset(&batches{corpus: r.corpus, cfg: r.cfg, seed: r.o.Seed, next: r.startIter})
	_, err = loop.RunToGlobalStep(ds, r.cfg.MaxIters)
	began := time.Now()
	writeErr := r.collect(r.writer.wait())
	r.hist.CheckpointSeconds += time.Since(began).Seconds()
	stopSignals() // from here on Ctrl-C ends the program: the checkpoint is complete
	switch {
	case writeErr != nil: // before stopErr, whose message promises a checkpoint
		return writeErr
	case err != nil && r.stopErr != nil:
		return r.stopErr
	case err != nil && r.saveErr != nil:
		return r.saveErr
	case err != nil && r.diverged != nil:
		return r.divergence()
	case err != nil && r.startIter > 0 && strings.Contains(err.Error(), "requested to reuse variable"):
		// A checkpoint that reads back whole (its digests and layout check out) but whose variables
		// have other shapes than these settings build: made by other code, or edited.
		return fmt.Errorf("%v\nThe checkpoint in %s holds variables of other shapes than these settings build: "+
			"-restart discards it, or -out trains in another directory", err, r.store.dir)
	case err != nil:
		return err
	case len(r.hist.IterLoss) != r.cfg.MaxIters:
		return fmt.Errorf("internal error: recorded %d iterations, expected %d", len(r.hist.IterLoss), r.cfg.MaxIters)
	}
	return nil
}

// attachProgressBar shows GoMLX's progress bar with the last validation loss, the training
// speed and the time spent outside training steps.
func (r *runState) attachProgressBar(loop *train.Loop) {
	tokensPerIter := float64(r.cfg.BatchSize * r.cfg.BlockSize)
	commandline.AttachProgressBar(loop,
		func() (string, string) { return "val loss (last eval)", fmt.Sprintf("%.4f", r.lastVal) },
		func() (string, string) {
			return "train tokens/s", fmt.Sprintf("%.0f", tokensPerIter/loop.MedianTrainStepDuration().Seconds())
		},
		func() (string, string) {
			return "s evaluating / checkpoints", fmt.Sprintf("%.0f / %.0f", r.hist.EvalSeconds, r.hist.CheckpointSeconds)
		})
}

// watchSignals makes Ctrl-C, SIGTERM (job schedulers, docker stop) and SIGHUP (a closed
// terminal) stop training at the end of the current step, with a checkpoint, so no work is lost;
// a second one exits at once. The returned function stops watching.
func (r *runState) watchSignals() (stop func()) {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig, ok := <-signals
		if !ok {
			return
		}
		r.interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\n%v: stopping after this step, with a checkpoint (signal again to exit at once).\n", sig)
		if sig, ok = <-signals; ok {
			fmt.Fprintln(os.Stderr, exitAtOnceMessage(sig, r.writer.saved.Load()))
			os.Exit(1)
		}
	}()
	return func() {
		signal.Stop(signals)
		close(signals)
	}
}

// exitAtOnceMessage is what the trainer prints on a second signal, before it exits without
// saving: where the same command takes the run up, at saved, the iteration of its newest complete
// checkpoint, or from the start when saved is 0 (none was saved yet: iteration 0's evaluation
// saves none).
func exitAtOnceMessage(sig os.Signal, saved int64) string {
	if saved <= 0 {
		return fmt.Sprintf("%v again: exiting without saving; no checkpoint saved yet: the same command starts the run over.", sig)
	}
	return fmt.Sprintf("%v again: exiting without saving; the run resumes from its checkpoint of iteration %d (run the same command).", sig, saved)
}

// afterStep records a finished training step: its loss and SMI's telemetry, then the
// evaluation and checkpoint due, and the stop a signal (or a test) asked for.
func (r *runState) afterStep(_ *train.Loop, metrics []*tensors.Tensor) error {
	r.hist.TrainSeconds += time.Since(r.stepStart).Seconds()
	if r.saveErr = r.writer.failed(); r.saveErr != nil { // a background write failed: stop now
		return r.saveErr
	}
	loss := float64(tensors.ToScalar[float32](metrics[0]))
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		r.diverged = &results.Diverged{Iter: len(r.hist.IterLoss) + 1, Loss: loss}
		return errDivergedStep
	}
	r.hist.IterLoss = append(r.hist.IterLoss, loss)
	iter := len(r.hist.IterLoss)
	if alpha, kept, ok := smiopt.Telemetry(r.ctx); ok {
		r.hist.Telemetry = append(r.hist.Telemetry, results.SMIPoint{Iter: iter, Alpha: alpha, KeptEnergy: kept})
	}
	evalIter := iter%r.cfg.EvalInterval == 0 || iter == r.cfg.MaxIters
	if evalIter {
		if err := r.evaluate(iter); err != nil {
			return err
		}
	}
	stop := r.interrupted.Load() || iter == r.o.stopAt
	if evalIter || stop || r.o.CheckpointEvery > 0 && iter%r.o.CheckpointEvery == 0 {
		if r.saveErr = r.save(); r.saveErr != nil {
			return r.saveErr
		}
	}
	if stop {
		r.stopErr = fmt.Errorf("%w at iteration %d of %d with a checkpoint in %s: run the same command to resume",
			errStopped, iter, r.cfg.MaxIters, r.store.stepDir(iter))
		return r.stopErr
	}
	if iter == r.startIter+1 { // the optimizer's state exists from the first step on
		r.warnSpace(iter)
	}
	if stepHook != nil {
		stepHook(iter)
	}
	r.stepStart = time.Now()
	return nil
}

// warnSpace warns, once the state is whole, when the disk cannot hold the checkpoints the run has
// left to save after iteration iter (ckptStore.spaceWarning): while it trains on, space can be
// freed before a save fails.
func (r *runState) warnSpace(iter int) {
	saves := 0
	for i := iter + 1; i <= r.cfg.MaxIters; i++ {
		if i%r.cfg.EvalInterval == 0 || i == r.cfg.MaxIters || r.o.CheckpointEvery > 0 && i%r.o.CheckpointEvery == 0 {
			saves++
		}
	}
	last := estimateCheckpoint(r.ctx, r.cfg.MaxIters, r.cfg.MaxIters/r.cfg.EvalInterval+2) // the largest: the history grows
	if w := r.store.spaceWarning(last, saves); w != "" {
		fmt.Fprintln(os.Stderr, w)
	}
}

// errDivergedStep stops the training loop at a step whose loss, or whose evaluation's, is not
// finite; train returns divergence's error instead.
var errDivergedStep = errors.New("a loss is not finite")

// divergence says at which iteration training diverged, with what settings, and what to do: the
// run resumes from its newest checkpoint, written before, with the same batches and dropout, so
// rerunning the command would most likely diverge at the same iteration again.
func (r *runState) divergence() error {
	d := r.diverged
	d.MaxIters = r.cfg.MaxIters
	d.Detail = fmt.Sprintf(" (learning rate %.3g there, peak learning_rate %g, grad_clip %g); ",
		r.cfg.LearningRateAt(max(d.Iter-1, 0)), r.cfg.LearningRate, r.cfg.GradClip)
	saved := int(r.writer.saved.Load())
	if _, err := os.Stat(r.store.stepDir(saved)); err != nil {
		d.Detail += "no checkpoint was saved before it, and the same command would most likely diverge there again: " +
			"change the settings (-set, e.g. a lower learning_rate)"
	} else {
		d.Detail += fmt.Sprintf("the newest checkpoint, of iteration %d, is in %s, but resuming from it repeats the same batches "+
			"and would most likely diverge again: change the settings (-set, e.g. a lower learning_rate) and start over with "+
			"-restart, or train into another -out", saved, r.store.stepDir(saved))
	}
	return d
}

// evaluate estimates the losses after iteration iter and records them. A loss that is not finite
// (the step's update made the weights so, though its batch's loss was finite) is a divergence at
// iter: nothing is recorded, and no checkpoint saves those weights.
func (r *runState) evaluate(iter int) error {
	began := time.Now()
	trainLoss, valLoss, err := r.ev.losses(iter)
	if err != nil {
		return err
	}
	for _, loss := range []float64{trainLoss, valLoss} {
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			r.diverged = &results.Diverged{Iter: iter, Loss: loss, InEvaluation: true}
			return errDivergedStep
		}
	}
	took := time.Since(began).Seconds()
	r.hist.EvalSeconds += took
	r.hist.Evals = append(r.hist.Evals, results.Eval{Iter: iter, Train: trainLoss, Val: valLoss, LR: r.cfg.LearningRateAt(max(iter-1, 0))})
	r.lastVal = valLoss
	if r.o.Quiet {
		fmt.Printf("iteration %d/%d: train loss %.4f, val loss %.4f (%.0f s training; this evaluation %.1f s, all %.0f s; checkpoints %.0f s)\n",
			iter, r.cfg.MaxIters, trainLoss, valLoss, r.hist.TrainSeconds, took, r.hist.EvalSeconds, r.hist.CheckpointSeconds)
	}
	return nil
}

// save checkpoints the state after the current iteration. Training waits while the state is
// copied to host memory, and first for the previous write if it is still in flight: at most one
// write is in flight, so a checkpoint due during a write waits for it (before copying, so that
// one copy of the state is held at a time).
func (r *runState) save() error {
	began := time.Now()
	defer func() { r.hist.CheckpointSeconds += time.Since(began).Seconds() }()
	if err := r.collect(r.writer.wait()); err != nil {
		return err
	}
	snap, err := takeSnapshot(r.ctx, r.loaded, r.hist)
	if err != nil {
		return fmt.Errorf("checkpoint of iteration %d: %w", len(r.hist.IterLoss), err)
	}
	r.writer.start(snap)
	return nil
}

// collect puts a finished write's seconds into the history, and returns its error.
func (r *runState) collect(w writeResult) error {
	r.hist.CheckpointWriteSeconds += w.seconds
	return w.err
}

// finish measures the trained model's inference speed (unless -bench_tokens 0) and writes the
// run's metrics and loss plot.
func (r *runState) finish(thresholds []float64, start time.Time) (*results.Metrics, error) {
	o, dir := r.o, r.o.outDir()
	m := newMetrics(r.b, o, r.ctx, r.cfg, r.hist, thresholds)
	// The count that trained the run (not this invocation's, which may have trained nothing).
	switch len(r.hist.Devices) {
	case 0: // a checkpoint from before the record
		m.Devices = r.par.numDevices()
	case 1:
		m.Devices = r.hist.Devices[0]
	default: // resumed on other counts: none trained the whole run
		m.Devices, m.DeviceCounts = 0, r.hist.Devices
	}
	m.Data = dataInfo(o.Data, r.corpus)
	if o.BenchTokens > 0 {
		if !o.Quiet {
			fmt.Printf("Measuring inference speed (%d repetitions of %d tokens)...\n", o.BenchReps, o.BenchTokens)
		}
		inf, err := benchInference(r.b, r.ctx, r.cfg, r.corpus, o.Seed, o.BenchTokens, o.BenchReps)
		if err != nil {
			return nil, err
		}
		m.Inference = inf
	}
	m.TotalSeconds = time.Since(start).Seconds()
	// The plot first: metrics.json marks the run complete (a study skips a run that has one).
	if err := results.PlotRun(filepath.Join(dir, "loss.png"), m); err != nil {
		return nil, r.resultsNotWritten(fmt.Errorf("plotting: %w", err))
	}
	if err := results.WriteJSON(filepath.Join(dir, "metrics.json"), m); err != nil {
		return nil, r.resultsNotWritten(err)
	}
	return m, nil
}

// resultsNotWritten says, with err, that a run whose results could not be written is safe: its
// training ended with a complete checkpoint, from which the same command writes them.
func (r *runState) resultsNotWritten(err error) error {
	return fmt.Errorf("%v\nTraining is complete and its checkpoint of iteration %d is intact in %s; "+
		"fix the cause and run the same command to write the results (it trains nothing)", err, r.writer.saved.Load(), r.store.dir)
}

// stepHook, when set (by tests), is called at the end of each training step with its iteration.
var stepHook func(iter int)

// newTrainer is GoMLX's trainer of the GPT of cfg with opt.
func newTrainer(b backends.Backend, ctx *context.Context, cfg gpt.Config, opt gomlxopt.Interface) *train.Trainer {
	// GoMLX v0.26's own gradients of matrix products make each step many times slower; this
	// must happen before the training step is compiled (see package dotgrad).
	dotgrad.Enable()
	modelFn := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{gpt.Logits(ctx, cfg, inputs[0])}
	}
	lossFn := func(labels, predictions []*Node) *Node { return gpt.Loss(predictions[0], labels[0]) }
	return train.NewTrainer(b, ctx, modelFn, lossFn, opt, nil, nil)
}

// restore finds the newest checkpoint of store that reads back and checks that it holds the
// same run as ctx. from is its directory ("" when there is none: a new run). Newer checkpoints
// that do not read back (a save cut short by an older version, a damaged disk) are skipped with
// one line each.
func restore(ctx *context.Context, store ckptStore) (hist *history, from string, err error) {
	c, saved, hist, skipped, found, err := store.newest()
	if err != nil && !found { // the directory itself cannot be read: -restart would not help
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("%v\nUse -restart to discard them and start over (it deletes %s)", err, store.dir)
	}
	if !found {
		return &history{}, "", nil
	}
	if len(skipped) > 0 {
		fmt.Printf("Using the checkpoint of iteration %d: newer ones do not read back (%s).\n", len(hist.IterLoss), strings.Join(skipped, "; "))
	}
	// Another text first: the cure is the file it trained on, not another run.
	if trained, given := context.GetParamOr(saved, paramData, ""), context.GetParamOr(ctx, paramData, ""); trained != given {
		return nil, "", fmt.Errorf("%v.\nTo train this text instead: -restart discards the run and starts over, or -out trains in another directory",
			errOtherText(filepath.Dir(store.dir), trained, given))
	}
	var diffs []string
	ctx.EnumerateParams(func(scope, key string, value any) {
		if old, ok := saved.GetParam(key); !ok || fmt.Sprint(old) != fmt.Sprint(value) {
			diffs = append(diffs, fmt.Sprintf("%s=%v (checkpoint: %v)", key, value, old))
		}
	})
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return nil, "", fmt.Errorf("%s holds a run with different settings: %s.\n"+
			"Use -restart to discard it, or -out for another directory", filepath.Dir(store.dir), strings.Join(diffs, ", "))
	}
	return hist, c.dir, nil
}

// runResults are the files a run directory holds about its finished run: train's metrics and
// loss plot, analyze's analysis and its plot. -restart deletes them with the checkpoints, since
// they describe the run it discards.
var runResults = []string{"metrics.json", "loss.png", "analysis.json", "spectral_norms.png"}

// restartRun deletes a run's checkpoints and results (runResults) for -restart, saying what it
// deletes.
func restartRun(store ckptStore) error {
	all, err := store.list()
	if err != nil {
		return err
	}
	if len(all) > 0 {
		var steps []string
		for _, c := range all {
			if c.step >= 0 {
				steps = append(steps, strconv.Itoa(c.step))
			} else {
				steps = append(steps, "an older layout's")
			}
		}
		fmt.Printf("-restart: deleting %s (%d checkpoints, of iterations %s).\n", store.dir, len(all), strings.Join(steps, ", "))
	}
	if err := os.RemoveAll(store.dir); err != nil {
		return fmt.Errorf("-restart: %w", err)
	}
	var deleted []string
	for _, name := range runResults {
		switch err := os.Remove(filepath.Join(filepath.Dir(store.dir), name)); {
		case err == nil:
			deleted = append(deleted, name)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("-restart: %w", err)
		}
	}
	if len(deleted) > 0 {
		fmt.Printf("-restart: deleting the results of the run it discards: %s.\n", strings.Join(deleted, ", "))
	}
	return nil
}

// batches yields training batches; batch i depends only on (seed, i).
type batches struct {
	corpus *data.Corpus
	cfg    gpt.Config
	seed   int64
	next   int
}

func (d *batches) Name() string { return "tinyshakespeare-train" }
func (d *batches) Reset()       {}
func (d *batches) Yield() (spec any, inputs, labels []*tensors.Tensor, err error) {
	rng := data.RNG(d.seed, data.StreamTrain+uint64(d.next))
	d.next++
	x, y := data.Batch(d.corpus.Train, rng, d.cfg.BatchSize, d.cfg.BlockSize)
	return nil, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, d.cfg.BatchSize, d.cfg.BlockSize)},
		[]*tensors.Tensor{tensors.FromFlatDataAndDimensions(y, d.cfg.BatchSize, d.cfg.BlockSize)}, nil
}

func printSummary(m *results.Metrics, dir string) {
	fmt.Printf("\n%s, run %d (%s), seed %d, %d iterations on %s\n", m.Preset, m.Run, m.RunName, m.Seed, m.Config.MaxIters, m.Backend)
	fmt.Printf("  final loss: train %.4f, val %.4f (best val %.4f at iteration %d)\n",
		m.FinalTrainLoss, m.FinalValLoss, m.BestValLoss, m.BestValIter)
	variance := fmt.Sprintf("%.3g", float64(m.FinalLossVariance))
	if why, ok := m.Undefined["final_loss_variance"]; ok {
		variance = "undefined (" + why + ")"
	}
	fmt.Printf("  training: %.1f s, %.0f tokens/s; loss variance over the last %d iterations: %s\n",
		m.TrainSeconds, m.TrainTokensPerSec, m.VarianceWindow, variance)
	if m.Inference != nil {
		fmt.Printf("  inference: %.1f tokens/s (95%% CI %.1f to %.1f)\n", m.Inference.TokensPerSec, m.Inference.CI95[0], m.Inference.CI95[1])
	}
	fmt.Printf("Results:    %s\n", filepath.Join(dir, "metrics.json"))
	fmt.Printf("Plot:       %s\n", filepath.Join(dir, "loss.png"))
	fmt.Printf("Checkpoint: %s\n", filepath.Join(dir, "checkpoint"))
}
