package main

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"

	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// Data-parallel training over several devices (-devices N): each step's global batch (the same
// batch a one-device run trains on) is split along the batch axis over a 1-D device mesh, and
// GoMLX's AutoSharding strategy lets XLA's partitioner (Shardy) run the one-device program on
// N devices. The weights, optimizer state and SMI's histories are replicated: the partitioner
// all-reduces the gradients, so every device filters and applies the same global gradient.
// With one device (the default) none of this is used and the step is the one-device step.

const devicesUsage = "devices to train and evaluate on, data-parallel: the batch is split over them " +
	"(0: all of the backend's devices; batch_size must divide by the count)"

// meshAxis names the mesh axis the batch is sharded along.
const meshAxis = "batch"

// dataParallel shards batches over a 1-D mesh of devices; nil means one device, no sharding.
type dataParallel struct {
	backend backends.Backend
	devices int
	mesh    *distributed.DeviceMesh
	batch   *distributed.ShardingSpec // axis 0 sharded over the mesh, the rest replicated
}

// allDevices is trainOptions.Devices for all of the backend's devices (the flag's -devices 0);
// the zero value, 0, is one device, so options built in code train on one device unless told.
const allDevices = -1

// resolveDevices turns trainOptions.Devices into a device count: allDevices is all of the
// backend's devices, 0 is 1; the count must not exceed them and must divide the batch size.
func resolveDevices(b backends.Backend, requested, batchSize int) (int, error) {
	available := b.NumDevices()
	switch {
	case requested == allDevices:
		requested = available
	case requested == 0:
		requested = 1
	case requested < 0:
		return 0, fmt.Errorf("-devices must be >= 0 (0: all %d devices of %s), got %d", available, b.Name(), requested)
	case requested > available:
		return 0, fmt.Errorf("-devices %d: the backend %s has only %d device(s)", requested, b.Name(), available)
	}
	if batchSize%requested != 0 {
		return 0, fmt.Errorf("-devices %d: batch_size %d does not split evenly over %d devices "+
			"(choose a batch_size that is a multiple of %d, e.g. -set batch_size=%d)",
			requested, batchSize, requested, requested, (batchSize/requested+1)*requested)
	}
	return requested, nil
}

// newDataParallel returns the sharding for n devices, or nil for one device.
func newDataParallel(b backends.Backend, n int) (*dataParallel, error) {
	if n <= 1 {
		return nil, nil
	}
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{meshAxis})
	if err != nil {
		return nil, err
	}
	spec, err := distributed.NewShardingSpec(mesh, distributed.AxisSpec{meshAxis})
	if err != nil {
		return nil, err
	}
	return &dataParallel{backend: b, devices: n, mesh: mesh, batch: spec}, nil
}

// numDevices is the device count, 1 for nil.
func (p *dataParallel) numDevices() int {
	if p == nil {
		return 1
	}
	return p.devices
}

// shard splits a host tensor of batch-major data over the devices.
func (p *dataParallel) shard(t *tensors.Tensor) (*distributed.Tensor, error) {
	dt, err := distributed.ShardTensor(p.batch, t)
	if err != nil {
		return nil, err
	}
	t.FinalizeAll()
	return dt, nil
}

// dataset returns ds itself for one device, else ds with its batches sharded over the devices.
func (p *dataParallel) dataset(ds train.Dataset) train.Dataset {
	if p == nil {
		return ds
	}
	return &shardedDataset{Dataset: ds, p: p}
}

// shardedDataset yields the batches of a train.Dataset split along the batch axis, for
// train.Loop's distributed steps.
type shardedDataset struct {
	train.Dataset
	p *dataParallel
}

var _ train.DistributedDataset = (*shardedDataset)(nil)

func (d *shardedDataset) Strategy() distributed.Strategy { return distributed.AutoSharding }

func (d *shardedDataset) DeviceAssignment() []backends.DeviceNum { return nil } // devices 0..N-1

func (d *shardedDataset) DistributedYield() (spec any, inputs, labels []*distributed.Tensor, err error) {
	spec, in, lab, err := d.Dataset.Yield()
	if err != nil {
		return nil, nil, nil, err
	}
	if inputs, err = d.p.shardAll(in); err != nil {
		return nil, nil, nil, err
	}
	if labels, err = d.p.shardAll(lab); err != nil {
		return nil, nil, nil, err
	}
	return spec, inputs, labels, nil
}

func (p *dataParallel) shardAll(ts []*tensors.Tensor) ([]*distributed.Tensor, error) {
	out := make([]*distributed.Tensor, len(ts))
	for i, t := range ts {
		dt, err := p.shard(t)
		if err != nil {
			return nil, fmt.Errorf("sharding a batch over %d devices: %w", p.devices, err)
		}
		out[i] = dt
	}
	return out, nil
}

// dataParallel reads -devices for cfg's batch size; nil for one device.
func (o *trainOptions) dataParallel(b backends.Backend, cfg gpt.Config) (*dataParallel, error) {
	n, err := resolveDevices(b, o.Devices, cfg.BatchSize)
	if err != nil { // -devices against the backend's devices and the batch size: the command line's mistake
		return nil, &cli.UsageError{Err: err}
	}
	return newDataParallel(b, n)
}

// evaluator sets e up to evaluate with its batches sharded over the devices; with one device it
// returns e as it is.
func (p *dataParallel) evaluator(e *evaluator) *evaluator {
	if p == nil {
		return e
	}
	e.exec.AutoSharding(p.mesh).
		WithInputShardingSpecs(p.batch, p.batch).
		WithOutputShardingSpecs(distributed.NewReplicatedShardingSpec(p.mesh))
	e.par = p
	return e
}

// exec runs exec on the inputs: as is on one device, else with the inputs sharded along the
// batch axis; it returns outputs replicated on every device as local tensors.
func (p *dataParallel) exec(exec *context.Exec, x, y *tensors.Tensor) ([]*tensors.Tensor, error) {
	if p == nil {
		return exec.Exec(x, y)
	}
	inputs := []*tensors.Tensor{x, y}
	sharded, err := p.shardAll(inputs)
	if err != nil {
		return nil, err
	}
	args := make([]any, len(sharded))
	for i, dt := range sharded {
		args[i] = dt
	}
	outs, err := exec.DistributedExec(args...)
	for _, dt := range sharded {
		_ = dt.Finalize()
	}
	if err != nil {
		return nil, err
	}
	local := make([]*tensors.Tensor, len(outs))
	for i, out := range outs {
		if local[i], err = out.Shards()[0].LocalClone(); err != nil {
			return nil, err
		}
		if err = out.Finalize(); err != nil {
			return nil, err
		}
	}
	return local, nil
}
