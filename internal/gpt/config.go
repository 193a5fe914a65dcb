// Package gpt is nanoGPT's GPT in GoMLX: token and learned position embeddings, pre-LayerNorm
// transformer blocks (causal multi-head self-attention, 4x MLP with GELU), a final LayerNorm and
// an output head tied to the token embedding, without biases. Config also carries the training
// recipe (nanoGPT's train.py settings), so one preset names one experiment; AdamW is nanoGPT's
// optimizer and Optimizer the clip -> SMI -> base recipe that the Shakespeare trainer and the
// benchmarks share. Errors and graph-building panics name the function or type they come from
// ("gpt.Config: ...").
package gpt

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Config is one experiment: the model shape and the training recipe.
type Config struct {
	// Model.
	VocabSize int     // set from the data (65 for tiny Shakespeare)
	BlockSize int     // context length
	NLayer    int     // transformer blocks
	NHead     int     // attention heads
	NEmbd     int     // embedding width
	Dropout   float64 // on embeddings, attention weights and residual branches, training only

	// Training (nanoGPT's names and schedule).
	BatchSize    int
	MaxIters     int
	LearningRate float64 // peak, after linear warm-up
	MinLR        float64 // cosine floor, reached at LRDecayIters
	WarmupIters  int
	LRDecayIters int
	WeightDecay  float64 // AdamW, on parameters with two or more axes
	Beta1, Beta2 float64
	GradClip     float64 // global-norm clip; 0 disables
	EvalInterval int     // iterations between evaluations
	EvalIters    int     // batches per split in each evaluation
}

var presets = map[string]Config{
	// The paper's "baby GPT" (nanoGPT config/train_shakespeare_char.py).
	"paper": nanoGPTOptimizer(Config{
		VocabSize: 65, BlockSize: 256, NLayer: 6, NHead: 6, NEmbd: 384, Dropout: 0.2,
		BatchSize: 64, MaxIters: 5000, LearningRate: 1e-3, MinLR: 1e-4, WarmupIters: 100,
		LRDecayIters: 5000, EvalInterval: 250, EvalIters: 200,
	}),
	// nanoGPT's README recipe for a laptop CPU.
	"cpu": nanoGPTOptimizer(Config{
		VocabSize: 65, BlockSize: 64, NLayer: 4, NHead: 4, NEmbd: 128, Dropout: 0,
		BatchSize: 12, MaxIters: 2000, LearningRate: 1e-3, MinLR: 1e-4, WarmupIters: 100,
		LRDecayIters: 2000, EvalInterval: 250, EvalIters: 20,
	}),
	// For tests: seconds on a CPU, still learns the character statistics.
	"tiny": nanoGPTOptimizer(Config{
		VocabSize: 65, BlockSize: 32, NLayer: 2, NHead: 2, NEmbd: 32, Dropout: 0,
		BatchSize: 8, MaxIters: 100, LearningRate: 3e-3, MinLR: 3e-4, WarmupIters: 10,
		LRDecayIters: 100, EvalInterval: 50, EvalIters: 4,
	}),
}

// nanoGPTOptimizer sets nanoGPT's AdamW and clipping settings, the same in every preset: weight
// decay 0.1, betas 0.9 and 0.99, global-norm clip 1.0.
func nanoGPTOptimizer(c Config) Config {
	c.WeightDecay, c.Beta1, c.Beta2, c.GradClip = 0.1, 0.9, 0.99, 1.0
	return c
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for name := range presets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Preset returns a named configuration: "paper", "cpu" or "tiny".
func Preset(name string) (Config, error) {
	cfg, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("gpt.Preset: unknown preset %q: choose one of %s", name, strings.Join(PresetNames(), ", "))
	}
	return cfg, nil
}

// Validate reports the first inconsistent setting.
func (c Config) Validate() error {
	positive := []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"block_size", c.BlockSize}, {"n_layer", c.NLayer}, {"n_head", c.NHead},
		{"n_embd", c.NEmbd}, {"batch_size", c.BatchSize}, {"max_iters", c.MaxIters},
		{"eval_interval", c.EvalInterval}, {"eval_iters", c.EvalIters}}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("gpt.Config: %s must be positive, got %d", p.name, p.v)
		}
	}
	switch {
	case c.NEmbd%c.NHead != 0:
		return fmt.Errorf("gpt.Config: n_embd (%d) must be a multiple of n_head (%d)", c.NEmbd, c.NHead)
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("gpt.Config: dropout must be in [0, 1), got %g", c.Dropout)
	case c.LearningRate <= 0 || c.MinLR < 0 || c.MinLR > c.LearningRate:
		return fmt.Errorf("gpt.Config: need 0 <= min_lr <= learning_rate and learning_rate > 0, got %g and %g", c.MinLR, c.LearningRate)
	case c.WarmupIters < 0 || c.LRDecayIters < c.WarmupIters:
		return fmt.Errorf("gpt.Config: need 0 <= warmup_iters <= lr_decay_iters, got %d and %d", c.WarmupIters, c.LRDecayIters)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("gpt.Config: betas must be in [0, 1), got %g and %g", c.Beta1, c.Beta2)
	case c.WeightDecay < 0 || c.GradClip < 0:
		return fmt.Errorf("gpt.Config: weight_decay and grad_clip must be >= 0, got %g and %g", c.WeightDecay, c.GradClip)
	}
	return nil
}

// param binds a context hyperparameter name to a Config field.
type param struct {
	name string
	i    func(*Config) *int
	f    func(*Config) *float64
}

var params = []param{
	{name: "vocab_size", i: func(c *Config) *int { return &c.VocabSize }},
	{name: "block_size", i: func(c *Config) *int { return &c.BlockSize }},
	{name: "n_layer", i: func(c *Config) *int { return &c.NLayer }},
	{name: "n_head", i: func(c *Config) *int { return &c.NHead }},
	{name: "n_embd", i: func(c *Config) *int { return &c.NEmbd }},
	{name: "dropout", f: func(c *Config) *float64 { return &c.Dropout }},
	{name: "batch_size", i: func(c *Config) *int { return &c.BatchSize }},
	{name: "max_iters", i: func(c *Config) *int { return &c.MaxIters }},
	{name: "learning_rate", f: func(c *Config) *float64 { return &c.LearningRate }},
	{name: "min_lr", f: func(c *Config) *float64 { return &c.MinLR }},
	{name: "warmup_iters", i: func(c *Config) *int { return &c.WarmupIters }},
	{name: "lr_decay_iters", i: func(c *Config) *int { return &c.LRDecayIters }},
	{name: "weight_decay", f: func(c *Config) *float64 { return &c.WeightDecay }},
	{name: "beta1", f: func(c *Config) *float64 { return &c.Beta1 }},
	{name: "beta2", f: func(c *Config) *float64 { return &c.Beta2 }},
	{name: "grad_clip", f: func(c *Config) *float64 { return &c.GradClip }},
	{name: "eval_interval", i: func(c *Config) *int { return &c.EvalInterval }},
	{name: "eval_iters", i: func(c *Config) *int { return &c.EvalIters }},
}

// ParamNames lists the context hyperparameters that SetParams writes and FromContext reads.
func ParamNames() []string {
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.name
	}
	return names
}

// SetParams writes the configuration as context hyperparameters, so GoMLX's "-set" flag can
// override any of them and checkpoints record them.
func (c Config) SetParams(ctx *context.Context) {
	for _, p := range params {
		if p.i != nil {
			ctx.SetParam(p.name, *p.i(&c))
		} else {
			ctx.SetParam(p.name, *p.f(&c))
		}
	}
}

// FromContext reads the hyperparameters that SetParams wrote, starting from base for any missing.
func FromContext(ctx *context.Context, base Config) (Config, error) {
	c := base
	for _, p := range params {
		if p.i != nil {
			*p.i(&c) = context.GetParamOr(ctx, p.name, *p.i(&c))
		} else {
			*p.f(&c) = context.GetParamOr(ctx, p.name, *p.f(&c))
		}
	}
	return c, c.Validate()
}

// NumParams counts parameters as nanoGPT does: the tied head counts once; withPosition=false
// leaves out the position embedding (nanoGPT's get_num_params default).
func (c Config) NumParams(withPosition bool) int { return int(c.ParamCount(withPosition)) }

// ParamCount is NumParams as a float64: exact below 2^53 parameters, and without the overflow of
// an int for settings far beyond any machine (which the trainer refuses by it).
func (c Config) ParamCount(withPosition bool) float64 {
	n := 0.0
	for _, w := range c.Weights(withPosition) {
		n += w.Values()
	}
	return n
}

// Weights is one kind of the model's variables: Count variables (one per layer, or one) of
// Rows x Cols float32 values each, as the model builds them ([in, out] for a linear layer's
// weights; a LayerNorm gain, a vector of C values, is 1 x C, its matrix view).
type Weights struct {
	Name       string // scope and name under Scope, with %d for the layer's number: "h%d/attn/c_attn/weights"
	Count      int
	Rows, Cols int
}

// Values is the number of values of every variable of the kind, as a float64 (no overflow).
func (w Weights) Values() float64 { return float64(w.Count) * float64(w.Rows) * float64(w.Cols) }

// Weights lists the kinds of variables the model holds (the head is tied to the token embedding);
// withPosition=false leaves out the position embedding, as NumParams.
func (c Config) Weights(withPosition bool) []Weights {
	C, L := c.NEmbd, c.NLayer
	w := []Weights{{"wte/weights", 1, c.VocabSize, C}}
	if withPosition {
		w = append(w, Weights{"wpe/weights", 1, c.BlockSize, C})
	}
	return append(w,
		Weights{"h%d/ln_1/gain", L, 1, C},
		Weights{"h%d/attn/c_attn/weights", L, C, 3 * C},
		Weights{"h%d/attn/c_proj/weights", L, C, C},
		Weights{"h%d/ln_2/gain", L, 1, C},
		Weights{"h%d/mlp/c_fc/weights", L, C, 4 * C},
		Weights{"h%d/mlp/c_proj/weights", L, 4 * C, C},
		Weights{"ln_f/gain", 1, 1, C})
}
