package optimizers

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

const (
	// LionDefaultLearningRate is used when neither LionConfig.LearningRate nor the context's "learning_rate"
	// hyperparameter is set (the Lion paper's advice: 3-10x smaller than AdamW's).
	LionDefaultLearningRate = 1e-4

	// LionScope is the scope (under the optimizer's context) of Lion's momentum.
	LionScope = "LionOptimizer"

	// ParamLionBeta1 is the context hyperparameter for Lion's beta1 (float64, default 0.9).
	ParamLionBeta1 = "lion_beta1"

	// ParamLionBeta2 is the context hyperparameter for Lion's beta2 (float64, default 0.99).
	ParamLionBeta2 = "lion_beta2"

	// ParamLionWeightDecay is the context hyperparameter for Lion's decoupled weight decay (float64, default 0).
	ParamLionWeightDecay = "lion_weight_decay"
)

// LionConfig configures the Lion optimizer. Create it with Lion, set options, and call Done.
type LionConfig struct {
	elementwiseConfig
	beta1, beta2 float64
}

// Lion returns the configuration of Lion (EvoLved Sign Momentum; Chen et al., 2023, "Symbolic Discovery of
// Optimization Algorithms", Algorithm 2). Per variable w with gradient g, learning rate lr, weight decay wd
// and momentum m (zero before the first step):
//
//	c = beta1*m + (1-beta1)*g
//	w = w - lr*(sign(c) + wd*w)   (decoupled weight decay, as in the paper)
//	m = beta2*m + (1-beta2)*g
//
// Defaults: beta1 0.9, beta2 0.99, no weight decay. The learning rate is GoMLX's learning-rate variable
// (gomlxopt.LearningRateVar), so GoMLX learning-rate schedules apply to it. Each step increments GoMLX's
// global step once. The momentum is a non-trainable context variable under LionScope, saved by checkpoints.
// Only float variables are updated: integer, boolean and complex trainable variables are left unchanged, as
// SMI leaves them unfiltered.
func Lion() *LionConfig {
	c := &LionConfig{elementwiseConfig: newElementwiseConfig("optimizers.Lion", LionScope, LionDefaultLearningRate),
		beta1: 0.9, beta2: 0.99}
	c.own(option{param: ParamLionBeta1, f: &c.beta1, name: "beta1"}, option{param: ParamLionBeta2, f: &c.beta2, name: "beta2"},
		option{param: ParamLionWeightDecay, f: &c.weightDecay})
	return c
}

// LearningRate sets the learning rate, finite and > 0 (Done reports any other value); by default it is the
// context's "learning_rate" hyperparameter, or LionDefaultLearningRate.
func (c *LionConfig) LearningRate(lr float64) *LionConfig {
	c.setLearningRate(lr)
	return c
}

// Betas sets beta1 (interpolation for the update direction) and beta2 (momentum decay), each in [0, 1].
// Defaults 0.9 and 0.99.
func (c *LionConfig) Betas(beta1, beta2 float64) *LionConfig {
	c.beta1, c.beta2 = beta1, beta2
	return c
}

// WeightDecay sets the decoupled weight decay wd >= 0, scaled by the learning rate. Default 0.
func (c *LionConfig) WeightDecay(wd float64) *LionConfig {
	c.weightDecay = wd
	return c
}

// FromContext reads ParamLionBeta1, ParamLionBeta2 and ParamLionWeightDecay from ctx, keeping the current
// values for those not set. The learning rate is read at graph building time; the context's "learning_rate"
// (gomlxopt.ParamLearningRate), when present, must be a number, finite and > 0. A value of the wrong type or
// out of range is reported by Done and Validate.
func (c *LionConfig) FromContext(ctx *context.Context) *LionConfig {
	c.fromContext(ctx)
	return c
}

// Validate reports the first invalid option, or nil.
func (c *LionConfig) Validate() error {
	return c.validate()
}

// Done validates the configuration and returns the optimizer, or an error naming the first invalid
// option. The returned optimizer also implements train.OptimizeWithGradients.
func (c *LionConfig) Done() (gomlxopt.Interface, error) {
	b1, b2, wd := c.beta1, c.beta2, c.weightDecay
	return c.done(func(u variableUpdate) {
		m := u.state.ValueGraph(u.g)
		dir := Sign(Add(MulScalar(m, b1), MulScalar(u.grad, 1-b1)))
		if wd > 0 {
			dir = Add(dir, MulScalar(u.w, wd))
		}
		u.state.SetValueGraph(Add(MulScalar(m, b2), MulScalar(u.grad, 1-b2)))
		u.apply(dir)
	})
}
