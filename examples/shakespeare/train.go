package main

import (
	"encoding/json"
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
	"strings"
	"sync/atomic"
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

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/gpt"
	"github.com/smi-gomlx/smi/internal/backend"
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
	Devices                int // data-parallel over this many devices (devices.go); 0: all

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
	fs.StringVar(&o.Data, "data", data.DefaultPath(), "tiny Shakespeare text file (downloaded there when missing)")
	fs.StringVar(&o.Out, "out", "", "run directory (default results/shakespeare/<preset>-run<run>-seed<seed>)")
	fs.StringVar(&o.Set, "set", "", `hyperparameters, e.g. "max_iters=500;learning_rate=3e-4;smi=true;smi_quantile=0.3"`+
		"\n(names: "+strings.Join(append(gpt.ParamNames(), paramSMI, "smi_*: see the optimizers package"), ", ")+")")
	fs.BoolVar(&o.Restart, "restart", false, "discard the run directory's checkpoint and start over")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress bar, a line per evaluation instead (for logs)")
	fs.IntVar(&o.BenchTokens, "bench_tokens", 100, "tokens generated per repetition of the inference-speed measurement (0 skips it)")
	fs.IntVar(&o.BenchReps, "bench_reps", 10, "repetitions of the inference-speed measurement")
	fs.StringVar(&o.Thresholds, "thresholds", "2.5,2.0,1.8,1.5,1.2,1.0", "training-loss thresholds for iterations-to-threshold")
	fs.IntVar(&o.Devices, "devices", 1, devicesUsage)
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
	r, err := lookupRun(o.Run)
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
		return nil, gpt.Config{}, fmt.Errorf("-set %q: %v", o.Set, err)
	}
	if !context.GetParamOr(ctx, paramSMI, false) {
		for _, name := range set {
			if strings.HasPrefix(name, "smi_") {
				return nil, gpt.Config{}, fmt.Errorf("-set %s has no effect with SMI off (run 0): choose -run 1 to 5, or add smi=true", name)
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
	if context.GetParamOr(ctx, smiopt.ParamTotalSteps, 0) == 0 {
		ctx.SetParam(smiopt.ParamTotalSteps, cfg.MaxIters)
	}
	return ctx, cfg, nil
}

// history is the run's record so far; it is saved with each checkpoint so a resumed run
// reports the whole run.
type history struct {
	IterLoss     []float64  `json:"iter_loss"` // training loss of each iteration's batch
	Evals        []evalLoss `json:"evals"`
	TrainSeconds float64    `json:"train_seconds"` // training steps only (incl. first-step compilation)
	Telemetry    []smiPoint `json:"smi_telemetry,omitempty"`
}

type evalLoss struct {
	Iter  int     `json:"iter"`
	Train float64 `json:"train"`
	Val   float64 `json:"val"`
	LR    float64 `json:"lr"`
}

type smiPoint struct {
	Iter       int     `json:"iter"`
	Alpha      float64 `json:"alpha"`
	KeptEnergy float64 `json:"kept_energy"`
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
	thresholds, err := parseThresholds(o.Thresholds)
	if err != nil {
		return err
	}
	if o.BenchTokens < 0 || o.BenchReps < 2 && o.BenchTokens > 0 {
		return fmt.Errorf("-bench_tokens must be >= 0 and -bench_reps >= 2 (for a confidence interval)")
	}
	corpus, err := loadCorpus(o.Data)
	if err != nil {
		return err
	}
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
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

// trainRun trains (or resumes) one run and writes its metrics, plot and checkpoint.
func trainRun(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, o *trainOptions, thresholds []float64) (*Metrics, error) {
	start := time.Now()
	par, err := o.dataParallel(b, cfg)
	if err != nil {
		return nil, err
	}
	dir := o.outDir()
	ckptDir := filepath.Join(dir, "checkpoint")
	if o.Restart {
		if err := os.RemoveAll(ckptDir); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the run directory: %w", err)
	}
	hist, resumed, err := restore(ctx, ckptDir)
	if err != nil {
		return nil, err
	}
	ckpt, err := checkpoints.Build(ctx).Dir(ckptDir).Keep(2).Done()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %v", ckptDir, err)
	}
	ctx = ctx.Checked(false)
	if !resumed {
		if err := ctx.SetRNGStateFromSeed(o.Seed); err != nil {
			return nil, err
		}
	}
	startIter := len(hist.IterLoss)
	if resumed && startIter < cfg.MaxIters && !o.Quiet {
		fmt.Printf("Resuming %s from iteration %d of %d.\n", dir, startIter, cfg.MaxIters)
	}

	opt, err := newOptimizer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	modelFn := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{gpt.Logits(ctx, cfg, inputs[0])}
	}
	lossFn := func(labels, predictions []*Node) *Node { return gpt.Loss(predictions[0], labels[0]) }
	trainer := train.NewTrainer(b, ctx, modelFn, lossFn, opt, nil, nil)
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
			})
	}
	evaluate := func(iter int) error {
		trainLoss, valLoss, err := ev.losses(iter)
		if err != nil {
			return err
		}
		hist.Evals = append(hist.Evals, evalLoss{Iter: iter, Train: trainLoss, Val: valLoss, LR: cfg.LearningRateAt(max(iter-1, 0))})
		lastVal = valLoss
		if o.Quiet {
			fmt.Printf("iteration %d/%d: train loss %.4f, val loss %.4f (%.0f s training)\n",
				iter, cfg.MaxIters, trainLoss, valLoss, hist.TrainSeconds)
		}
		return nil
	}
	save := func() error {
		if err := ckpt.Save(); err != nil {
			return fmt.Errorf("saving the checkpoint: %w", err)
		}
		return writeJSON(filepath.Join(ckptDir, historyFile), hist)
	}
	if startIter == 0 {
		if err := evaluate(0); err != nil {
			return nil, err
		}
	}

	var stopErr error
	// Ctrl-C stops at the end of the current step, with a checkpoint, so no work is lost.
	var interrupted atomic.Bool
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt)
	go func() {
		if _, ok := <-signals; ok {
			interrupted.Store(true)
		}
	}()

	// Steps are timed from one step's end to the next, so hook work (evaluation, checkpoints)
	// is left out of the training time.
	stepStart := time.Now()
	loop.OnStep("record", 0, func(loop *train.Loop, metrics []*tensors.Tensor) error {
		hist.TrainSeconds += time.Since(stepStart).Seconds()
		hist.IterLoss = append(hist.IterLoss, float64(tensors.ToScalar[float32](metrics[0])))
		iter := len(hist.IterLoss)
		if alpha, kept, ok := smiopt.Telemetry(ctx); ok {
			hist.Telemetry = append(hist.Telemetry, smiPoint{Iter: iter, Alpha: alpha, KeptEnergy: kept})
		}
		if iter%cfg.EvalInterval == 0 || iter == cfg.MaxIters {
			if err := evaluate(iter); err != nil {
				return err
			}
			if err := save(); err != nil {
				return err
			}
		}
		if interrupted.Load() || iter == o.stopAt {
			if iter%cfg.EvalInterval != 0 && iter != cfg.MaxIters {
				if err := save(); err != nil {
					return err
				}
			}
			stopErr = fmt.Errorf("%w at iteration %d of %d with a checkpoint in %s: run the same command to resume",
				errStopped, iter, cfg.MaxIters, ckptDir)
			return stopErr
		}
		stepStart = time.Now()
		return nil
	})
	ds := par.dataset(&batches{corpus: corpus, cfg: cfg, seed: o.Seed, next: startIter})
	_, err = loop.RunToGlobalStep(ds, cfg.MaxIters)
	signal.Stop(signals) // from here on Ctrl-C ends the program: the checkpoint is complete
	close(signals)
	if err != nil {
		if stopErr != nil {
			return nil, stopErr
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
	if err := writeJSON(filepath.Join(dir, "metrics.json"), m); err != nil {
		return nil, err
	}
	if err := plotRun(filepath.Join(dir, "loss.png"), m); err != nil {
		return nil, fmt.Errorf("plotting: %w", err)
	}
	return m, nil
}

// restore loads the checkpoint in ckptDir, if any, after checking that it holds the same run.
func restore(ctx *context.Context, ckptDir string) (hist *history, resumed bool, err error) {
	hist = &history{}
	saved := context.New()
	h, err := checkpoints.Build(saved).Dir(ckptDir).Immediate().Done()
	if err != nil {
		return nil, false, fmt.Errorf("reading the checkpoint in %s: %v (use -restart to start over)", ckptDir, err)
	}
	if has, _ := h.HasCheckpoints(); !has {
		return hist, false, nil
	}
	var diffs []string
	ctx.EnumerateParams(func(scope, key string, value any) {
		if old, ok := saved.GetParam(key); !ok || fmt.Sprint(old) != fmt.Sprint(value) {
			diffs = append(diffs, fmt.Sprintf("%s=%v (checkpoint: %v)", key, value, old))
		}
	})
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return nil, false, fmt.Errorf("%s holds a run with different settings: %s.\n"+
			"Use -restart to discard it, or -out for another directory", filepath.Dir(ckptDir), strings.Join(diffs, ", "))
	}
	raw, err := os.ReadFile(filepath.Join(ckptDir, historyFile))
	if err != nil {
		return nil, false, fmt.Errorf("the checkpoint in %s has no %s (%v); use -restart to start over", ckptDir, historyFile, err)
	}
	if err := json.Unmarshal(raw, hist); err != nil {
		return nil, false, fmt.Errorf("%s: %v; use -restart to start over", filepath.Join(ckptDir, historyFile), err)
	}
	step := gomlxopt.GetGlobalStep(saved)
	if int64(len(hist.IterLoss)) != step {
		return nil, false, fmt.Errorf("%s records %d iterations but the checkpoint is at %d; use -restart to start over",
			historyFile, len(hist.IterLoss), step)
	}
	return hist, true, nil
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
type evaluator struct {
	exec   *context.Exec
	par    *dataParallel // nil: one device
	cfg    gpt.Config
	corpus *data.Corpus
	seed   int64
}

func newEvaluator(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, seed int64) *evaluator {
	exec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, x, y *Node) *Node {
		return gpt.Loss(gpt.Logits(ctx, cfg, x), y)
	})
	return &evaluator{exec: exec, cfg: cfg, corpus: corpus, seed: seed}
}

func (e *evaluator) losses(iter int) (trainLoss, valLoss float64, err error) {
	trainLosses, err := e.batchLosses(e.corpus.Train, data.RNG(e.seed, data.StreamEval+2*uint64(iter)), e.cfg.EvalIters)
	if err != nil {
		return 0, 0, err
	}
	valLosses, err := e.batchLosses(e.corpus.Val, data.RNG(e.seed, data.StreamEval+2*uint64(iter)+1), e.cfg.EvalIters)
	if err != nil {
		return 0, 0, err
	}
	return stat.Mean(trainLosses, nil), stat.Mean(valLosses, nil), nil
}

// batchLosses returns the mean loss of each of n random batches of split.
func (e *evaluator) batchLosses(split []int32, rng *rand.Rand, n int) ([]float64, error) {
	losses := make([]float64, n)
	for i := range losses {
		x, y := data.Batch(split, rng, e.cfg.BatchSize, e.cfg.BlockSize)
		out, err := e.par.exec(e.exec, tensors.FromFlatDataAndDimensions(x, e.cfg.BatchSize, e.cfg.BlockSize),
			tensors.FromFlatDataAndDimensions(y, e.cfg.BatchSize, e.cfg.BlockSize))
		if err != nil {
			return nil, err
		}
		losses[i] = float64(tensors.ToScalar[float32](out[0]))
	}
	return losses, nil
}

func parseThresholds(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil || v <= 0 {
			return nil, fmt.Errorf("-thresholds: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	// Write then rename, so an interruption never leaves a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printSummary(m *Metrics, dir string) {
	fmt.Printf("\n%s, run %d (%s), seed %d, %d iterations on %s\n", m.Preset, m.Run, m.RunName, m.Seed, m.Config.MaxIters, m.Backend)
	fmt.Printf("  final loss: train %.4f, val %.4f (best val %.4f at iteration %d)\n",
		m.FinalTrainLoss, m.FinalValLoss, m.BestValLoss, m.BestValIter)
	fmt.Printf("  training: %.1f s, %.0f tokens/s; loss variance over the last %d iterations: %.3g\n",
		m.TrainSeconds, m.TrainTokensPerSec, m.VarianceWindow, m.FinalLossVariance)
	if m.Inference != nil {
		fmt.Printf("  inference: %.1f tokens/s (95%% CI %.1f to %.1f)\n", m.Inference.TokensPerSec, m.Inference.CI95[0], m.Inference.CI95[1])
	}
	fmt.Printf("Results:    %s\n", filepath.Join(dir, "metrics.json"))
	fmt.Printf("Plot:       %s\n", filepath.Join(dir, "loss.png"))
	fmt.Printf("Checkpoint: %s\n", filepath.Join(dir, "checkpoint"))
}
