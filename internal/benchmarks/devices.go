package benchmarks

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/internal/gpt"
)

// DevicesResult is the data-parallel step benchmark: one configuration's training step on 1, 2,
// ... devices, the batch (the preset's, the same global batch for every count) split over a 1-D
// mesh with GoMLX's AutoSharding, as examples/shakespeare's -devices trains.
type DevicesResult struct {
	Preset  string
	Opt     string
	Config  gpt.Config
	Counts  []int    // device counts, in the order of Results
	Results []Result // Results[i].Name is "<n> device(s)"
}

// dataParallelTrainer steps a Trainer with its batch sharded over a mesh of n devices.
type dataParallelTrainer struct {
	*Trainer
	inputs, labels []*distributed.Tensor
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
	if dt.inputs, err = shard(t.inputs); err != nil {
		return nil, err
	}
	if dt.labels, err = shard(t.labels); err != nil {
		return nil, err
	}
	return dt, nil
}

// Step runs one data-parallel training step and waits for it.
func (t *dataParallelTrainer) Step() error {
	return finalizeMetrics(t.trainer.DistributedTrainStep(distributed.AutoSharding, nil, nil, t.inputs, t.labels))
}

// MeasureDevices times the training step of the preset with the named optimizer configuration on
// each device count, interleaved; 1 is the ordinary one-device step (no sharding).
func MeasureDevices(b backends.Backend, preset string, cfg gpt.Config, optName string, counts []int, opt Options,
	progress func(string)) (DevicesResult, error) {
	res := DevicesResult{Preset: preset, Opt: optName, Config: cfg, Counts: counts}
	var cases []Case
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
			cases = append(cases, Case{Name: name, Run: t.Step})
			continue
		}
		t, err := newDataParallelTrainer(b, cfg, optName, n)
		if err != nil {
			return res, fmt.Errorf("%d devices: %w", n, err)
		}
		trainers = append(trainers, t.Trainer)
		cases = append(cases, Case{Name: name, Run: t.Step})
	}
	results, err := Interleave(cases, opt)
	if err != nil {
		return res, err
	}
	res.Results = results
	return res, nil
}

// writeDevices renders the data-parallel step times.
func (r *Report) writeDevices(p printer) {
	p("Training step of one configuration with the batch split over several devices (data-parallel, " +
		"GoMLX's AutoSharding over a 1-D mesh, as `examples/shakespeare train -devices N`); the global " +
		"batch is the preset's for every count, so the work per step is the same. ")
	p("On XLA CPU the devices are the plugin's host devices, which share this machine's %d logical CPUs: "+
		"more devices cannot add compute here, so the ratio measures what partitioning and the "+
		"all-reduce cost, not a speed-up. On several GPUs the same command measures the scaling. The section runs in a "+
		"child process whose XLA CPU plugin has a larger thread pool (PJRT_NPROC, see "+
		"internal/backend.PrepareDevices), without which 4 devices hang on 2 CPUs.\n\n", r.Env.NumCPU)
	for _, d := range r.Devices {
		p("`%s` preset, %s, batch %d x %d tokens:\n\n", d.Preset, d.Opt, d.Config.BatchSize, d.Config.BlockSize)
		p("| devices | step (median) | spread (IQR/median) | / 1 device (paired) |\n|---|---|---|---|\n")
		var one Result
		for i, res := range d.Results {
			ratio := "1"
			if d.Counts[i] == 1 {
				one = res
			} else if len(one.Samples) > 0 {
				ratio = PairedRatio(one, res).String()
			} else {
				ratio = "n/a"
			}
			p("| %d | %s | %.0f%% | %s |\n", d.Counts[i], HumanDuration(res.Median()), 100*res.Spread(), ratio)
		}
		p("\n")
	}
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
