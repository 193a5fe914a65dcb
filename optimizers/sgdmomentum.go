package optimizers

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

const (
	// SGDMomentumDefaultLearningRate is used when neither SGDMomentumConfig.LearningRate nor the context's
	// "learning_rate" hyperparameter is set.
	SGDMomentumDefaultLearningRate = 0.01

	// SGDMomentumScope is the scope (under the optimizer's context) of the momentum buffers.
	SGDMomentumScope = "SGDMomentumOptimizer"

	// ParamSGDMomentum is the context hyperparameter for SGDMomentumConfig.Momentum (float64, default 0.9).
	ParamSGDMomentum = "sgd_momentum"

	// ParamSGDNesterov is the context hyperparameter for SGDMomentumConfig.Nesterov (bool, default false).
	ParamSGDNesterov = "sgd_nesterov"

	// ParamSGDWeightDecay is the context hyperparameter for SGDMomentumConfig.WeightDecay (float64, default 0).
	ParamSGDWeightDecay = "sgd_weight_decay"
)

// SGDMomentumConfig configures stochastic gradient descent with (optionally Nesterov) momentum. Create it with
// SGDMomentum, set options, and call Done.
type SGDMomentumConfig struct {
	elementwiseConfig
	momentum float64
	nesterov bool
}

// SGDMomentum returns the configuration of SGD with momentum, with PyTorch's torch.optim.SGD update rule
// (dampening 0), which is the rule the paper's "SGD with momentum" guideline refers to. Per variable w with
// gradient g, learning rate lr, momentum mu, weight decay wd and buffer b (zero before the first step):
//
//	d = g + wd*w          (weight decay as L2, coupled, as PyTorch's weight_decay)
//	b = mu*b + d
//	d = d + mu*b          (Nesterov) or d = b (classical)
//	w = w - lr*d
//
// Defaults: momentum 0.9, no Nesterov, no weight decay. The learning rate is GoMLX's learning-rate variable
// (gomlxopt.LearningRateVar), so GoMLX learning-rate schedules such as cosineschedule apply to it, as they do
// to Adam. Each step increments GoMLX's global step once. Buffers are non-trainable context variables under
// SGDMomentumScope, saved by checkpoints. Only float variables are updated: integer, boolean and complex
// trainable variables are left unchanged, as SMI leaves them unfiltered.
func SGDMomentum() *SGDMomentumConfig {
	c := &SGDMomentumConfig{elementwiseConfig: newElementwiseConfig("optimizers.SGDMomentum", SGDMomentumScope,
		SGDMomentumDefaultLearningRate), momentum: 0.9}
	c.own(option{param: ParamSGDMomentum, f: &c.momentum, name: "momentum", belowOne: true},
		option{param: ParamSGDNesterov, b: &c.nesterov}, option{param: ParamSGDWeightDecay, f: &c.weightDecay})
	return c
}

// LearningRate sets the learning rate, finite and > 0 (Done reports any other value); by default it is the
// context's "learning_rate" hyperparameter, or SGDMomentumDefaultLearningRate.
func (c *SGDMomentumConfig) LearningRate(lr float64) *SGDMomentumConfig {
	c.setLearningRate(lr)
	return c
}

// Momentum sets mu, in [0, 1). Default 0.9.
func (c *SGDMomentumConfig) Momentum(mu float64) *SGDMomentumConfig {
	c.momentum = mu
	return c
}

// Nesterov selects Nesterov momentum (Sutskever et al., 2013, in PyTorch's form). Default false.
func (c *SGDMomentumConfig) Nesterov(on bool) *SGDMomentumConfig {
	c.nesterov = on
	return c
}

// WeightDecay sets the L2 weight decay wd >= 0 added to the gradient (PyTorch's convention). Default 0.
func (c *SGDMomentumConfig) WeightDecay(wd float64) *SGDMomentumConfig {
	c.weightDecay = wd
	return c
}

// FromContext reads the hyperparameters ParamSGDMomentum, ParamSGDNesterov and ParamSGDWeightDecay from ctx,
// keeping the current values for those not set. The learning rate is read at graph building time; the
// context's "learning_rate" (gomlxopt.ParamLearningRate), when present, must be a number, finite and > 0. A
// value of the wrong type or out of range is reported by Done and Validate.
func (c *SGDMomentumConfig) FromContext(ctx *context.Context) *SGDMomentumConfig {
	c.fromContext(ctx)
	return c
}

// Validate reports the first invalid option, or nil.
func (c *SGDMomentumConfig) Validate() error {
	return c.validate()
}

// Done validates the configuration and returns the optimizer, or an error naming the first invalid
// option. The returned optimizer also implements train.OptimizeWithGradients.
func (c *SGDMomentumConfig) Done() (gomlxopt.Interface, error) {
	mu, nesterov, wd := c.momentum, c.nesterov, c.weightDecay
	return c.done(func(u variableUpdate) {
		d := u.grad
		if wd > 0 {
			d = Add(d, MulScalar(u.w, wd))
		}
		buf := Add(MulScalar(u.state.ValueGraph(u.g), mu), d)
		u.state.SetValueGraph(buf)
		if nesterov {
			d = Add(d, MulScalar(buf, mu))
		} else {
			d = buf
		}
		u.apply(d)
	})
}
