package optimizers

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/ui/commandline"
	"github.com/stretchr/testify/require"

	"github.com/smi-gomlx/smi/spectral"
)

func TestPaperDefaults(t *testing.T) {
	for _, tc := range []struct {
		base   string
		want   spectral.Config
		naming []string
	}{
		{"adamw", spectral.Config{Quantile: 0.25, Beta: 0.99, Schedule: spectral.ScheduleCosine, AlphaStart: 0.1, AlphaEnd: 0.5}, []string{"AdamW"}},
		{"adam", spectral.Config{Quantile: 0.25, Beta: 0.995, Schedule: spectral.ScheduleCosine, AlphaStart: 0.1, AlphaEnd: 0.5}, []string{"ADAM"}},
		{"sgd-momentum", spectral.Config{Quantile: 0.3, Beta: 0.9, Schedule: spectral.ScheduleLinear, AlphaStart: 0.1, AlphaEnd: 0.4}, []string{"sgd_momentum"}},
		{"lion", spectral.Config{Quantile: 0.4, Beta: 0.99, Schedule: spectral.ScheduleLinear, AlphaStart: 0.1, AlphaEnd: 0.3}, []string{"Lion"}},
	} {
		for _, name := range append(tc.naming, tc.base) {
			got, err := PaperDefaults(name)
			require.NoError(t, err, name)
			require.Equal(t, tc.want, got, name)
		}
	}
	require.Len(t, PaperBases, 4)
	_, err := PaperDefaults("rmsprop")
	require.ErrorContains(t, err, `unknown base optimizer "rmsprop", the paper gives settings for adamw, adam, sgd-momentum, lion`)
}

func TestSMIDefaults(t *testing.T) {
	c := SMI(plainSGD())
	want, _ := PaperDefaults("adamw")
	require.Equal(t, want, c.Config(), "defaults are the paper's AdamW guidance, TotalSteps unset")
	_, err := c.Done()
	require.ErrorContains(t, err, "total steps not set: call TotalSteps(n), or set \"smi_total_steps\"")

	opt, err := c.TotalSteps(10).Done()
	require.NoError(t, err)
	_, ok := opt.(train.OptimizeWithGradients)
	require.True(t, ok, "SMI implements OptimizeWithGradients, so gradient accumulation works")
	var asIs gomlxopt.Interface = SMI(plainSGD())
	_, ok = asIs.(train.OptimizeWithGradients)
	require.True(t, ok, "the builder itself is an optimizer")

	c = SMI(plainSGD()).Quantile(0.5).Beta(0.9).Schedule(spectral.ScheduleLinear, 0.2, 0.7).TotalSteps(100).HalfSpectrum(true)
	require.Equal(t, spectral.Config{Quantile: 0.5, Beta: 0.9, Schedule: spectral.ScheduleLinear, AlphaStart: 0.2,
		AlphaEnd: 0.7, TotalSteps: 100, HalfSpectrum: true}, c.Config())
}

// TestSMIFromContextSetFlags registers the parameters with DefaultParams and parses them the way GoMLX's
// "-set" flag does.
func TestSMIFromContextSetFlags(t *testing.T) {
	cfg, _ := PaperDefaults("sgd-momentum")
	cfg.TotalSteps = 500
	ctx := context.New()
	ctx.SetParams(DefaultParams(cfg))

	c := SMI(plainSGD()).FromContext(ctx)
	require.Equal(t, cfg, c.Config(), "defaults registered in the context come back unchanged")
	require.Empty(t, c.exclude)

	_, err := commandline.ParseContextSettings(ctx, "smi_quantile=0.5;smi_beta=0.95;smi_schedule=cosine;"+
		"smi_alpha_start=0.2;smi_alpha_end=0.7;smi_total_steps=1_000;smi_half_spectrum=true;"+
		"smi_exclude=bias$, /norm/ ")
	require.NoError(t, err)
	c = SMI(plainSGD()).Exclude("embedding").FromContext(ctx)
	require.Equal(t, spectral.CountingAuto, c.counting)
	require.Zero(t, c.batchLimit)
	_, err = commandline.ParseContextSettings(ctx, "smi_counting=compare;smi_batch_limit=4096")
	require.NoError(t, err)
	c = SMI(plainSGD()).Exclude("embedding").FromContext(ctx)
	require.Equal(t, spectral.CountingCompare, c.counting)
	require.Equal(t, 4096, c.batchLimit)
	require.Equal(t, spectral.Config{Quantile: 0.5, Beta: 0.95, Schedule: spectral.ScheduleCosine, AlphaStart: 0.2,
		AlphaEnd: 0.7, TotalSteps: 1000, HalfSpectrum: true}, c.Config())
	require.Equal(t, []string{"embedding", "bias$", "/norm/"}, c.exclude, "context patterns add to Exclude's")
	_, err = c.Done()
	require.NoError(t, err)

	// JSON-restored parameters (from a checkpoint) come back as float64 and []any.
	ctx = context.New()
	ctx.SetParams(map[string]any{ParamTotalSteps: 300.0, ParamExclude: []any{"a", "b"}})
	c = SMI(plainSGD()).FromContext(ctx)
	require.Equal(t, 300, c.Config().TotalSteps)
	require.Equal(t, []string{"a", "b"}, c.exclude)
}

// TestSMIInvalid checks every invalid value's error message, returned by Done.
func TestSMIInvalid(t *testing.T) {
	valid := func() *SMIConfig { return SMI(plainSGD()).TotalSteps(10) }
	withParam := func(key string, value any) *SMIConfig {
		ctx := context.New()
		ctx.SetParam(key, value)
		return valid().FromContext(ctx)
	}
	for _, tc := range []struct {
		c    *SMIConfig
		want string
	}{
		{valid().Quantile(-0.1), "Config.Quantile must be in [0, 1), got -0.1"},
		{valid().Quantile(1), "Config.Quantile must be in [0, 1), got 1"},
		{valid().Quantile(math.NaN()), "Config.Quantile must be in [0, 1), got NaN"},
		{valid().Beta(1), "Config.Beta must be in [0, 1), got 1"},
		{valid().Beta(-0.5), "Config.Beta must be in [0, 1), got -0.5"},
		{valid().Schedule("step", 0.1, 0.5), `Config.Schedule must be one of "constant", "linear" or "cosine", got "step"`},
		{valid().Schedule(spectral.ScheduleLinear, 1.5, 0.5), "Config.AlphaStart must be in [0, 1], got 1.5"},
		{valid().Schedule(spectral.ScheduleLinear, 0.1, -0.1), "Config.AlphaEnd must be in [0, 1], got -0.1"},
		{valid().TotalSteps(-5), "Config.TotalSteps must be > 0, got -5"},
		{valid().TotalSteps(0), "total steps not set"},
		{valid().Exclude("ok", "(unclosed"), `exclude pattern "(unclosed" is not a valid regular expression`},
		{withParam(ParamQuantile, "a lot"), `context hyperparameter "smi_quantile" must be a number, got string a lot`},
		{withParam(ParamTotalSteps, 10.5), `context hyperparameter "smi_total_steps" must be an integer, got float64 10.5`},
		{withParam(ParamHalfSpectrum, "yes"), `context hyperparameter "smi_half_spectrum" must be a bool`},
		{withParam(ParamSchedule, 3), `context hyperparameter "smi_schedule" must be a string`},
		{withParam(ParamExclude, 3), `context hyperparameter "smi_exclude" must be a comma-separated string or a list of strings`},
		{withParam(ParamSchedule, "exp"), `Config.Schedule must be one of "constant", "linear" or "cosine", got "exp"`},
		{valid().Counting("sort"), `counting must be "scatter", "compare" or empty (auto), got "sort"`},
		{withParam(ParamCounting, "sort"), `counting must be "scatter", "compare" or empty (auto), got "sort"`},
		{valid().BatchLimit(-1), "batch limit must be >= 0 (0: chosen by backend), got -1"},
		{withParam(ParamBatchLimit, 1.5), `context hyperparameter "smi_batch_limit" must be an integer`},
		{SMI(nil).TotalSteps(10), "the base optimizer is nil"},
		{SMI(lossOnly{plainSGD()}).TotalSteps(10), "does not implement train.OptimizeWithGradients"},
		{SMI(must(SMI(plainSGD()).TotalSteps(10).Done())).TotalSteps(10), "SMI cannot be its own base"},
		{SMI(SMI(plainSGD()).TotalSteps(10)).TotalSteps(10), "SMI cannot be its own base"},
		{SMI(ClipByGlobalNorm(must(SMI(plainSGD()).TotalSteps(10).Done()), 1)).TotalSteps(10), "SMI cannot be its own base"},
	} {
		_, err := tc.c.Done()
		require.ErrorContains(t, err, tc.want)
		require.ErrorContains(t, tc.c.Validate(), tc.want)
	}
}

// TestSMIInvalidPanicsAtGraphBuilding: used as is, an invalid SMI fails when the graph is built, with the
// validation error.
func TestSMIInvalidPanicsAtGraphBuilding(t *testing.T) {
	p := newLinearProblem(t, nil, SMI(plainSGD()).Quantile(2).TotalSteps(10), []float32{1, 2})
	_, err := p.exec.Exec([]float32{1, 1})
	require.ErrorContains(t, err, "Config.Quantile must be in [0, 1), got 2")
}

// TestSMIFromContextIntegerKinds: an integer hyperparameter may be of any Go integer kind that fits an int.
func TestSMIFromContextIntegerKinds(t *testing.T) {
	type steps uint16
	for _, v := range []any{uint(10), uint8(10), uint32(10), uint64(10), int8(10), int16(10), steps(10), 10.0} {
		ctx := context.New()
		ctx.SetParam(ParamTotalSteps, v)
		c := SMI(plainSGD()).FromContext(ctx)
		require.NoError(t, c.Validate(), "%T", v)
		require.Equal(t, 10, c.Config().TotalSteps, "%T", v)
	}
	ctx := context.New()
	ctx.SetParam(ParamTotalSteps, uint64(math.MaxUint64))
	require.ErrorContains(t, SMI(plainSGD()).FromContext(ctx).Validate(),
		`context hyperparameter "smi_total_steps" must be an integer, got uint64 18446744073709551615`)
}
