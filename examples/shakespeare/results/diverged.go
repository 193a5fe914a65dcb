package results

import (
	"fmt"
	"strconv"
)

// Diverged is the error of a run that stopped at its first iteration whose training loss is NaN
// or infinite. Nothing of that iteration is recorded or saved: the run's checkpoints hold the
// state before it, and no metrics are written. The study records it (a run that diverges is a
// result too) and goes on with the other runs.
type Diverged struct {
	Iter, MaxIters int     // the iteration (1-based) whose loss was not finite, of MaxIters
	Loss           float64 // that loss: NaN, +Inf or -Inf
	Detail         string  // what the trainer adds: the learning rate there, the checkpoint kept, what to do
}

func (d *Diverged) Error() string {
	return fmt.Sprintf("training diverged at iteration %d of %d: its training loss is %s%s", d.Iter, d.MaxIters, d.LossText(), d.Detail)
}

// LossText is the loss as metrics and reports write it ("NaN", "+Inf", "-Inf"); JSON has no
// number for them.
func (d *Diverged) LossText() string { return strconv.FormatFloat(d.Loss, 'g', -1, 64) }
