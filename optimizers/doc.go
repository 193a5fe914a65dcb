// Package optimizers brings Spectral Momentum Integration (SMI; Huang, Chen and Zheng, "Spectral momentum
// integration: hybrid optimization of frequency and time domain gradients", Front. Artif. Intell. 8:1628943,
// 2025) to GoMLX programs as one line, optimizers.SMI(base), around any GoMLX optimizer; and it adds what the
// paper's recipes need and GoMLX lacks: SGD with momentum, Lion and global-norm gradient clipping.
//
// In the examples GoMLX's own package is imported as gomlxopt:
//
//	import gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
//
// # What SMI does
//
// SMI filters each trainable variable's gradient in the frequency domain and blends the filtered gradient
// with the gradient, which the base optimizer (AdamW, Adam, SGD with momentum, Lion, ...) then applies by its
// own rule, unchanged. docs/ALGORITHM.md states the algorithm and where this project departs from the paper.
// The filter is package spectral's (github.com/smi-gomlx/smi/spectral), whose documentation states how it is
// computed, including the exact quantile. This package applies it: it keeps each filtered variable's spectral
// history (State and checkpoints), supplies the blend schedule's step (GoMLX's global step), chooses the
// variables filtered (Exclude, FilterIf; scalars, empty and complex variables never are) and how they are
// grouped (Batching and counting), and hands the blended gradients to the base. Everything is GoMLX graph
// operations: XLA compiles the filter into the training step.
//
// # Quick start
//
//	adamw := gomlxopt.Adam().LearningRate(1e-3).Betas(0.9, 0.99).WeightDecay(0.1).Done()
//	smi, err := optimizers.SMI(adamw).TotalSteps(5000).Done()
//	if err != nil { ... }
//	opt := optimizers.ClipByGlobalNorm(smi, 1) // SMI filters the clipped gradients
//	trainer := train.NewTrainer(backend, ctx, model, losses.SparseCategoricalCrossEntropyLogits, opt, nil, nil)
//
// SMI(base) is itself an optimizer (gomlxopt.Interface and train.OptimizeWithGradients), so it can also be
// passed as is; then an invalid configuration panics, with the same message Done would return, when the
// training graph is built. Done validates first and returns an error instead. Every builder of this package
// (SMI, SGDMomentum, Lion) works that way: Done returns (optimizer, error), and Validate reports the same
// error without building.
//
// Errors name the builder or function they come from ("optimizers.SMI: ...", "optimizers.Lion: ..."): Done and
// Validate return them; building a graph with an invalid configuration panics with them, as GoMLX does.
//
// # Using SMI in your own GoMLX program
//
// The backend: SMI needs XLA (FFTs and complex numbers; GoMLX's pure-Go backend has neither). GoMLX's
// backends.New and MustNew read GOMLX_BACKEND; left unset, GoMLX's XLA backend downloads its CPU plugin from
// GitHub, which fails offline. `make setup` installs the XLA CPU plugin from PyPI into
// ~/.local/lib/smi-gomlx (SMI_PJRT_DIR when set; it prints the path); a program of your own uses it with
//
//	GOMLX_BACKEND=xla:$HOME/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so,shared_buffers
//
// (an absolute path skips GoMLX's download; shared_buffers gives the zero-copy host buffers GoMLX gives its
// own CPU plugin). docs/SETUP.md says how this project's programs choose, and how to use a CUDA plugin.
//
// Two process-wide settings, both outside this package because they concern any GoMLX v0.26 training
// program, not SMI, decide whether the step runs at the speed docs/BENCHMARKS.md reports:
//
//	import (
//		"github.com/smi-gomlx/smi/dotgrad"
//		"github.com/smi-gomlx/smi/hostmem"
//	)
//
//	hostmem.Retain() // XLA CPU: reuse freed memory (returns an error where glibc is absent; harmless)
//	dotgrad.Enable() // before the first training step is compiled
//
// dotgrad.Enable replaces GoMLX v0.26's gradient of matrix products (Dot, DotGeneral, Einsum, layers.Dense),
// which expands every product to its full outer-product shape, with two matrix products: on XLA CPU a GPT
// training step runs many times faster (docs/BENCHMARKS.md, 1b, measures it), with the same values to rounding (GoMLX fixed this after v0.26). A
// model without matrix products gains nothing, and nothing else changes. hostmem.Retain keeps the memory that
// XLA CPU's executions free (a training step's temporaries, tens of MiB) mapped for the next step instead of
// letting glibc return it to the system, which costs a page fault per 4 KiB page per step; it changes where
// buffers live, not results. `make bench` times the step with and without dotgrad (docs/BENCHMARKS.md, 1b);
// it runs with hostmem.Retain on, and does not time it off.
//
// On XLA CPU, SMI's cost is mostly its two FFTs per variable, which XLA runs in the plugin's precompiled FFT
// library; with the PyPI plugin the project installs, that library and the packing of transposed matrix
// products (every dense layer's gradients) are built for 128-bit vectors whatever the CPU offers.
// docs/SETUP.md ("What the plugin's build costs on CPUs") says what that means, and docs/BENCHMARKS.md
// measures it on the machine it was made on (sections 1b, 4 and 7).
//
// # Options
//
// Setters on *SMIConfig, chainable; each with its context hyperparameter (see FromContext):
//
//	setter                   hyperparameter      default              valid range
//	Quantile(q)              smi_quantile        PaperDefaults        0 <= q < 1
//	Beta(b)                  smi_beta            PaperDefaults        0 <= b < 1
//	Schedule(s, a0, a1)      smi_schedule        PaperDefaults        constant, linear or cosine
//	                         smi_alpha_start     PaperDefaults        0 <= a0 <= 1
//	                         smi_alpha_end       PaperDefaults        0 <= a1 <= 1
//	TotalSteps(n)            smi_total_steps     train_steps, if set  n > 0 (0 in the context: not set)
//	HalfSpectrum(on)         smi_half_spectrum   false
//	Exclude(patterns...)     smi_exclude         none                 Go regexps, comma-separated in smi_exclude
//	Counting(c)              smi_counting        by backend           "", "scatter" or "compare"
//	BatchLimit(n)            smi_batch_limit     by backend (0)       n >= 0
//	FilterIf(pred)                               nil: all rank >= 1
//
// The spectral defaults are PaperDefaults(DefaultBase), the paper's row for AdamW, whatever the base.
// Quantile q is the fraction of frequencies dropped: a lower q keeps more, and q = 0 keeps everything (then
// G~ = g). Beta is the decay of the history. The schedule moves alpha from a0 at step 0 to a1 at step
// TotalSteps, and holds a1 afterwards (docs/ALGORITHM.md, "Blend schedules"). The step t is GoMLX's global step before the
// step's update (0 at the first step), so it continues across checkpoint restarts and counts applied updates
// under gradient accumulation. HalfSpectrum counts each of the real FFT's bins once in the quantile instead of with
// its multiplicity in the full spectrum: an extension, not the paper's method, with the same memory and about
// the same cost; package spectral documents how its kept set differs. Exclude's patterns are matched against each variable's scope and name, e.g.
// "/model/dense_0/biases": Exclude(`biases$`, `/layer_norm/`) leaves biases and layer norms unfiltered (the
// paper filters every variable). FilterIf, when set, must also return true for a variable to be filtered.
// SetConfig sets all spectral settings at once
// from a spectral.Config, and Config returns them.
//
// # GoMLX's optimizer registry: -set optimizer=smi
//
// GoMLX's programs select their optimizer with gomlxopt.FromContext(ctx), from the "optimizer"
// hyperparameter, through the map gomlxopt.KnownOptimizers; its example trainers take
// -set optimizer=adamw. Importing this package adds "smi" (OptimizerName) to that map, in the package's
// init: importing is all a program does, with no call to remember (import _ is enough where nothing else
// of the package is used), as with database/sql drivers. GoMLX's own entries are in the map before any
// program reads it, and an init runs at that time too, so nothing can race with the registration. Then
//
//	-set "optimizer=smi;smi_base=adamw;smi_quantile=0.25"
//
// trains with SMI around the base that smi_base (ParamBase) names: any name of gomlxopt.KnownOptimizers
// (adamw, adam, adamax, sgd, rmsprop) or this package's sgd-momentum and lion, configured from the context
// like GoMLX's optimizers (learning_rate, and this package's lion_* and sgd_*); default DefaultBase. SMI's
// total steps are smi_total_steps, or, when it is not set, the train_steps hyperparameter GoMLX's example
// trainers use for the training's length; with neither, building fails with an error that says to set
// smi_total_steps. GoMLX's "-set" flag (commandline.ParseContextSettings) only sets hyperparameters that
// exist in the context, parsed as the type of the value there: SetDefaultParams declares "optimizer",
// smi_base and every smi_* setting with its default, keeping any the program set:
//
//	ctx.SetParams(map[string]any{"train_steps": 5000, "learning_rate": 1e-3}) // the program's own
//	optimizers.SetDefaultParams(ctx)
//	settings := commandline.CreateContextSettingsFlag(ctx, "")
//	flag.Parse()
//	_, err := commandline.ParseContextSettings(ctx, *settings)
//	opt := gomlxopt.FromContext(ctx)      // panics on an unknown base or an invalid setting, as GoMLX does
//	opt, err := optimizers.FromContext(ctx) // the same, with an error instead
//
// FromContext is gomlxopt.FromContext with errors, and it also knows sgd-momentum and lion by themselves
// (optimizer=lion); FromContextWith takes a program's own optimizers by name in addition, in place of
// GoMLX's of the same name (the Shakespeare example's "adamw" is nanoGPT's recipe), without changing the
// global map. It refuses a "learning_rate" that is not a finite number > 0 for GoMLX's optimizers too, which
// read it unchecked (a program's own read it as they please). See ExampleFromContext. The optimizer built
// is not clipped: wrap it in ClipByGlobalNorm.
//
// # Context hyperparameters of SMIConfig
//
// SMIConfig.FromContext reads the smi_* hyperparameters from a context, the way GoMLX's Adam().FromContext
// does; values present override the current ones (so call it before setters that should win), and
// smi_exclude's patterns (comma-separated; a pattern with a comma must go through Exclude) add to Exclude's.
// smi_total_steps 0 counts as not set, and train_steps is then taken if the context has it. DefaultParams
// gives the smi_* hyperparameters of any spectral.Config, to declare before parsing "-set" flags:
//
//	ctx.SetParams(optimizers.DefaultParams(cfg)) // cfg, e.g., from PaperDefaults("lion") with TotalSteps set
//	_, err := commandline.ParseContextSettings(ctx, *settings) // -set "smi_quantile=0.5;smi_schedule=linear"
//	opt, err := optimizers.SMI(lion).FromContext(ctx).Done()
//
// A hyperparameter of the wrong type (e.g. a string for smi_quantile) is reported by Done.
//
// # The paper's defaults per base optimizer
//
// The paper (section 3.6) gives settings for AdamW, Adam, SGD with momentum and Lion: PaperDefaults(base)
// returns them, and its documentation has the table. They are the paper's guidance, not settings this
// project has tuned. The paper also advises: q 0.25 by default, 0.5 for very noisy gradients or small
// batches, 0.15 for well-conditioned problems, never below 0.1; beta 0.99 by default, 0.95 for fast-changing
// gradients, 0.999 for very stable ones, matching or exceeding the base optimizer's beta2; alpha cosine
// 0.1 -> 0.5 (recommended), linear 0.1 -> 0.3 (conservative), cosine 0.1 -> 0.7 (aggressive). SMI's own
// defaults are the AdamW row (DefaultBase).
//
// # Base optimizers
//
// Any optimizer implementing train.OptimizeWithGradients can be the base: GoMLX's StochasticGradientDescent,
// Adam (AdamW with WeightDecay), Adamax and RMSProp, and this package's SGDMomentum (PyTorch's rule, optionally
// Nesterov) and Lion (Chen et al., 2023, with decoupled weight decay). SGDMomentum and Lion take their learning
// rate from GoMLX's learning-rate variable like Adam does (the "learning_rate" hyperparameter at first), so
// GoMLX's schedules such as cosineschedule apply to them; a learning rate given to them, by LearningRate or
// as "learning_rate", must be finite and > 0. They update float variables only: integer, boolean and complex
// trainable variables are left unchanged. SMI does not increment the global step itself: the base does, once
// per step; and SMI cannot be its own base.
//
// # Gradient clipping
//
// ClipByGlobalNorm(base, maxNorm) wraps any optimizer, with or without SMI, and scales all gradients together
// by min(1, maxNorm/(norm+1e-6)), as PyTorch's clip_grad_norm_ (used by nanoGPT and the paper at 1.0). It is
// the one way to clip: ClipByGlobalNorm(SMI(base)..., maxNorm) clips before SMI filters, as the paper does.
//
// # Safety
//
// A variable whose gradient holds a NaN or an Inf at a step keeps its history unchanged and gets its gradient
// passed to the base optimizer unfiltered for that step (what happens next is the base's and GoMLX's clip_nan
// hyperparameter's business); the other variables are filtered as usual, and the next finite step filters it
// again from its intact history. The check is made on the spectrum (its energy, which the filter sums anyway),
// so a gradient so large that its FFT overflows (beyond about 1e33 in float32) is treated the same way.
// Global-norm clipping leaves non-finite gradients, and those of integer and boolean variables, out of the
// norm and unscaled.
// A nil gradient (possible through UpdateGraphWithGradients) reaches the base optimizer as zeros and leaves
// the history alone; zero gradients are filtered normally (they stay zero). bfloat16 and float16 variables are
// filtered in float32, with a float32 history, and cast back; float64 variables are filtered in float64.
//
// # Telemetry
//
// Telemetry(ctx) returns, after each executed step, the step's alpha and the fraction of the gradients' energy
// that the masks kept over all filtered variables, sum_i ||G~_i||^2 / sum_i ||g_i||^2 (energy-weighted, see
// Telemetry); a trainer can log and plot both. They are the float32 scalar variables "alpha" and
// "kept_energy" in scope "/smi".
//
// # Batching and counting, per backend
//
// Variables with the same n x d view and compute dtype, each of at most the batch limit's elements, are
// filtered together, stacked, by one spectral.FilterBatch call, which gives each what spectral.Filter gives it
// alone (bit for bit, or where XLA rounds a batch differently, within rounding) but pays the filter's fixed
// per-operation costs once per group. Larger variables are filtered one by one. The limit (DefaultBatchLimit)
// is 65536 elements on CPUs, where XLA runs the filters of large variables concurrently, and none on GPUs and
// TPUs, where every operation is a kernel launch that same-shape variables (a transformer's layers) share.
// The exact quantile counts by ScatterSum histograms on CPUs and by compare-and-reduce on accelerators, where
// a scatter-add becomes contended atomics (spectral.Counting). What counts as an accelerator is read from the
// backend's PJRT plugin name (spectral.Accelerator). Neither choice changes any result; BatchLimit and Counting
// override them, and `smibench -sections strategies` times each on the backend at hand (docs/BENCHMARKS-GPU.md,
// which also counts the FFTs, scatters and reductions each choice gives XLA).
//
// # Training on several devices
//
// SMI, ClipByGlobalNorm, SGDMomentum and Lion train data-parallel under GoMLX's distributed training
// (package github.com/gomlx/gomlx/pkg/core/distributed) with the AutoSharding strategy, where XLA's
// partitioner (Shardy) splits the one-device training step over the devices: make a 1-D
// distributed.DeviceMesh, a ShardingSpec that shards the inputs' and labels' first (batch) axis over
// it, and give train.Loop a train.DistributedDataset yielding batches with that spec (for instance
// GoMLX's datasets.NewDistributedAccumulator around an ordinary dataset); the Loop then runs
// train.Trainer.DistributedTrainStep. See ExampleSMI_dataParallel.
//
// Nothing in SMI needs configuring for it. The program is still the one-device program, whose loss is
// the mean over the global batch: however the partitioner splits the work, SMI computes on the
// gradient of the whole batch (all-reduced over the devices), and every device filters the same
// gradient (the quantile mask is a statement about the whole gradient, so filtering a device's
// partial gradient would be wrong). Variables default to
// replicated: the weights, the base optimizer's state, SMI's histories and telemetry are the same on
// every device, bit for bit (this package's tests check each device's copy). The results match
// one-device training on the same global batches within rounding, since the partitioned step sums
// the gradient in another order: this package's tests (24 steps on 2 and 4 XLA CPU devices) hold the
// losses and variables to 1e-5 relative. Rounding can also flip a mask bit where two bins' histories
// tie in exact arithmetic (the two bins of a conjugate pair in the first and middle columns of the
// spectrum are computed separately), which gives a real, if small, difference: in one of the tests'
// problems it does at the first step, and the tests then allow 1e-2 in the losses.
//
// A checkpoint saved during distributed training holds one copy of each variable (GoMLX merges the
// replicas when saving), so it resumes on any number of devices, 1 included, and a one-device
// checkpoint resumes on several.
//
// Two limits are GoMLX's: Trainer.DistributedTrainStep refuses gradient accumulation ("distributed
// training with gradient accumulation not implemented yet"), and the SPMD strategy, where the graph
// is written per device, does not all-reduce gradients by itself, so it is not supported here.
//
// # State and checkpoints
//
// SMI's state is one history per filtered variable, as a non-trainable context variable created on first use:
// under "/smi/history" followed by the variable's own scope and name (for "/model/dense/weights",
// "/smi/history/model/dense/weights"), of shape n x (d/2+1) for an n x d matrix view in both modes (the real FFT's bins,
// which determine the full spectrum's history: about half the variable's size), float32 (float64 for
// float64 variables). GoMLX's checkpoints (package checkpoints) save and restore it with the model, the base
// optimizer's state and the global step, so a resumed training continues exactly, bit for bit on XLA CPU (as
// this package's tests check). A checkpoint whose histories are in the full-grid layout (n x d, the whole
// spectrum) is converted when loaded (its first d/2+1 columns hold all of it), and resumes exactly. Clear(ctx)
// deletes SMI's state and the base optimizer's, e.g. before saving a model for inference.
package optimizers
