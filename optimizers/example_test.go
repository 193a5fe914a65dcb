package optimizers_test

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/optimizers"
)

// ExampleSMI trains a linear regression y = 2*x0 - 3*x1 + 1 with SMI over AdamW in GoMLX's Trainer and Loop,
// logging SMI's telemetry every 100 steps.
func ExampleSMI() {
	b, err := backend.New() // In a program of your own: backends.MustNew() (GOMLX_BACKEND: see the package doc).
	if err != nil {
		fmt.Println(err)
		return
	}
	ds, model := lineProblem(b) // y = 2*x0 - 3*x1 + 1, one dense layer

	const steps = 300
	adamw := gomlxopt.Adam().LearningRate(0.05).WeightDecay(1e-4).Done()
	smi, err := optimizers.SMI(adamw).TotalSteps(steps).Done()
	if err != nil {
		fmt.Println(err)
		return
	}
	opt := optimizers.ClipByGlobalNorm(smi, 1) // Clipped gradients go to SMI, as in nanoGPT and the paper.
	ctx := context.New()
	ctx.SetRNGStateFromSeed(42)
	trainer := train.NewTrainer(b, ctx, model, losses.MeanSquaredError, opt, nil, nil)
	loop := train.NewLoop(trainer)
	train.EveryNSteps(loop, 100, "smi telemetry", 0, func(loop *train.Loop, _ []*tensors.Tensor) error {
		alpha, keptEnergy, _ := optimizers.Telemetry(ctx)
		// Telemetry is from the step just run: alpha(t) for t = its global step before the update.
		fmt.Printf("t=%d: alpha %.3f, kept energy in (0, 1]: %v\n", loop.LoopStep, alpha,
			keptEnergy > 0 && keptEnergy <= 1)
		return nil
	})
	metrics, err := loop.RunSteps(ds, steps)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("loss below 1e-3: %v\n", metrics[0].Value().(float32) < 1e-3)
	// Output:
	// t=99: alpha 0.198, kept energy in (0, 1]: true
	// t=199: alpha 0.398, kept energy in (0, 1]: true
	// t=299: alpha 0.500, kept energy in (0, 1]: true
	// loss below 1e-3: true
}
