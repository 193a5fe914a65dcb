package optimizers

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// This file holds what the optimizers of this package (SMI, SGDMomentum, Lion and the
// ClipByGlobalNorm wrapper) share to build their update graphs.

// updateFromLoss is UpdateGraph for every optimizer here that works from gradients: it checks the
// loss is a scalar, differentiates it, and hands the gradients to opt.
func updateFromLoss(ctx *context.Context, name string, loss *Node, opt train.OptimizeWithGradients) {
	if !loss.Shape().IsScalar() {
		panicf("%s requires a scalar loss, got shape %s", name, loss.Shape())
	}
	opt.UpdateGraphWithGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss), loss.DType())
}

// trainableVariables lists the variables that ctx.BuildTrainableVariablesGradientsGraph differentiates, in the
// same order, so that gradients[i] belongs to the i-th variable returned.
func trainableVariables(ctx *context.Context, g *Graph, numGrads int, who string) []*context.Variable {
	var vars []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	if len(vars) != numGrads {
		panicf("%s: got %d gradients but the graph uses %d trainable variables -- were variables created "+
			"or marked trainable after the gradients were computed?", who, numGrads, len(vars))
	}
	return vars
}

// learningRate returns GoMLX's learning-rate variable's value in g: the value set by schedules, created on
// first use from value when set, else from the context's "learning_rate", else def. A "learning_rate" that
// is not a number, finite and > 0 panics with an error prefixed by who.
func learningRate(ctx *context.Context, g *Graph, dtype dtypes.DType, value float64, set bool, def float64, who string) *Node {
	if !set {
		r := paramReader{ctx: ctx, who: who}
		lr, found := r.learningRate()
		if r.err != nil {
			panic(r.err)
		}
		value = def
		if found {
			value = lr
		}
	}
	return gomlxopt.LearningRateVar(ctx, dtype, value).ValueGraph(g)
}

// applyStep sets v to w - step (w is v's value in the step's dtype), honouring GoMLX's clip_step_by_value and
// clip_nan hyperparameters as GoMLX's Adam does.
func applyStep(ctx *context.Context, v *context.Variable, value, w, step *Node) {
	step = gomlxopt.ClipStepByValue(ctx, step)
	updated := Sub(w, step)
	updated = gomlxopt.ClipNaNsInUpdates(ctx, w, updated)
	v.SetValueGraph(ConvertDType(updated, value.DType()))
}

// panicf reports an error while building a graph, the way GoMLX's graph-building functions do.
func panicf(format string, args ...any) {
	panic(fmt.Errorf(format, args...))
}

// variableUpdate is what elementwiseUpdate hands its rule for one variable v: the graph, v's
// state variable (zeros before the first step), its value w and gradient grad in
// the step's dtype (grad after GoMLX's NaN tracing and clip_nan), and apply, which sets v to
// w - lr*direction.
type variableUpdate struct {
	g       *Graph
	state   *context.Variable
	w, grad *Node
	apply   func(direction *Node)
}

// elementwiseConfig is what the builders of SGDMomentum and Lion share: the learning rate, the
// weight decay, their own options as a table (read from the context and checked here), the
// context-reading error, and how their optimizers are named and built. Each builder embeds it,
// declares its options with own, and its Done hands done its rule for one variable.
type elementwiseConfig struct {
	who   string // Prefix of errors: the builder's name, as "optimizers.Lion".
	scope string // Scope of the state variables (LionScope, SGDMomentumScope).
	// learningRate is the builder's LearningRate when learningRateSet; otherwise the rate is the
	// context's "learning_rate", else defaultLR, read when the graph is built.
	learningRate    float64
	learningRateSet bool
	defaultLR       float64
	weightDecay     float64
	options         []option
	err             error // First error met while reading the context in FromContext.
}

// option is one of a builder's options: the context hyperparameter it is read from, and the
// builder's field (f or b). A float option with a name must lie in [0, 1], or in [0, 1) when
// belowOne: the name is the option's in errors.
type option struct {
	param    string
	f        *float64
	b        *bool
	name     string
	belowOne bool
}

func newElementwiseConfig(who, scope string, defaultLR float64) elementwiseConfig {
	return elementwiseConfig{who: who, scope: scope, defaultLR: defaultLR}
}

// setLearningRate is the builders' LearningRate.
func (c *elementwiseConfig) setLearningRate(lr float64) {
	c.learningRate, c.learningRateSet = lr, true
}

// own declares the builder's options, in the order they are read and checked.
func (c *elementwiseConfig) own(options ...option) {
	c.options = options
}

// fromContext reads every option from ctx, keeping the current value of those not set, and keeps
// the first error for Validate. It also checks the context's "learning_rate" when present (see
// paramReader.learningRate), which is read again from the graph's context when the graph is built.
func (c *elementwiseConfig) fromContext(ctx *context.Context) {
	r := paramReader{ctx: ctx, who: c.who}
	r.learningRate()
	for _, o := range c.options {
		if o.f != nil {
			*o.f = r.float(o.param, *o.f)
		} else {
			*o.b = r.bool(o.param, *o.b)
		}
	}
	if c.err == nil {
		c.err = r.err
	}
}

// validate reports the context-reading error, then the first named option out of its range, then
// a weight decay that is not finite and >= 0 or a learning rate, when set, that is not finite and > 0.
func (c *elementwiseConfig) validate() error {
	if c.err != nil {
		return c.err
	}
	for _, o := range c.options {
		if o.f == nil || o.name == "" {
			continue
		}
		if v := *o.f; o.belowOne && !(v >= 0 && v < 1) {
			return fmt.Errorf("%s: %s must be in [0, 1), got %g", c.who, o.name, v)
		} else if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s: %s must be in [0, 1], got %g", c.who, o.name, v)
		}
	}
	if !(c.weightDecay >= 0) || math.IsInf(c.weightDecay, 0) {
		return fmt.Errorf("%s: weight decay must be finite and >= 0, got %g", c.who, c.weightDecay)
	}
	if c.learningRateSet && (!(c.learningRate > 0) || math.IsInf(c.learningRate, 1)) {
		return fmt.Errorf("%s: learning rate must be finite and > 0, got %g", c.who, c.learningRate)
	}
	return nil
}

// done validates (see validate) and returns the optimizer that applies rule to every variable.
// rule must hold copies of the builder's options, not the builder: it may change after Done.
func (c *elementwiseConfig) done(rule func(u variableUpdate)) (gomlxopt.Interface, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &elementwiseOptimizer{config: *c, rule: rule}, nil
}

// elementwiseOptimizer is the optimizer of SGDMomentum and Lion: rule per variable, one state
// variable each (see elementwiseUpdate).
type elementwiseOptimizer struct {
	config elementwiseConfig
	rule   func(u variableUpdate)
}

// UpdateGraph implements gomlxopt.Interface.
func (o *elementwiseOptimizer) UpdateGraph(ctx *context.Context, _ *Graph, loss *Node) {
	updateFromLoss(ctx, o.config.who, loss, o)
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients.
func (o *elementwiseOptimizer) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType) {
	c := o.config
	elementwiseUpdate(ctx, c, grads, lossDType, o.rule)
}

// Clear implements gomlxopt.Interface: it deletes the state variables.
func (o *elementwiseOptimizer) Clear(ctx *context.Context) error {
	return ctx.In(o.config.scope).DeleteVariablesInScope()
}

// elementwiseUpdate is the update loop SGDMomentum and Lion share: it takes GoMLX's learning rate
// (c's, or the context's "learning_rate", or c's default) and increments the global step once,
// then, for each trainable float variable with a gradient, creates its state variable (under c's
// scope, named after the variable with suffix "_momentum", in the loss dtype) and calls rule.
// Variables of other dtypes (integer, boolean, complex) are left unchanged, without state, as SMI
// leaves them unfiltered. c.who prefixes the graph-building errors.
func elementwiseUpdate(ctx *context.Context, c elementwiseConfig, grads []*Node, lossDType dtypes.DType,
	rule func(u variableUpdate)) {
	who := c.who
	if len(grads) == 0 {
		panicf("%s: no gradients, are there any trainable variables?", who)
	}
	g := grads[0].Graph()
	vars := trainableVariables(ctx, g, len(grads), who)
	dtype := lossDType
	lr := learningRate(ctx, g, dtype, c.learningRate, c.learningRateSet, c.defaultLR, who)
	_ = gomlxopt.IncrementGlobalStepGraph(ctx, g, dtype)
	for i, v := range vars {
		grad := grads[i]
		if grad == nil || !v.DType().IsFloat() {
			// No gradient: nothing to apply, and the state keeps its value. Not a float: a step
			// of lr*direction cast back would truncate (integers) or drop the imaginary part.
			continue
		}
		shape := v.Shape().Clone()
		shape.DType = dtype
		state := stateVariable(ctx.In(c.scope), v, "_momentum", shape)

		value := v.ValueGraph(g)
		w := ConvertDType(value, dtype)
		grad = ConvertDType(grad, dtype)
		gomlxopt.TraceNaNInGradients(ctx, v, grad)
		grad = gomlxopt.ClipNaNsInGradients(ctx, grad)
		rule(variableUpdate{g: g, state: state, w: w, grad: grad,
			apply: func(direction *Node) { applyStep(ctx, v, value, w, Mul(lr, direction)) }})
	}
}
