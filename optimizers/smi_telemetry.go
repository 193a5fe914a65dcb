package optimizers

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph DSL is meant to be dot-imported.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/spectral"
)

// safeUpdate returns the gradient handed to the base optimizer for member m, and finite, a boolean
// scalar: whether this step's spectrum of m's gradient is finite. A NaN or Inf would stay in the
// history for good: such a step leaves the history alone and passes the gradient through
// unfiltered, for the base optimizer (and GoMLX's clip_nan) to deal with. The energy e, a sum over
// the spectrum, is non-finite exactly when the spectrum is. Otherwise the history becomes newHistory
// and the gradient is the blend of grad and filtered.
func safeUpdate(m groupMember, grad, filtered, newHistory, e *Node, alphaFor func(dtypes.DType) *Node) (blended, finite *Node) {
	finite = IsFinite(e)
	m.hVar.SetValueGraph(Where(finite, newHistory, m.history))
	return Where(finite, spectral.Blend(grad, filtered, alphaFor(grad.DType())), grad), finite
}

// energyTally sums, over the filtered variables of a step whose spectrum is finite, the gradient
// energies ||g_i||^2 and the kept energies k_i*||g_i||^2, in float64. By Parseval,
// k_i*||g_i||^2 = ||G~_i||^2, so their ratio is the fraction of the squared norm of all filtered
// gradients that the masks kept (see Telemetry).
type energyTally struct {
	kept, total *Node
}

func newEnergyTally(g *Graph) *energyTally {
	t := &energyTally{}
	t.kept, t.total = ScalarZero(g, dtypes.Float64), ScalarZero(g, dtypes.Float64)
	return t
}

// add counts a variable with kept fraction k and energy e (float64 scalars) if finite.
func (t *energyTally) add(g *Graph, finite, k, e *Node) {
	zero := ScalarZero(g, dtypes.Float64)
	t.total = Add(t.total, Where(finite, e, zero))
	t.kept = Add(t.kept, Where(finite, Mul(k, e), zero))
}

// keptFraction is sum kept / sum total, or 1 when the total is 0 (nothing filtered, or all zero).
func (t *energyTally) keptFraction(g *Graph) *Node {
	return Where(GreaterThan(t.total, ScalarZero(g, dtypes.Float64)), Div(t.kept, t.total),
		ScalarOne(g, dtypes.Float64))
}

// storeTelemetry sets SMI's telemetry variables in smiCtx: the step's alpha (float32) and kept-energy
// fraction (float64, stored as float32).
func storeTelemetry(smiCtx *context.Context, alpha, keptEnergy *Node) {
	telemetryVariable(smiCtx, TelemetryAlphaName).SetValueGraph(alpha)
	telemetryVariable(smiCtx, TelemetryKeptEnergyName).SetValueGraph(ConvertDType(keptEnergy, dtypes.Float32))
}

func telemetryVariable(smiCtx *context.Context, name string) *context.Variable {
	return smiCtx.Checked(false).VariableWithValue(name, float32(0)).SetTrainable(false)
}

// Telemetry returns the alpha and the kept-energy fraction of the last step executed with SMI on ctx (the
// context given to the trainer), read from SMI's telemetry variables; ok is false before the first step.
//
// keptEnergy is the fraction of the gradients' energy that the frequency masks kept, over all filtered
// variables together: sum_i k_i*||g_i||^2 / sum_i ||g_i||^2, where k_i = sum|F_i*M_i|^2 / sum|F_i|^2 is
// variable i's kept fraction of spectral energy (by Parseval, k_i*||g_i||^2 = ||G~_i||^2, so this is
// sum_i ||G~_i||^2 / sum_i ||g_i||^2). It is 1 when all filtered gradients are zero, or none is filtered.
// Gradients are those SMI receives (clipped, when ClipByGlobalNorm wraps SMI), before blending; variables skipped for non-finite gradients are left
// out. It is about 1-q for white-noise gradients and nearer 1 the more the gradients' energy is concentrated
// in few frequencies.
func Telemetry(ctx *context.Context) (alpha, keptEnergy float64, ok bool) {
	smiCtx := ctx.In(SMIScope)
	read := func(name string) (float64, bool) {
		v := smiCtx.GetVariableByScopeAndName(smiCtx.Scope(), name)
		if v == nil || !v.HasValue() {
			return 0, false
		}
		t, err := v.Value()
		if err != nil || t.Size() != 1 {
			return 0, false
		}
		var x float64
		var found bool
		t.ConstFlatData(func(flat any) {
			if f, isF32 := flat.([]float32); isF32 && len(f) == 1 {
				x, found = float64(f[0]), true
			}
		})
		return x, found
	}
	alpha, okA := read(TelemetryAlphaName)
	keptEnergy, okK := read(TelemetryKeptEnergyName)
	return alpha, keptEnergy, okA && okK
}
