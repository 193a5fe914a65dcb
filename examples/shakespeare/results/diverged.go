package results

import (
	"fmt"
	"strconv"
)

// Diverged is the error of a run that stopped at its first iteration whose training loss is NaN
// or infinite, or after which an evaluation's loss is. Nothing of that iteration is recorded or
// saved: the run's checkpoints hold the state before it, and no metrics are written. The study records it (a run that diverges is a
// result too) and goes on with the other runs.
type Diverged struct {
	Iter, MaxIters int     // the iteration (1-based) whose loss was not finite, of MaxIters
	Loss           float64 // that loss: NaN, +Inf or -Inf
	InEvaluation   bool    // the evaluation after Iter found it (the batch's own loss was finite)
	Detail         string  // what the trainer adds: the learning rate there, the checkpoint kept, what to do
}

func (d *Diverged) Error() string {
	return fmt.Sprintf("training diverged at iteration %d of %d: %s is %s%s", d.Iter, d.MaxIters, d.Where(), d.LossText(), d.Detail)
}

// Where is the loss that was not finite, for messages: "its training loss" or "the evaluation's loss after it".
func (d *Diverged) Where() string {
	if d.InEvaluation {
		return "the evaluation's loss after it"
	}
	return "its training loss"
}

// LossText is the loss as metrics and reports write it ("NaN", "+Inf", "-Inf"); JSON has no
// number for them.
func (d *Diverged) LossText() string { return strconv.FormatFloat(d.Loss, 'g', -1, 64) }
