package optimizers_test

import (
	"fmt"
	"log"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/datasets"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/ui/commandline"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/optimizers"
)

// ExampleFromContext is a GoMLX program that trains with SMI chosen by name, as GoMLX's example
// trainers choose any optimizer: hyperparameters in the context, a "-set" flag's value parsed by
// GoMLX's commandline package, and GoMLX's own optimizers.FromContext, which knows "smi" once this
// package is imported. It trains y = 2*x0 - 3*x1 + 1.
func ExampleFromContext() {
	b, err := backend.New() // In a program of your own: backends.MustNew() (GOMLX_BACKEND: see the package doc).
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.New()
	ctx.SetParams(map[string]any{"train_steps": 300, gomlxopt.ParamLearningRate: 0.05}) // the program's own
	optimizers.SetDefaultParams(ctx)                                                    // declares "optimizer" and smi_* for -set
	settings := "optimizer=smi;smi_base=adamw;smi_quantile=0.25"                        // -set's value
	if _, err := commandline.ParseContextSettings(ctx, settings); err != nil {
		log.Fatal(err)
	}
	opt := gomlxopt.FromContext(ctx) // optimizers.FromContext(ctx) returns an error instead of panicking
	ds, model := lineProblem(b)      // y = 2*x0 - 3*x1 + 1, one dense layer
	trainer := train.NewTrainer(b, ctx, model, losses.MeanSquaredError, opt, nil, nil)
	metrics, err := train.NewLoop(trainer).RunSteps(ds, context.GetParamOr(ctx, "train_steps", 0))
	if err != nil {
		log.Fatal(err)
	}
	alpha, _, _ := optimizers.Telemetry(ctx)
	fmt.Printf("SMI's alpha at the last step: %.3f; loss below 1e-2: %v\n", alpha, metrics[0].Value().(float32) < 1e-2)
	// Output:
	// SMI's alpha at the last step: 0.500; loss below 1e-2: true
}

// lineProblem is the examples' regression, y = 2*x0 - 3*x1 + 1 on a grid of 64 points given whole in
// every batch, and its model, one dense layer.
func lineProblem(b backends.Backend) (train.Dataset, train.ModelFn) {
	var x, y [][]float32
	for i := range 64 {
		x0, x1 := float32(i%8)/4-1, float32(i/8)/4-1
		x, y = append(x, []float32{x0, x1}), append(y, []float32{2*x0 - 3*x1 + 1})
	}
	ds, err := datasets.InMemoryFromData(b, "line", []any{x}, []any{y})
	if err != nil {
		panic(err) // a programming error: the data above is fixed
	}
	ds.BatchSize(64, true).Infinite(true)
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{layers.Dense(ctx, inputs[0], true, 1)}
	}
	return ds, model
}
