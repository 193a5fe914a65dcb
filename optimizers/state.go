package optimizers

import (
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// stateVariable returns the non-trainable variable that holds per-variable optimizer state for v, creating it
// with zeros on first use. It lives under scopeCtx's scope followed by v's scope, so names never collide, and
// checkpoints save it with the model.
func stateVariable(scopeCtx *context.Context, v *context.Variable, suffix string, shape shapes.Shape) *context.Variable {
	path := scopeCtx.Scope()
	if v.Scope() != context.RootScope {
		path += v.Scope()
	}
	return scopeCtx.Checked(false).InAbsPath(path).
		WithInitializer(initializers.Zero).
		VariableWithShape(v.Name()+suffix, shape).
		SetTrainable(false)
}
