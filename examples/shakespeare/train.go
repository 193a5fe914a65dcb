package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
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
	"gonum.org/v1/gonum/stat"

	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/backend"
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

	Device string // cpu, cuda or auto (backend.SetDevice); "": $SMI_DEVICE, else cpu

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
	fs.BoolVar(&o.Restart, "restart", false, "delete the run directory's checkpoints (it says which) and start over")
	fs.IntVar(&o.CheckpointEvery, "checkpoint_every", 0, "also save a checkpoint every N iterations (0: only at evaluations and when stopped)")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress bar, a line per evaluation instead (for logs)")
	fs.IntVar(&o.BenchTokens, "bench_tokens", 100, "tokens generated per repetition of the inference-speed measurement (0 skips it)")
	fs.IntVar(&o.BenchReps, "bench_reps", 10, "repetitions of the inference-speed measurement")
	fs.StringVar(&o.Thresholds, "thresholds", results.DefaultThresholds, "training-loss thresholds for iterations-to-threshold")
	fs.IntVar(&o.Devices, "devices", 1, devicesUsage)
	fs.StringVar(&o.Device, "device", "", backend.DeviceUsage)
	return fs, o
}

func (o *trainOptions) outDir() string {
	if o.Out != "" {
		return o.Out
	}
	return filepath.Join("results", "shakespeare", fmt.Sprintf("%s-run%d-seed%d", o.Preset, o.Run, o.Seed))
}

// settings builds the hyperparameters of the requested run: preset, run table, then -set.
func (o *trainOptions) settings(vocabSize int) (*context.Context, gpt.Config, error) {
	preset, err := gpt.Preset(o.Preset)
	if err != nil {
		return nil, gpt.Config{}, err
	}
	r, err := results.LookupRun(o.Run)
	if err != nil {
		return nil, gpt.Config{}, err
	}
	preset.VocabSize = vocabSize
	ctx := context.New()
	preset.SetParams(ctx)
	setRunParams(ctx, r)
	ctx.SetParam("preset", o.Preset)
	ctx.SetParam("run", o.Run)
	ctx.SetParam("seed", o.Seed)
	set, err := commandline.ParseContextSettings(ctx, o.Set)
	if err != nil {
		if legacySMISetting(o.Set) {
			return nil, gpt.Config{}, fmt.Errorf("-set %q: %v\n%s=true is now optimizer=%s (and %s=false optimizer=%s)",
				o.Set, err, legacyParamSMI, smiopt.OptimizerName, legacyParamSMI, trainerBase)
		}
		return nil, gpt.Config{}, fmt.Errorf("-set %q: %v", o.Set, err)
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
	if cfg.VocabSize != vocabSize {
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
	return ctx, cfg, nil
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

	// Wall time outside the training steps (see results.Metrics): the evaluations, training's waits for
	// checkpoints, and the checkpoints' background writes; each up to the checkpoint that holds it.
	EvalSeconds            float64 `json:"eval_seconds"`
	CheckpointSeconds      float64 `json:"checkpoint_seconds"`
	CheckpointWriteSeconds float64 `json:"checkpoint_write_seconds"`
}

const historyFile = "history.json"

func cmdTrain(args []string) error {
	fs, o := trainFlags("train")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags go before them? see -help)", fs.Args())
	}
	thresholds, err := results.ParseThresholds(o.Thresholds)
	if err != nil {
		return err
	}
	if o.BenchTokens < 0 || o.BenchReps < 2 && o.BenchTokens > 0 {
		return fmt.Errorf("-bench_tokens must be >= 0 and -bench_reps >= 2 (for a confidence interval)")
	}
	corpus, err := data.Open(o.Data)
	if err != nil {
		return err
	}
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
		return err
	}
	switch {
	case o.Devices < 0:
		return fmt.Errorf("-devices must be >= 0 (0: all of the backend's devices), got %d", o.Devices)
	case o.Devices == 0:
		o.Devices = allDevices
	}
	if err := backend.SetDevice(o.Device); err != nil {
		return err
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

// trainRun trains (or resumes) one run and writes its metrics, plot and checkpoint. It holds
// the run directory's lock throughout (see lockRun) and saves crash-safe checkpoints (see
// ckptStore).
func trainRun(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, o *trainOptions, thresholds []float64) (*results.Metrics, error) {
	start := time.Now()
	if o.CheckpointEvery < 0 {
		return nil, fmt.Errorf("-checkpoint_every must be >= 0, got %d", o.CheckpointEvery)
	}
	// Settings are checked before anything is written, and before any graph is built.
	if err := checkData(cfg, corpus, o.Data); err != nil {
		return nil, err
	}
	if err := checkMemory(b, cfg); err != nil {
		return nil, err
	}
	ctx.SetParam(paramData, corpus.SHA256)
	if _, err := newOptimizer(ctx, cfg); err != nil {
		return nil, err
	}
	par, err := o.dataParallel(b, cfg)
	if err != nil {
		return nil, err
	}
	dir := o.outDir()
	lock, err := results.LockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	store := ckptStore{dir: filepath.Join(dir, "checkpoint")}
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
	startIter := len(hist.IterLoss)
	if resumed && startIter < cfg.MaxIters {
		fmt.Printf("Resuming %s from iteration %d of %d.\n", dir, startIter, cfg.MaxIters)
	}

	opt, err := newOptimizer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	trainer := newTrainer(b, ctx, cfg, opt)
	loop := train.NewLoop(trainer)
	ev := par.evaluator(newEvaluator(b, ctx, cfg, corpus, o.Seed))

	lastVal := math.NaN()
	if n := len(hist.Evals); n > 0 {
		lastVal = hist.Evals[n-1].Val
	}
	tokensPerIter := float64(cfg.BatchSize * cfg.BlockSize)
	if !o.Quiet {
		commandline.AttachProgressBar(loop,
			func() (string, string) { return "val loss (last eval)", fmt.Sprintf("%.4f", lastVal) },
			func() (string, string) {
				return "train tokens/s", fmt.Sprintf("%.0f", tokensPerIter/loop.MedianTrainStepDuration().Seconds())
			},
			func() (string, string) {
				return "s evaluating / checkpoints", fmt.Sprintf("%.0f / %.0f", hist.EvalSeconds, hist.CheckpointSeconds)
			})
	}
	evaluate := func(iter int) error {
		began := time.Now()
		trainLoss, valLoss, err := ev.losses(iter)
		if err != nil {
			return err
		}
		took := time.Since(began).Seconds()
		hist.EvalSeconds += took
		hist.Evals = append(hist.Evals, results.Eval{Iter: iter, Train: trainLoss, Val: valLoss, LR: cfg.LearningRateAt(max(iter-1, 0))})
		lastVal = valLoss
		if o.Quiet {
			fmt.Printf("iteration %d/%d: train loss %.4f, val loss %.4f (%.0f s training; this evaluation %.1f s, all %.0f s; checkpoints %.0f s)\n",
				iter, cfg.MaxIters, trainLoss, valLoss, hist.TrainSeconds, took, hist.EvalSeconds, hist.CheckpointSeconds)
		}
		return nil
	}
	// Checkpoints are written in the background (see ckptWriter); writer.saved is the newest
	// complete one, for the message of a second signal.
	writer := &ckptWriter{store: store}
	writer.saved.Store(int64(startIter))
	collect := func(r writeResult) error { // a finished write's seconds go into the history
		hist.CheckpointWriteSeconds += r.seconds
		return r.err
	}
	// save checkpoints the state after the current iteration. Training waits while the state is
	// copied to host memory, and first for the previous write if it is still in flight: at most
	// one write is in flight, so a checkpoint due during a write waits for it (before copying, so
	// that one copy of the state is held at a time).
	save := func() error {
		began := time.Now()
		defer func() { hist.CheckpointSeconds += time.Since(began).Seconds() }()
		if err := collect(writer.wait()); err != nil {
			return err
		}
		snap, err := takeSnapshot(ctx, loaded, hist)
		if err != nil {
			return fmt.Errorf("checkpoint of iteration %d: %w", len(hist.IterLoss), err)
		}
		writer.start(snap)
		return nil
	}
	if startIter == 0 {
		if err := evaluate(0); err != nil {
			return nil, err
		}
	}

	var stopErr, saveErr error // returned as they are, not wrapped in the loop's context
	// Ctrl-C, SIGTERM (job schedulers, docker stop) and SIGHUP (a closed terminal) stop at the
	// end of the current step, with a checkpoint, so no work is lost; a second one exits at once.
	var interrupted atomic.Bool
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig, ok := <-signals
		if !ok {
			return
		}
		interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\n%v: stopping after this step, with a checkpoint (signal again to exit at once).\n", sig)
		if sig, ok = <-signals; ok {
			fmt.Fprintf(os.Stderr, "%v again: exiting without saving; the run resumes from its checkpoint of iteration %d (run the same command).\n",
				sig, writer.saved.Load())
			os.Exit(1)
		}
	}()

	// Steps are timed from one step's end to the next, so hook work (evaluation, checkpoints)
	// is left out of the training time.
	stepStart := time.Now()
	loop.OnStep("record", 0, func(loop *train.Loop, metrics []*tensors.Tensor) error {
		hist.TrainSeconds += time.Since(stepStart).Seconds()
		if saveErr = writer.failed(); saveErr != nil { // a background write failed: stop now
			return saveErr
		}
		hist.IterLoss = append(hist.IterLoss, float64(tensors.ToScalar[float32](metrics[0])))
		iter := len(hist.IterLoss)
		if alpha, kept, ok := smiopt.Telemetry(ctx); ok {
			hist.Telemetry = append(hist.Telemetry, results.SMIPoint{Iter: iter, Alpha: alpha, KeptEnergy: kept})
		}
		evalIter := iter%cfg.EvalInterval == 0 || iter == cfg.MaxIters
		if evalIter {
			if err := evaluate(iter); err != nil {
				return err
			}
		}
		stop := interrupted.Load() || iter == o.stopAt
		if evalIter || stop || o.CheckpointEvery > 0 && iter%o.CheckpointEvery == 0 {
			if saveErr = save(); saveErr != nil {
				return saveErr
			}
		}
		if stop {
			stopErr = fmt.Errorf("%w at iteration %d of %d with a checkpoint in %s: run the same command to resume",
				errStopped, iter, cfg.MaxIters, store.stepDir(iter))
			return stopErr
		}
		if stepHook != nil {
			stepHook(iter)
		}
		stepStart = time.Now()
		return nil
	})
	ds := par.dataset(&batches{corpus: corpus, cfg: cfg, seed: o.Seed, next: startIter})
	_, err = loop.RunToGlobalStep(ds, cfg.MaxIters)
	// However training ended, it waits for the write in flight: the run's last checkpoint is
	// complete (or its failure reported) before the command returns.
	began := time.Now()
	writeErr := collect(writer.wait())
	hist.CheckpointSeconds += time.Since(began).Seconds()
	signal.Stop(signals) // from here on Ctrl-C ends the program: the checkpoint is complete
	close(signals)
	if writeErr != nil { // before stopErr, whose message promises a checkpoint
		return nil, writeErr
	}
	if err != nil {
		if stopErr != nil {
			return nil, stopErr
		}
		if saveErr != nil {
			return nil, saveErr
		}
		return nil, err
	}
	if len(hist.IterLoss) != cfg.MaxIters {
		return nil, fmt.Errorf("internal error: recorded %d iterations, expected %d", len(hist.IterLoss), cfg.MaxIters)
	}
	if startIter == cfg.MaxIters && !o.Quiet {
		fmt.Printf("%s is already complete; rewriting its metrics and plot.\n", dir)
	}

	m := newMetrics(b, o, ctx, cfg, hist, thresholds)
	m.Devices = par.numDevices()
	m.Data = dataInfo(o.Data, corpus)
	if o.BenchTokens > 0 {
		if !o.Quiet {
			fmt.Printf("Measuring inference speed (%d repetitions of %d tokens)...\n", o.BenchReps, o.BenchTokens)
		}
		inf, err := benchInference(b, ctx, cfg, corpus, o.Seed, o.BenchTokens, o.BenchReps)
		if err != nil {
			return nil, err
		}
		m.Inference = inf
	}
	m.TotalSeconds = time.Since(start).Seconds()
	if err := results.WriteJSON(filepath.Join(dir, "metrics.json"), m); err != nil {
		return nil, err
	}
	if err := results.PlotRun(filepath.Join(dir, "loss.png"), m); err != nil {
		return nil, fmt.Errorf("plotting: %w", err)
	}
	return m, nil
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
	if err != nil {
		return nil, "", fmt.Errorf("%v\nUse -restart to discard them and start over (it deletes %s)", err, store.dir)
	}
	if !found {
		return &history{}, "", nil
	}
	if len(skipped) > 0 {
		fmt.Printf("Using the checkpoint of iteration %d: newer ones do not read back (%s).\n", len(hist.IterLoss), strings.Join(skipped, "; "))
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

// restartRun deletes a run's checkpoints for -restart, saying what it deletes.
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

// evaluator estimates the loss of each split on EvalIters random batches, as nanoGPT's
// estimate_loss; the batches of evaluation at iteration i depend only on (seed, i).
//
// One execution evaluates a chunk of several batches: they are stacked along the batch axis into
// one [chunk*batch_size, block_size] input, and the program returns each batch's mean loss, a
// [chunk] vector, computed with the same operations as gpt.Loss on that batch alone. The
// vectors stay on the device until the last chunk of the evaluation has run, and are then read
// together; the next chunk is drawn on the host (same generator, same order as one batch at a
// time) while the current one runs. So an evaluation costs ceil(n/chunk) executions and one
// read, not n executions each followed by a read (see evalChunk for the chunk's size).
type evaluator struct {
	exec   *context.Exec
	par    *dataParallel // nil: one device
	cfg    gpt.Config
	corpus *data.Corpus
	seed   int64
	budget int // evalBudget
}

func newEvaluator(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, seed int64) *evaluator {
	exec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, x, y *Node) *Node {
		return chunkLosses(gpt.Logits(ctx, cfg, x), y, cfg.BatchSize)
	})
	return &evaluator{exec: exec, cfg: cfg, corpus: corpus, seed: seed, budget: evalBudget(b)}
}

// chunkLosses is gpt.Loss of each batch of a chunk: logits [K*B, T, V] and targets [K*B, T] hold
// K batches of B rows, and the result [K] is the mean cross-entropy of each. The operations per
// batch are gpt.Loss's (log-softmax, the target's log-probability, a sum over the batch's B*T
// positions times 1/(B*T), negated), and each batch's logits are those of the batch alone, bit
// for bit (seen on XLA CPU); only the order in which XLA adds up the B*T terms differs (one axis
// of [K, B*T] here, all of [B, T] there), so a batch's loss can differ from gpt.Loss's by a few
// float32 roundings (TestEvalMatchesPerBatch: at most 2 units in the last place).
func chunkLosses(logits, targets *Node, batchSize int) *Node {
	dims := logits.Shape().Dimensions
	rows, T, V := dims[0], dims[1], dims[2]
	logProbs := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logProbs, OneHot(targets, V, logProbs.DType())), -1) // [K*B, T]
	return Neg(ReduceMean(Reshape(picked, rows/batchSize, batchSize*T), 1))
}

// evalBudget bounds a chunk's activations (evalChunk's estimate), in bytes: on a CPU about a
// last-level cache (on XLA CPU with the cpu preset, chunks of 10 batches, 30 MiB, evaluated 15-20%
// faster than one batch per execution, and chunks of all 20 about 7% slower), on an accelerator
// a fraction of its memory, so that executions are few (on an H200 with the paper preset, 400
// batches: 1.55 s per evaluation in chunks of 10, 1.63 s in chunks of 4, 2.05-2.4 s one batch per
// execution; the chunked program compiles as fast as the one-batch program, about 6.5 s).
func evalBudget(b backends.Backend) int {
	if onCPU(b) {
		return 32 << 20
	}
	return 2 << 30
}

// evalChunk returns how many batches one execution evaluates when n are wanted: the largest
// divisor of n (so every execution has the same shape and one compiled program serves them all)
// whose estimated activations fit budget bytes, at least 1. The estimate per batch is twice (an
// operation's input and output) the largest of its activations in float32: the attention scores
// [B, H, T, T], the MLP's hidden layer [B, T, 4C] or the logits [B, T, V]. That is about 200 MB
// for the paper preset (on a GPU, chunks of 10 of its 200 batches) and 3 MB for the cpu preset
// (on a CPU, chunks of 10 of its 20).
func evalChunk(cfg gpt.Config, n, budget int) int {
	B, T := cfg.BatchSize, cfg.BlockSize
	perBatch := 2 * 4 * B * T * max(cfg.NHead*T, 4*cfg.NEmbd, cfg.VocabSize)
	limit := max(budget/max(perBatch, 1), 1)
	for k := min(n, limit); k > 1; k-- {
		if n%k == 0 {
			return k
		}
	}
	return 1
}

func (e *evaluator) losses(iter int) (trainLoss, valLoss float64, err error) {
	split := func(tokens []int32, stream uint64) evalSplit {
		return evalSplit{tokens: tokens, rng: data.RNG(e.seed, data.StreamEval+stream), n: e.cfg.EvalIters}
	}
	all, err := e.run(split(e.corpus.Train, 2*uint64(iter)), split(e.corpus.Val, 2*uint64(iter)+1))
	if err != nil {
		return 0, 0, err
	}
	return stat.Mean(all[0], nil), stat.Mean(all[1], nil), nil
}

// batchLosses returns the mean loss of each of n random batches of split.
func (e *evaluator) batchLosses(split []int32, rng *rand.Rand, n int) ([]float64, error) {
	all, err := e.run(evalSplit{tokens: split, rng: rng, n: n})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// evalSplit asks for the losses of the next n batches that rng draws from tokens.
type evalSplit struct {
	tokens []int32
	rng    *rand.Rand
	n      int
}

// evalInput is one chunk's stacked batches.
type evalInput struct{ x, y *tensors.Tensor }

// run returns the loss of each batch of each split, in the order drawn. A goroutine draws the
// chunks on the host one ahead of the executions; the losses are read once all have run.
func (e *evaluator) run(splits ...evalSplit) ([][]float64, error) {
	B, T := e.cfg.BatchSize, e.cfg.BlockSize
	common := 0 // the greatest common divisor of the splits' sizes: chunks never straddle two
	for _, s := range splits {
		if s.n < 1 {
			return nil, fmt.Errorf("internal error: an evaluation of %d batches", s.n)
		}
		for a, b := common, s.n; ; a, b = b, a%b {
			if b == 0 {
				common = a
				break
			}
		}
	}
	k := evalChunk(e.cfg, common, e.budget)
	inputs := make(chan evalInput, 1)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		defer close(inputs)
		for _, s := range splits {
			for range s.n / k {
				x, y := make([]int32, 0, k*B*T), make([]int32, 0, k*B*T)
				for range k {
					bx, by := data.Batch(s.tokens, s.rng, B, T)
					x, y = append(x, bx...), append(y, by...)
				}
				in := evalInput{tensors.FromFlatDataAndDimensions(x, k*B, T), tensors.FromFlatDataAndDimensions(y, k*B, T)}
				select {
				case inputs <- in:
				case <-quit:
					return
				}
			}
		}
	}()
	var outs []*tensors.Tensor // per chunk, [k] losses, left on the device until all have run
	defer func() {
		for _, t := range outs {
			_ = t.FinalizeAll()
		}
	}()
	for in := range inputs {
		out, err := e.par.exec(e.exec, in.x, in.y)
		_, _ = in.x.FinalizeAll(), in.y.FinalizeAll()
		if err != nil {
			return nil, err
		}
		outs = append(outs, out[0])
	}
	flat := make([]float64, 0, len(outs)*k)
	for _, t := range outs {
		values, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, err
		}
		for _, v := range values {
			flat = append(flat, float64(v))
		}
	}
	all := make([][]float64, len(splits))
	for i, s := range splits {
		all[i], flat = flat[:s.n:s.n], flat[s.n:]
	}
	return all, nil
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
