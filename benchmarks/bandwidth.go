package benchmarks

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// RandomTensor returns a device-resident tensor of standard-normal values: generated on the
// device so timed calls never include a host-to-device transfer.
func RandomTensor(b backends.Backend, seed int64, shape shapes.Shape) (*tensors.Tensor, error) {
	e, err := NewExec(b, func(g *Graph) *Node {
		_, v := RandomNormal(RNGStateFromSeedForGraph(g, seed), shape)
		return v
	})
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	return e.Exec1()
}

// StreamOp is one memory-bound kernel used to measure bandwidth.
type StreamOp struct {
	Name string
	// BytesPerElem is the DRAM traffic per float32 element: reads plus writes.
	BytesPerElem int
	fn           func(x, y *Node) *Node
}

// StreamOps are the bandwidth probes: a read-only reduction, a read+write (x+1, the shape of
// most elementwise optimizer work) and a two-input triad.
var StreamOps = []StreamOp{
	{"read: sum(x)", 4, func(x, _ *Node) *Node { return ReduceAllSum(x) }},
	{"read+write: x+1", 8, func(x, _ *Node) *Node { return AddScalar(x, 1) }},
	{"triad: 2x+y", 12, func(x, y *Node) *Node { return Add(MulScalar(x, 2), y) }},
}

// BandwidthResult is one probe's timing over Elems float32 elements.
type BandwidthResult struct {
	Op    StreamOp
	Elems int
	Time  Result
}

// BytesPerSecond from the median time; 0 when Time has no samples (not timed, see Result) or a
// zero median.
func (r BandwidthResult) BytesPerSecond() float64 {
	m := r.Time.Median()
	if m <= 0 {
		return 0
	}
	return float64(r.Op.BytesPerElem) * float64(r.Elems) / m.Seconds()
}

// BandwidthCases builds the probe cases over arrays of elems float32 values (use arrays far
// larger than the last-level cache). The returned cleanup frees the inputs and executables.
// It returns an error if elems < 1.
func BandwidthCases(b backends.Backend, elems int) (cases []Case, ops []StreamOp, cleanup func(), err error) {
	if elems < 1 {
		return nil, nil, nil, fmt.Errorf("benchmarks.BandwidthCases: elems must be >= 1, got %d", elems)
	}
	shape := shapes.Make(dtypes.Float32, elems)
	x, err := RandomTensor(b, 1, shape)
	if err != nil {
		return nil, nil, nil, err
	}
	y, err := RandomTensor(b, 2, shape)
	if err != nil {
		return nil, nil, nil, err
	}
	var execs []*Exec
	cleanup = func() {
		for _, e := range execs {
			e.Finalize()
		}
		_ = x.FinalizeAll()
		_ = y.FinalizeAll()
	}
	for _, op := range StreamOps {
		e, err := NewExec(b, op.fn)
		if err != nil {
			cleanup()
			return nil, nil, nil, fmt.Errorf("%s: %w", op.Name, err)
		}
		execs = append(execs, e)
		cases = append(cases, Case{Name: op.Name, Run: func() error { return Await(e.Exec(x, y)) }})
		ops = append(ops, op)
	}
	return cases, ops, cleanup, nil
}

// MeasureBandwidth times the probes interleaved and returns one result per probe.
func MeasureBandwidth(b backends.Backend, elems int, opt Options) ([]BandwidthResult, error) {
	cases, ops, cleanup, err := BandwidthCases(b, elems)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res, err := Interleave(cases, opt)
	if err != nil {
		return nil, err
	}
	out := make([]BandwidthResult, len(res))
	for i := range res {
		out[i] = BandwidthResult{Op: ops[i], Elems: elems, Time: res[i]}
	}
	return out, nil
}
