package gptbench

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// DevicesResult is the data-parallel step benchmark: one configuration's training step on 1, 2,
// ... devices, the batch (the preset's, the same global batch for every count) split over a 1-D
// mesh with GoMLX's AutoSharding, as examples/shakespeare's -devices trains.
type DevicesResult struct {
	Preset  string
	Opt     string
	Config  gpt.Config
	Counts  []int               // device counts, in the order of Results
	Results []benchmarks.Result // Results[i].Name is "<n> device(s)"
}

// dataParallelTrainer steps a Trainer with its batch sharded over a mesh of n devices.
type dataParallelTrainer struct {
	*Trainer
	shardedInputs, shardedLabels []*distributed.Tensor
}

func newDataParallelTrainer(b backends.Backend, cfg gpt.Config, optName string, devices int) (*dataParallelTrainer, error) {
	t, err := NewTrainer(b, cfg, optName, 1)
	if err != nil {
		return nil, err
	}
	mesh, err := distributed.NewDeviceMesh([]int{devices}, []string{"batch"})
	if err != nil {
		return nil, err
	}
	spec, err := distributed.NewShardingSpec(mesh, distributed.AxisSpec{"batch"})
	if err != nil {
		return nil, err
	}
	shard := func(ts []*tensors.Tensor) ([]*distributed.Tensor, error) {
		out := make([]*distributed.Tensor, len(ts))
		for i, x := range ts {
			if out[i], err = distributed.ShardTensor(spec, x); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	dt := &dataParallelTrainer{Trainer: t}
	if dt.shardedInputs, err = shard(t.inputs); err != nil {
		return nil, err
	}
	if dt.shardedLabels, err = shard(t.labels); err != nil {
		return nil, err
	}
	return dt, nil
}

// Run runs one data-parallel training step and waits for it.
func (t *dataParallelTrainer) Run() error {
	return benchmarks.Await(t.Trainer.Trainer.DistributedTrainStep(distributed.AutoSharding, nil, nil, t.shardedInputs, t.shardedLabels))
}

// MeasureDevices times the training step of the preset with the named optimizer configuration on
// each device count, interleaved; 1 is the ordinary one-device step (no sharding).
func MeasureDevices(b backends.Backend, preset string, cfg gpt.Config, optName string, counts []int, opt benchmarks.Options,
	progress func(string)) (DevicesResult, error) {
	res := DevicesResult{Preset: preset, Opt: optName, Config: cfg, Counts: counts}
	var cases []benchmarks.Case
	var trainers []*Trainer
	defer func() {
		for _, t := range trainers {
			t.Finalize()
		}
	}()
	for _, n := range counts {
		if n < 1 || n > b.NumDevices() {
			return res, fmt.Errorf("%d devices: the backend %s has %d", n, b.Name(), b.NumDevices())
		}
		if cfg.BatchSize%n != 0 {
			return res, fmt.Errorf("%d devices: the %s preset's batch of %d does not split evenly", n, preset, cfg.BatchSize)
		}
		if progress != nil {
			progress(fmt.Sprintf("devices %s %s: %d", preset, optName, n))
		}
		name := fmt.Sprintf("%d device(s)", n)
		if n == 1 {
			t, err := NewTrainer(b, cfg, optName, 1)
			if err != nil {
				return res, err
			}
			trainers = append(trainers, t)
			cases = append(cases, benchmarks.Case{Name: name, Run: t.Run})
			continue
		}
		t, err := newDataParallelTrainer(b, cfg, optName, n)
		if err != nil {
			return res, fmt.Errorf("%d devices: %w", n, err)
		}
		trainers = append(trainers, t.Trainer)
		cases = append(cases, benchmarks.Case{Name: name, Run: t.Run})
	}
	results, err := benchmarks.Interleave(cases, opt)
	if err != nil {
		return res, err
	}
	res.Results = results
	return res, nil
}

// Summary is one line per device count, for logs.
func (d DevicesResult) Summary() []string {
	var lines []string
	for i, res := range d.Results {
		lines = append(lines, fmt.Sprintf("devices %s %s: %d: step %s (%d rounds)", d.Preset, d.Opt, d.Counts[i],
			HumanDuration(res.Median()), len(res.Samples)))
	}
	return lines
}
