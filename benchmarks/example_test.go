package benchmarks_test

import (
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/default"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/optimizers"
)

// SMI(AdamW)'s training step against AdamW's on a model of one's own, interleaved for 30 seconds.
func ExampleCompareSMI() {
	dotgrad.Enable() // GoMLX v0.26's own matrix-product gradients are many times slower
	b := backends.MustNew()
	x, _ := benchmarks.RandomTensor(b, 1, shapes.Make(dtypes.Float32, 256, 784)) // one batch of the real shapes
	y, _ := benchmarks.RandomTensor(b, 2, shapes.Make(dtypes.Float32, 256, 10))
	model := benchmarks.Model{
		Fn: func(ctx *context.Context, _ any, in []*graph.Node) []*graph.Node {
			h := graph.Tanh(layers.Dense(ctx.In("hidden"), in[0], true, 512))
			return []*graph.Node{layers.Dense(ctx.In("out"), h, true, 10)}
		},
		Loss:   losses.MeanSquaredError,
		Inputs: []*tensors.Tensor{x}, Labels: []*tensors.Tensor{y},
	}
	adamw := gomlxopt.Adam().WeightDecay(0.1).Done()
	cmp, err := benchmarks.CompareSMI(b, model, adamw, nil, benchmarks.StepOptions(30*time.Second))
	if err != nil {
		panic(err)
	}
	fmt.Printf("AdamW %v, SMI(AdamW) %v: %v\n", cmp.Base.Median(), cmp.SMI.Median(), cmp.Ratio)
}

// Each filter strategy against AdamW on the same model.
func ExampleStrategies() {
	b := backends.MustNew()
	var model benchmarks.Model // as in ExampleCompareSMI
	adamw := gomlxopt.Adam().WeightDecay(0.1).Done()
	opts := []benchmarks.Optimizer{{Name: "AdamW", Opt: adamw}}
	for _, s := range benchmarks.Strategies {
		smi, err := s.Configure(optimizers.SMI(adamw).TotalSteps(1000)).Done()
		if err != nil {
			panic(err)
		}
		opts = append(opts, benchmarks.Optimizer{Name: s.ID, Opt: smi})
	}
	res, err := benchmarks.MeasureSteps(b, model, opts, benchmarks.StepOptions(time.Minute), nil)
	if err != nil {
		panic(err)
	}
	for _, r := range res[1:] {
		fmt.Printf("%s: %v\n", r.Name, benchmarks.PairedRatio(res[0].Result, r.Result))
	}
}

// The filter alone on one gradient shape, whole and by part.
func ExampleMeasureFilter() {
	b := backends.MustNew()
	specs := []benchmarks.FilterSpec{{Label: "MLP", Dims: []int{768, 3072}, Parts: true}}
	res, err := benchmarks.MeasureFilter(b, specs, benchmarks.Options{Warmup: 2, Rounds: 9, MinSample: 20 * time.Millisecond}, nil)
	if err != nil {
		panic(err)
	}
	for _, r := range res[0].Results {
		fmt.Printf("%-35s %v\n", r.Name, r.Median())
	}
}
