package optimizers_test

import (
	"bytes"
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/distributed"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/datasets"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/optimizers"
)

// ExampleSMI_dataParallel trains ExampleSMI's linear regression data-parallel on 2 devices (XLA
// CPU's host devices here; GPUs the same way, on as many as there are up to 2, so one GPU runs it
// too): GoMLX's AutoSharding strategy with the batch split
// along a 1-D device mesh. SMI needs nothing else: the partitioner all-reduces the gradients, so
// both devices filter the same gradient and keep the same history.
func ExampleSMI_dataParallel() {
	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	devices := min(b.NumDevices(), 2)
	var x, y [][]float32
	for i := range 64 {
		x0, x1 := float32(i%8)/4-1, float32(i/8)/4-1
		x, y = append(x, []float32{x0, x1}), append(y, []float32{2*x0 - 3*x1 + 1})
	}
	source, err := datasets.InMemoryFromData(b, "line", []any{x}, []any{y})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Each device gets a batch of 32: the step's global batch is 64 examples.
	source.BatchSize(64/devices, true).Infinite(true)

	// A 1-D mesh, inputs and labels sharded along their first (batch) axis; variables (weights,
	// optimizer state, SMI's histories and telemetry) default to replicated on every device.
	mesh, err := distributed.NewDeviceMesh([]int{devices}, []string{"batch"})
	if err != nil {
		fmt.Println(err)
		return
	}
	byBatch, err := distributed.NewShardingSpec(mesh, distributed.AxisSpec{"batch"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ds, err := datasets.NewDistributedAccumulator(b, source, distributed.AutoSharding,
		[]*distributed.ShardingSpec{byBatch}, []*distributed.ShardingSpec{byBatch}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{layers.Dense(ctx, inputs[0], true, 1)}
	}
	const steps = 300
	adamw := gomlxopt.Adam().LearningRate(0.05).WeightDecay(1e-4).Done()
	smi, err := optimizers.SMI(adamw).TotalSteps(steps).Done()
	if err != nil {
		fmt.Println(err)
		return
	}
	opt := optimizers.ClipByGlobalNorm(smi, 1)
	ctx := context.New()
	ctx.SetRNGStateFromSeed(42)
	trainer := train.NewTrainer(b, ctx, model, losses.MeanSquaredError, opt, nil, nil)
	// A distributed dataset makes the Loop run train.Trainer.DistributedTrainStep.
	metrics, err := train.NewLoop(trainer).RunSteps(ds, steps)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("loss below 1e-3: %v\n", metrics[0].Value().(float32) < 1e-3)

	// Each variable holds one shard per device; replicated ones are the same bytes on each.
	same, count := true, 0
	for v := range ctx.In(optimizers.SMIScope).IterVariablesInScope() {
		count++
		dv, err := v.DistributedValue()
		if err != nil {
			fmt.Println(err)
			return
		}
		var first []byte
		for i, shard := range dv.Shards() {
			_ = shard.ConstBytes(func(data []byte) {
				if i == 0 {
					first = bytes.Clone(data)
				} else if !bytes.Equal(first, data) {
					same = false
				}
			})
		}
	}
	fmt.Printf("SMI's %d variables (2 histories, alpha, kept energy) identical on every device: %v\n", count, same)
	// Output:
	// loss below 1e-3: true
	// SMI's 4 variables (2 histories, alpha, kept energy) identical on every device: true
}
