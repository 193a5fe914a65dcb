package optimizers

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// This file puts SMI in GoMLX's optimizer registry (gomlxopt.KnownOptimizers, read by
// gomlxopt.FromContext and gomlxopt.ByName), and builds optimizers from context hyperparameters.

const (
	// OptimizerName is SMI's name in GoMLX's optimizer registry, gomlxopt.KnownOptimizers: with this
	// package imported, the "optimizer" hyperparameter (gomlxopt.ParamOptimizer) may be "smi".
	OptimizerName = "smi"

	// ParamBase is the context hyperparameter naming the optimizer SMI wraps when it is built from a
	// context (FromContext, or GoMLX's registry): a name of gomlxopt.KnownOptimizers ("adamw", "adam",
	// "sgd", ...) or this package's "sgd-momentum" and "lion". String, default DefaultBase.
	ParamBase = "smi_base"

	// ParamTrainSteps is the hyperparameter GoMLX's example trainers give the length of the training
	// ("train_steps"): FromContext takes it as SMI's total steps when smi_total_steps is not set.
	ParamTrainSteps = "train_steps"
)

// init registers SMI in gomlxopt.KnownOptimizers under OptimizerName. Registering when the package
// is imported, as database/sql drivers and image formats do, makes "-set optimizer=smi" work in any
// GoMLX program that selects its optimizer with gomlxopt.FromContext, with no call to add: importing
// the package (even as import _) is enough. GoMLX's own entries are in the map from its package's
// initialisation on, before any program reads it, and init runs at the same time, before main, so
// no reader of the map can race with it. An explicit Register function would make each program
// remember a call for what importing already says. The entry panics, as gomlxopt.ByName does for an
// unknown name, with FromContext's error.
func init() {
	gomlxopt.KnownOptimizers[OptimizerName] = func(ctx *context.Context) gomlxopt.Interface {
		opt, err := smiFromContext(ctx, nil)
		if err != nil {
			panic(err)
		}
		return opt
	}
}

// SetDefaultParams declares in ctx, with their defaults, the hyperparameters FromContext reads and
// ctx does not hold yet: "optimizer" (gomlxopt.ParamOptimizer, GoMLX's default "adamw"), smi_base
// (DefaultBase) and the smi_* settings of DefaultParams(PaperDefaults(DefaultBase)), smi_total_steps 0
// standing for "not set" (then train_steps, see FromContext). GoMLX's "-set" flag
// (commandline.ParseContextSettings) only sets hyperparameters that exist, and parses each value as
// the type of the one there, so call it before parsing:
//
//	ctx := context.New()
//	ctx.SetParams(map[string]any{"train_steps": 5000, "learning_rate": 1e-3}) // the program's own
//	optimizers.SetDefaultParams(ctx)
//	settings := commandline.CreateContextSettingsFlag(ctx, "")
//	flag.Parse()
//	_, err := commandline.ParseContextSettings(ctx, *settings) // -set "optimizer=smi;smi_quantile=0.5"
//	opt, err := optimizers.FromContext(ctx)                   // or gomlxopt.FromContext(ctx)
//
// Values ctx already holds (a program's own default optimizer, say) are kept. The base optimizers'
// own hyperparameters (learning_rate, GoMLX's adam_*, this package's lion_* and sgd_*) are the
// program's to declare, as for any GoMLX optimizer.
func SetDefaultParams(ctx *context.Context) {
	params := DefaultParams(smiDefaults())
	params[gomlxopt.ParamOptimizer] = "adamw"
	params[ParamBase] = DefaultBase
	for key, value := range params {
		if _, found := ctx.GetParam(key); !found {
			ctx.SetParam(key, value)
		}
	}
}

// FromContext returns the optimizer that ctx's "optimizer" hyperparameter (gomlxopt.ParamOptimizer)
// names, default "adamw" as in GoMLX: "smi" for SMI around the base that smi_base names (default
// DefaultBase), with the smi_* settings ctx holds (SMIConfig.FromContext); "sgd-momentum" (or
// "sgd_momentum") or "lion" for this package's, configured by their FromContext and GoMLX's
// learning_rate; any other name of gomlxopt.KnownOptimizers for GoMLX's. It is what
// gomlxopt.FromContext returns once this package is imported, with an error instead of a panic, and
// this package's base optimizers too. SMI's total steps are smi_total_steps if set (> 0), else the
// train_steps hyperparameter (ParamTrainSteps) if ctx has it, else an error says to set
// smi_total_steps. The result is not clipped: wrap it in ClipByGlobalNorm to clip.
func FromContext(ctx *context.Context) (gomlxopt.Interface, error) {
	return FromContextWith(ctx, nil)
}

// FromContextWith is FromContext with the program's own optimizers, which take precedence over
// this package's and GoMLX's of the same name, as base (smi_base) or alone ("optimizer"): for
// example a trainer whose "adamw" is its own recipe of AdamW. Nothing global changes.
func FromContextWith(ctx *context.Context, own map[string]func(*context.Context) gomlxopt.Interface) (gomlxopt.Interface, error) {
	r := paramReader{ctx: ctx, who: "optimizers.FromContext"}
	name := r.string(gomlxopt.ParamOptimizer, "adamw")
	if r.err != nil {
		return nil, r.err
	}
	if name == OptimizerName {
		if _, overridden := own[name]; !overridden {
			return smiFromContext(ctx, own)
		}
	}
	return newNamed(ctx, name, gomlxopt.ParamOptimizer, own)
}

// smiFromContext is SMI around the base smi_base names, with ctx's settings, validated.
func smiFromContext(ctx *context.Context, own map[string]func(*context.Context) gomlxopt.Interface) (gomlxopt.Interface, error) {
	r := paramReader{ctx: ctx, who: "optimizers.SMI"}
	baseName := r.string(ParamBase, DefaultBase)
	if r.err != nil {
		return nil, r.err
	}
	if baseName == OptimizerName {
		return nil, fmt.Errorf("optimizers.SMI: %s=%q: SMI cannot be its own base; name the optimizer it wraps (%s)",
			ParamBase, baseName, strings.Join(knownNames(own, false), ", "))
	}
	base, err := newNamed(ctx, baseName, ParamBase, own)
	if err != nil {
		return nil, err
	}
	return SMI(base).FromContext(ctx).Done()
}

// localBases are this package's optimizers by name, as bases or alone.
var localBases = map[string]func(*context.Context) (gomlxopt.Interface, error){
	"sgd-momentum": func(ctx *context.Context) (gomlxopt.Interface, error) { return SGDMomentum().FromContext(ctx).Done() },
	"lion":         func(ctx *context.Context) (gomlxopt.Interface, error) { return Lion().FromContext(ctx).Done() },
}

// newNamed builds the optimizer called name (the value of hyperparameter param): the program's own,
// this package's, or GoMLX's, in that order. GoMLX's constructors panic on invalid settings: the
// panic becomes the error.
func newNamed(ctx *context.Context, name, param string, own map[string]func(*context.Context) gomlxopt.Interface) (opt gomlxopt.Interface, err error) {
	construct, found := own[name]
	if found && construct == nil {
		return nil, fmt.Errorf("optimizers: the constructor of optimizer %s=%q given to FromContextWith is nil", param, name)
	}
	if !found {
		if local, ok := localBases[strings.ReplaceAll(strings.ToLower(name), "_", "-")]; ok {
			return local(ctx)
		}
		construct, found = gomlxopt.KnownOptimizers[name]
		if found {
			// GoMLX's optimizers read learning_rate unchecked (NaN or a negative rate trains to NaN
			// or away from the minimum); the program's own may read it as they please.
			r := paramReader{ctx: ctx, who: fmt.Sprintf("optimizers: optimizer %s=%q", param, name)}
			if r.learningRate(); r.err != nil {
				return nil, r.err
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("optimizers: unknown optimizer %s=%q: known are %s", param, name,
			strings.Join(knownNames(own, param != ParamBase), ", "))
	}
	defer func() {
		if p := recover(); p != nil {
			opt, err = nil, fmt.Errorf("optimizers: building optimizer %s=%q: %v", param, name, p)
		}
	}()
	opt = construct(ctx)
	if opt == nil {
		return nil, fmt.Errorf("optimizers: the constructor of optimizer %s=%q returned nil", param, name)
	}
	return opt, nil
}

// knownNames lists, sorted, the optimizers newNamed knows, and SMI when withSMI (it cannot be a base).
func knownNames(own map[string]func(*context.Context) gomlxopt.Interface, withSMI bool) []string {
	var names []string
	for name := range own {
		names = append(names, name)
	}
	for name := range localBases {
		names = append(names, name)
	}
	for name := range gomlxopt.KnownOptimizers {
		names = append(names, name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.DeleteFunc(names, func(n string) bool { return n == OptimizerName && !withSMI })
}
