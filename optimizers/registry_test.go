package optimizers

import (
	"fmt"
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/ui/commandline"
	"github.com/stretchr/testify/require"

	"github.com/smi-gomlx/smi/spectral"
)

// registryContext is a context as a GoMLX program makes it: its own hyperparameters, then
// SetDefaultParams, then the "-set" flag's settings parsed by GoMLX's commandline package.
func registryContext(t *testing.T, own map[string]any, settings string) *context.Context {
	t.Helper()
	ctx := context.New()
	ctx.SetParams(own)
	SetDefaultParams(ctx)
	_, err := commandline.ParseContextSettings(ctx, settings)
	require.NoError(t, err, settings)
	return ctx
}

// TestRegistryThroughSetFlag: with this package imported, "-set optimizer=smi;..." selects SMI in GoMLX's
// own optimizers.FromContext, and every smi_* setting goes through GoMLX's command-line parsing.
func TestRegistryThroughSetFlag(t *testing.T) {
	require.Contains(t, gomlxopt.KnownOptimizers, OptimizerName, "registered by init")

	ctx := registryContext(t, map[string]any{ParamTrainSteps: 700},
		"optimizer=smi;smi_base=adamw;smi_quantile=0.25")
	opt, ok := gomlxopt.FromContext(ctx).(*smiOptimizer)
	require.True(t, ok, "GoMLX's FromContext returns SMI")
	want := smiDefaults()
	want.TotalSteps = 700
	require.Equal(t, want, opt.cfg, "SMI's defaults, total steps from train_steps")
	require.Equal(t, "*optimizers.adam", fmt.Sprintf("%T", opt.base), "the base is GoMLX's AdamW")

	// Every setting, through the same parsing; smi_total_steps wins over train_steps.
	ctx = registryContext(t, map[string]any{ParamTrainSteps: 700}, "optimizer=smi;smi_base=lion;"+
		"smi_quantile=0.4;smi_beta=0.95;smi_schedule=linear;smi_alpha_start=0.2;smi_alpha_end=0.3;"+
		"smi_total_steps=1_000;smi_half_spectrum=true;smi_exclude=bias$,/norm/;smi_counting=compare;"+
		"smi_batch_limit=4096")
	got, err := FromContext(ctx)
	require.NoError(t, err)
	opt = got.(*smiOptimizer)
	require.Equal(t, spectral.Config{Quantile: 0.4, Beta: 0.95, Schedule: spectral.ScheduleLinear, AlphaStart: 0.2,
		AlphaEnd: 0.3, TotalSteps: 1000, HalfSpectrum: true}, opt.cfg)
	require.Equal(t, spectral.CountingCompare, opt.counting)
	require.Equal(t, 4096, opt.batchLimit)
	require.Len(t, opt.exclude, 2)
	require.Equal(t, LionScope, opt.base.(*elementwiseOptimizer).config.scope)

	// Without SetDefaultParams GoMLX's parsing refuses the settings: they must exist first.
	_, err = commandline.ParseContextSettings(context.New(), "smi_quantile=0.3")
	require.ErrorContains(t, err, `param "smi_quantile" is not known`)
}

// TestRegistryBases: smi_base names GoMLX's optimizers and this package's, and "optimizer" this
// package's alone too.
func TestRegistryBases(t *testing.T) {
	for _, base := range []string{"adamw", "adam", "adamax", "sgd", "rmsprop", "sgd-momentum", "sgd_momentum", "lion"} {
		ctx := registryContext(t, nil, "optimizer=smi;smi_total_steps=10;smi_base="+base)
		opt, err := FromContext(ctx)
		require.NoError(t, err, base)
		require.NotNil(t, opt.(*smiOptimizer).base, base)
	}
	ctx := registryContext(t, nil, "optimizer=sgd-momentum")
	opt, err := FromContext(ctx)
	require.NoError(t, err)
	require.Equal(t, SGDMomentumScope, opt.(*elementwiseOptimizer).config.scope)
	ctx = registryContext(t, nil, "")
	opt, err = FromContext(ctx)
	require.NoError(t, err)
	require.Equal(t, "*optimizers.adam", fmt.Sprintf("%T", opt), "the default optimizer is GoMLX's adamw")
}

// TestRegistryErrors: what cannot be built is an error from FromContext and a panic with the same
// message from GoMLX's FromContext.
func TestRegistryErrors(t *testing.T) {
	for _, tc := range []struct {
		own      map[string]any
		settings string
		want     string
	}{
		{nil, "optimizer=smi;smi_total_steps=10;smi_base=adamx",
			`unknown optimizer smi_base="adamx": known are adam, adamax, adamw, lion, rmsprop, sgd, sgd-momentum`},
		{nil, "optimizer=smi;smi_total_steps=10;smi_base=smi", `smi_base="smi": SMI cannot be its own base`},
		{nil, "optimizer=smi", `total steps not set: call TotalSteps(n), or set "smi_total_steps"`},
		{nil, "optimizer=smi;smi_total_steps=10;smi_quantile=1.5", "Config.Quantile must be in [0, 1), got 1.5"},
		{map[string]any{ParamSGDMomentum: 1.0}, "optimizer=smi;smi_total_steps=10;smi_base=sgd-momentum",
			"momentum must be in [0, 1), got 1"},
		{map[string]any{ParamTrainSteps: "long"}, "optimizer=smi", `"train_steps" must be an integer`},
		{map[string]any{gomlxopt.ParamLearningRate: math.Inf(1)}, "optimizer=smi;smi_total_steps=10;smi_base=lion",
			`optimizers.Lion: context hyperparameter "learning_rate" must be a number, finite and > 0, got float64 +Inf`},
		{map[string]any{gomlxopt.ParamLearningRate: "fast"}, "optimizer=smi;smi_total_steps=10;smi_base=sgd-momentum",
			`optimizers.SGDMomentum: context hyperparameter "learning_rate" must be a number, finite and > 0, got string fast`},
		{map[string]any{gomlxopt.ParamLearningRate: math.NaN()}, "optimizer=smi;smi_total_steps=10;smi_base=adamw",
			`optimizers: optimizer smi_base="adamw": context hyperparameter "learning_rate" must be a number, finite and > 0, got float64 NaN`},
	} {
		ctx := registryContext(t, tc.own, tc.settings)
		_, err := FromContext(ctx)
		require.ErrorContains(t, err, tc.want, tc.settings)
		require.PanicsWithError(t, err.Error(), func() { gomlxopt.FromContext(ctx) }, tc.settings)
	}
	// GoMLX's registry does not know this package's optimizers alone: FromContext only.
	ctx := registryContext(t, map[string]any{gomlxopt.ParamLearningRate: -1.0}, "optimizer=lion")
	_, err := FromContext(ctx)
	require.ErrorContains(t, err, `optimizers.Lion: context hyperparameter "learning_rate" must be a number, finite and > 0, got float64 -1`)
	ctx = registryContext(t, map[string]any{gomlxopt.ParamLearningRate: math.NaN()}, "optimizer=sgd-momentum")
	_, err = FromContext(ctx)
	require.ErrorContains(t, err, `optimizers.SGDMomentum: context hyperparameter "learning_rate" must be a number, finite and > 0, got float64 NaN`)

	ctx = registryContext(t, map[string]any{gomlxopt.ParamLearningRate: 0.0}, "optimizer=sgd")
	_, err = FromContext(ctx)
	require.ErrorContains(t, err, `optimizers: optimizer optimizer="sgd": context hyperparameter "learning_rate" must be a number, finite and > 0, got float64 0`)
	// The program's own optimizers read it as they please.
	ctx = registryContext(t, map[string]any{gomlxopt.ParamLearningRate: 0.0}, "optimizer=adamw")
	_, err = FromContextWith(ctx, map[string]func(*context.Context) gomlxopt.Interface{"adamw": func(*context.Context) gomlxopt.Interface { return gomlxopt.StochasticGradientDescent() }})
	require.NoError(t, err)

	ctx = registryContext(t, nil, "optimizer=adamx")
	_, err = FromContext(ctx)
	require.ErrorContains(t, err, `unknown optimizer optimizer="adamx": known are adam, adamax, adamw, lion, rmsprop, sgd, sgd-momentum, smi`)
	ctx = context.New()
	ctx.SetParam(ParamBase, 3)
	ctx.SetParam(gomlxopt.ParamOptimizer, OptimizerName)
	_, err = FromContext(ctx)
	require.ErrorContains(t, err, `context hyperparameter "smi_base" must be a string, got int 3`)
}

// TestSetDefaultParams: it declares what is missing and keeps what the program set.
func TestSetDefaultParams(t *testing.T) {
	ctx := context.New()
	ctx.SetParams(map[string]any{gomlxopt.ParamOptimizer: "adam", ParamQuantile: 0.5})
	SetDefaultParams(ctx)
	require.Equal(t, "adam", context.GetParamOr(ctx, gomlxopt.ParamOptimizer, ""))
	require.Equal(t, 0.5, context.GetParamOr(ctx, ParamQuantile, 0.0))
	require.Equal(t, DefaultBase, context.GetParamOr(ctx, ParamBase, ""))
	for key, value := range DefaultParams(smiDefaults()) {
		if key != ParamQuantile {
			got, found := ctx.GetParam(key)
			require.True(t, found, key)
			require.Equal(t, value, got, key)
		}
	}
}

// TestFromContextWith: a program's own optimizer takes the place of GoMLX's of the same name, as base and
// alone, and SMI's total steps may come from the builder's TotalSteps before FromContext.
func TestFromContextWith(t *testing.T) {
	own := map[string]func(*context.Context) gomlxopt.Interface{
		"adamw": func(*context.Context) gomlxopt.Interface { return plainSGD() },
	}
	ctx := registryContext(t, nil, "optimizer=smi;smi_total_steps=10")
	opt, err := FromContextWith(ctx, own)
	require.NoError(t, err)
	_, isSGD := opt.(*smiOptimizer).base.(*gomlxopt.SGDConfig)
	require.True(t, isSGD, "base %T", opt.(*smiOptimizer).base)
	ctx = registryContext(t, nil, "")
	opt, err = FromContextWith(ctx, own)
	require.NoError(t, err)
	_, isSGD = opt.(*gomlxopt.SGDConfig)
	require.True(t, isSGD, "optimizer %T", opt)

	// A nil constructor is an error, as base and alone.
	nilOwn := map[string]func(*context.Context) gomlxopt.Interface{"mine": nil}
	for _, settings := range []string{"optimizer=mine", "optimizer=smi;smi_total_steps=10;smi_base=mine"} {
		ctx := context.New()
		SetDefaultParams(ctx)
		ctx.SetParam(gomlxopt.ParamOptimizer, "x") // Declared as a string; the settings set it.
		_, err := commandline.ParseContextSettings(ctx, settings)
		require.NoError(t, err)
		_, err = FromContextWith(ctx, nilOwn)
		require.ErrorContains(t, err, `optimizers: the constructor of optimizer `, settings)
		require.ErrorContains(t, err, `="mine" given to FromContextWith is nil`, settings)
	}

	// smi_total_steps 0, as SetDefaultParams declares it, leaves TotalSteps(n) alone.
	c := SMI(plainSGD()).TotalSteps(30).FromContext(registryContext(t, nil, ""))
	require.Equal(t, 30, c.Config().TotalSteps)
}
