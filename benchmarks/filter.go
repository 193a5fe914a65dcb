package benchmarks

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	smiopt "github.com/smi-gomlx/smi/optimizers"
	"github.com/smi-gomlx/smi/spectral"
)

// FilterConfig is SMI's settings every filter timing uses: optimizers.PaperDefaults("adamw"), the
// paper's AdamW guideline (q = 0.25, beta = 0.99), which is also what optimizers.SMI starts from.
// The cost does not depend on them, except that a fractional rank q*(N-1) adds one pass to the
// exact quantile, which q = 0.25 has for almost every size.
func FilterConfig() spectral.Config {
	cfg, err := smiopt.PaperDefaults("adamw")
	if err != nil {
		panic(err) // "adamw" is one of optimizers.PaperBases
	}
	return cfg
}

// benchAlpha is the blend weight alpha(t) of the timed blends: any value in [0, 1] costs the same.
const benchAlpha = 0.3

// Part names of the filter breakdown, in the order the filter runs them.
const (
	PartFFT      = "fft"
	PartHistory  = "magnitude+EMA"
	PartQuantile = "quantile (exact)"
	PartMask     = "mask+inverse FFT"
	PartEnergy   = "kept-energy sums"
	PartBlend    = "blend"
	PartWhole    = "whole filter"
	// PartSampled is not part of SMI: the quantile of a strided sample, to show what an
	// approximate threshold would save.
	PartSampled = "quantile (sampled, approx.)"
	// Primitives any exact selection is built from, timed on the same history: one counting
	// reduction (count of H' <= t) and one 256-bin histogram by ScatterSum.
	PartCountPass = "one counting pass"
	PartHistPass  = "one 256-bin ScatterSum histogram"
)

// SampledQuantileSize is the sample size of the approximate quantile compared in the breakdown.
const SampledQuantileSize = 1 << 16

// FilterParts lists the parts in the order the filter runs them, with the least DRAM traffic each needs per
// gradient element in float32 (the real FFT F and the history H both have about n x d/2 bins:
// 4 bytes of complex F and 2 of H per element): its inputs read once and its outputs written
// once, an FFT's internal passes and a selection's extra passes not counted. Measured time over
// this traffic says how far the part is from streaming its data once.
var FilterParts = []struct {
	Name            string
	BytesPerElement float64
	Traffic         string
}{
	{PartFFT, 8, "read g 4 + write F 4"},
	{PartHistory, 8, "read F 4 + H 2, write H' 2"},
	{PartQuantile, 2, "read H' 2 (once)"},
	{PartMask, 10, "read F 4 + H' 2, write G~ 4"},
	{PartEnergy, 6, "read F 4 + H' 2"},
	{PartBlend, 12, "read g 4 + G~ 4, write g' 4"},
	{PartWhole, 12, "read g 4 + H 2, write g' 4 + H' 2"},
}

// FilterSpec names one gradient shape to time.
type FilterSpec struct {
	// Label is free text for reports and progress lines (where the shape comes from).
	Label string
	// Dims is the float32 gradient's shape; any rank >= 1 (SMI views it as a matrix, see
	// spectral.MatrixView), no dimension negative.
	Dims []int
	// Half times the half-spectrum variant (optimizers.SMIConfig.HalfSpectrum).
	Half bool
	// Parts: time the breakdown too, not only the whole filter.
	Parts bool
}

// Bins is the number of history entries (frequency bins) of the spec; 0 for a shape that is not
// filtered (rank 0 or empty). It panics if a dimension is negative.
func (s FilterSpec) Bins() int {
	h, ok := spectral.HistoryShape(s.shape("Bins"))
	if !ok {
		return 0
	}
	return h.Size()
}

// Elems is the gradient's number of elements. It panics if a dimension is negative.
func (s FilterSpec) Elems() int { return s.shape("Elems").Size() }

// shape is the spec's gradient shape; method names the caller in the panic for a negative dimension.
func (s FilterSpec) shape(method string) shapes.Shape {
	if err := checkDims(s.Dims); err != nil {
		panic(fmt.Errorf("benchmarks.FilterSpec.%s: %w", method, err))
	}
	return shapes.Make(dtypes.Float32, s.Dims...)
}

// checkDims returns an error if a dimension is negative (shapes.Make would panic on it).
func checkDims(dims []int) error {
	for _, d := range dims {
		if d < 0 {
			return fmt.Errorf("dimensions %v: %d is negative", dims, d)
		}
	}
	return nil
}

// FilterCases builds the timed cases for one gradient shape: the whole filter (steps 1-8: the
// spectral.Filter graph plus spectral.Blend, outputs g' and H') and, with spec.Parts, each
// part as its own compiled graph fed by the previous part's output. It returns an error if the
// shape is not filtered (rank 0, empty or a negative dimension).
func FilterCases(b backends.Backend, spec FilterSpec) (cases []Case, cleanup func(), err error) {
	if err := checkDims(spec.Dims); err != nil {
		return nil, nil, fmt.Errorf("benchmarks.FilterCases: %w", err)
	}
	cs := &caseSet{b: b}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("filter %v: %v", spec.Dims, r)
		}
		if err != nil {
			cs.cleanup()
			cases, cleanup = nil, nil
		}
	}()
	gShape := shapes.Make(dtypes.Float32, spec.Dims...)
	hShape, ok := spectral.HistoryShape(gShape)
	if !ok {
		return nil, nil, fmt.Errorf("shape %s is not filtered", gShape)
	}
	g := cs.keep(RandomTensor(b, 11, gShape))
	// A history that is not all zero, so the quantile works on spread-out values.
	h := cs.keep(absExec(b, cs.keep(RandomTensor(b, 12, hShape))))

	cfg := FilterConfig()
	// Kept energy is an output: optimizers.SMI reports it, so XLA must compute it there too.
	whole := cs.exec(func(g, h *Node) (*Node, *Node, *Node) {
		filtered, newH, kept := spectral.Filter(g, h, cfg.Quantile, cfg.Beta, spec.Half)
		return spectral.Blend(g, filtered, Scalar(g.Graph(), dtypes.Float32, benchAlpha)), newH, kept
	})
	cs.add(PartWhole, whole, g, h)
	if spec.Parts {
		cs.addParts(spec, g, h)
	}
	return cs.cases, cs.cleanup, nil
}

// caseSet collects timed cases with the executables and tensors they hold; a graph-building
// error panics (FilterCases recovers it).
type caseSet struct {
	b     backends.Backend
	cases []Case
	held  []*tensors.Tensor
	execs []*Exec
}

// keep holds t (freed by cleanup), or panics with err.
func (cs *caseSet) keep(t *tensors.Tensor, err error) *tensors.Tensor {
	if err != nil {
		panic(err)
	}
	cs.held = append(cs.held, t)
	return t
}

// exec compiles fn (freed by cleanup), or panics.
func (cs *caseSet) exec(fn any) *Exec {
	e, err := NewExecAny(cs.b, fn)
	if err != nil {
		panic(err)
	}
	cs.execs = append(cs.execs, e)
	return e
}

// add adds the case name: e run on args.
func (cs *caseSet) add(name string, e *Exec, args ...*tensors.Tensor) {
	in := make([]any, len(args))
	for i, a := range args {
		in[i] = a
	}
	cs.cases = append(cs.cases, Case{Name: name, Run: func() error { return Await(e.Exec(in...)) }})
}

// cleanup frees what the cases hold.
func (cs *caseSet) cleanup() {
	for _, e := range cs.execs {
		e.Finalize()
	}
	for _, t := range cs.held {
		_ = t.FinalizeAll()
	}
}

// addParts adds a case per part of the filter of gradient g with history h.
func (cs *caseSet) addParts(spec FilterSpec, g, h *tensors.Tensor) {
	gShape := shapes.Make(dtypes.Float32, spec.Dims...)
	hShape, _ := spectral.HistoryShape(gShape)
	n, d, _ := spectral.MatrixView(gShape)
	cfg := FilterConfig()
	// The parts are spectral's exported steps, the ones spectral.Filter is composed of, one graph
	// each on a batch of one slice, so each is timed with its inputs and outputs in memory.
	fft := cs.exec(func(g *Node) *Node { return spectral.Spectrum(InsertAxes(g, 0)) })
	spectrum := cs.keep(fft.Exec1(g))
	cs.add(PartFFT, fft, g)

	history := cs.exec(func(f, h *Node) *Node {
		return spectral.UpdateHistory(InsertAxes(h, 0), spectral.Magnitude(f), cfg.Beta)
	})
	newH := cs.keep(history.Exec1(spectrum, h))
	cs.add(PartHistory, history, spectrum, h)

	quant := cs.exec(func(h *Node) *Node { return spectral.Threshold(h, d, cfg.Quantile, spec.Half) })
	tau := cs.keep(quant.Exec1(newH))
	cs.add(PartQuantile, quant, newH)

	if size := hShape.Size(); size > 2*SampledQuantileSize {
		stride := size / SampledQuantileSize
		sampled := cs.exec(func(h *Node) *Node {
			flat := Reshape(h, size)
			s := Slice(flat, AxisRange(0, stride*SampledQuantileSize).Stride(stride))
			return spectral.Quantile(s, cfg.Quantile)
		})
		cs.add(PartSampled, sampled, newH)
	}

	count := cs.exec(func(h, tau *Node) *Node {
		return ReduceAllSum(ConvertDType(LessOrEqual(h, Reshape(tau, 1, 1, 1)), dtypes.Int32))
	})
	cs.add(PartCountPass, count, newH, tau)
	hist := cs.exec(func(h *Node) *Node {
		size := h.Shape().Size()
		bins := ConvertDType(BitwiseShiftRightLogicalScalar(Bitcast(Reshape(h, size), dtypes.Uint32), 24), dtypes.Int32)
		zeros := Zeros(h.Graph(), shapes.Make(dtypes.Int32, 256))
		ones := Ones(h.Graph(), shapes.Make(dtypes.Int32, size))
		return ScatterSum(zeros, Reshape(bins, size, 1), ones, false, false)
	})
	cs.add(PartHistPass, hist, newH)

	mask := cs.exec(func(f, h, tau *Node) *Node {
		_, w := spectral.Mask(h, tau)
		return Reshape(spectral.InverseMasked(f, w, d), spec.Dims...)
	})
	filtered := cs.keep(mask.Exec1(spectrum, newH, tau))
	cs.add(PartMask, mask, spectrum, newH, tau)

	energy := cs.exec(func(f, h, tau *Node) (*Node, *Node) {
		// The magnitude is an input of KeptEnergy only for float64 spectra; here XLA drops it.
		_, w := spectral.Mask(h, tau)
		return spectral.KeptEnergy(f, spectral.Magnitude(f), w, n, d)
	})
	cs.add(PartEnergy, energy, spectrum, newH, tau)

	blend := cs.exec(func(g, f *Node) *Node {
		return spectral.Blend(g, f, Scalar(g.Graph(), dtypes.Float32, benchAlpha))
	})
	cs.add(PartBlend, blend, g, filtered)
}

func absExec(b backends.Backend, t *tensors.Tensor) (*tensors.Tensor, error) {
	e, err := NewExec(b, Abs)
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	return e.Exec1(t)
}

// FilterResult is the timing of one spec: Results[i] for the i-th case of FilterCases.
type FilterResult struct {
	Spec    FilterSpec
	Results []Result
}

// Time of a part (or the whole filter); ok is false if it was not timed.
func (r FilterResult) Time(part string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name == part {
			return res, true
		}
	}
	return Result{}, false
}

// MeasureFilter times each spec's cases interleaved among themselves.
func MeasureFilter(b backends.Backend, specs []FilterSpec, opt Options, progress func(string)) ([]FilterResult, error) {
	var out []FilterResult
	for _, spec := range specs {
		if progress != nil {
			progress(fmt.Sprintf("filter %s %v half=%v", spec.Label, spec.Dims, spec.Half))
		}
		cases, cleanup, err := FilterCases(b, spec)
		if err != nil {
			return nil, err
		}
		res, err := Interleave(cases, opt)
		cleanup()
		if err != nil {
			return nil, err
		}
		out = append(out, FilterResult{Spec: spec, Results: res})
	}
	return out, nil
}

// ModelShape is one distinct variable shape of a model and how many variables have it.
type ModelShape struct {
	Dims  []int
	Count int
	// Names are the variables' scoped names (context.Variable.ScopeAndName).
	Names []string
}

// TrainableShapes lists the distinct shapes of ctx's trainable variables, in the order they were
// first met: what ModelFilterCase filters for a model built in ctx. Build the model's graph once
// (a training step, or the model function on a graph) before calling it.
func TrainableShapes(ctx *context.Context) []ModelShape {
	var out []ModelShape
	index := map[string]int{}
	for v := range ctx.IterVariables() {
		if !v.Trainable {
			continue
		}
		dims := v.Shape().Dimensions
		key := fmt.Sprint(dims)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, ModelShape{Dims: slices.Clone(dims)})
		}
		out[i].Count++
		out[i].Names = append(out[i].Names, v.ScopeAndName())
	}
	return out
}

// ModelFilterCase builds one graph that filters and blends every variable of a model as
// optimizers.SMI does inside the training step (without the base optimizer): variables with
// the same matrix view go through one spectral.FilterBatch. Inputs are device-resident random
// gradients and histories; the cleanup frees them. Shapes that are not filtered (rank 0 or empty)
// are left out, as optimizers.SMI leaves them. It returns an error if no shape is filtered, a
// Count is below 1 or a dimension is negative.
func ModelFilterCase(b backends.Backend, name string, shapesIn []ModelShape, half bool) (c Case, cleanup func(), err error) {
	cfg := FilterConfig()
	return modelGraphCase(b, "benchmarks.ModelFilterCase", name, shapesIn, func(g, h *Node, alpha *Node) []*Node {
		filtered, newH, kept, energy := spectral.FilterBatch(g, h, cfg.Quantile, cfg.Beta, half)
		return []*Node{spectral.Blend(g, filtered, alpha), newH, kept, energy}
	})
}

// ModelFFTCase is ModelFilterCase reduced to the two transforms every exact filter needs, on the
// same groups: the 2-D real FFT of each gradient (spectral.Spectrum) and the inverse real FFT of
// that spectrum. Its time is the least the filter can take with XLA's FFT. Same shapes and
// errors as ModelFilterCase.
func ModelFFTCase(b backends.Backend, name string, shapesIn []ModelShape) (c Case, cleanup func(), err error) {
	return modelGraphCase(b, "benchmarks.ModelFFTCase", name, shapesIn, func(g, _ *Node, _ *Node) []*Node {
		n, d := g.Shape().Dim(1), g.Shape().Dim(2)
		return []*Node{InverseRealFFT(spectral.Spectrum(g), n, d)}
	})
}

// modelGraphCase builds one graph that applies fn to each group of a model's variables with the
// same n x d matrix view: g is the group's random gradients [count, n, d], h its random
// non-negative histories [count, n, d/2+1] and alpha the blend weight; fn's results are the
// graph's outputs. who names the exported caller in the errors.
func modelGraphCase(b backends.Backend, who, name string, shapesIn []ModelShape, fn func(g, h, alpha *Node) []*Node) (c Case, cleanup func(), err error) {
	for _, sh := range shapesIn {
		if err := checkDims(sh.Dims); err != nil {
			return Case{}, nil, fmt.Errorf("%s %s: %w", who, name, err)
		}
		if sh.Count < 1 {
			return Case{}, nil, fmt.Errorf("%s %s: shape %v has Count %d, want >= 1", who, name, sh.Dims, sh.Count)
		}
	}
	var args []*tensors.Tensor
	cleanup = func() {
		for _, t := range args {
			_ = t.FinalizeAll()
		}
	}
	// One group per distinct matrix view: [count, n, d] gradients and [count, rows, bins] histories.
	type group struct{ n, d, count int }
	var groups []group
	index := map[[2]int]int{}
	for _, sh := range shapesIn {
		n, d, ok := spectral.MatrixView(shapes.Make(dtypes.Float32, sh.Dims...))
		if !ok {
			continue
		}
		i, seen := index[[2]int{n, d}]
		if !seen {
			i = len(groups)
			index[[2]int{n, d}] = i
			groups = append(groups, group{n: n, d: d})
		}
		groups[i].count += sh.Count
	}
	if len(groups) == 0 {
		return Case{}, nil, fmt.Errorf("%s %s: no filtered shape among %d (each is rank 0 or empty)", who, name, len(shapesIn))
	}
	for i, gr := range groups {
		gShape := shapes.Make(dtypes.Float32, gr.count, gr.n, gr.d)
		hView, _ := spectral.HistoryShape(shapes.Make(dtypes.Float32, gr.n, gr.d))
		g, err := RandomTensor(b, int64(100+2*i), gShape)
		if err != nil {
			cleanup()
			return Case{}, nil, err
		}
		args = append(args, g)
		h, err := RandomTensor(b, int64(101+2*i), shapes.Make(dtypes.Float32, append([]int{gr.count}, hView.Dimensions...)...))
		if err != nil {
			cleanup()
			return Case{}, nil, err
		}
		h2, err := absExec(b, h)
		_ = h.FinalizeAll()
		if err != nil {
			cleanup()
			return Case{}, nil, err
		}
		args = append(args, h2)
	}
	e, err := NewExec(b, func(in []*Node) []*Node {
		var outs []*Node
		alpha := Scalar(in[0].Graph(), dtypes.Float32, benchAlpha)
		for i := 0; i < len(in); i += 2 {
			outs = append(outs, fn(in[i], in[i+1], alpha)...)
		}
		return outs
	})
	if err != nil {
		cleanup()
		return Case{}, nil, err
	}
	inner := cleanup
	cleanup = func() { e.Finalize(); inner() }
	in := make([]any, len(args))
	for i, a := range args {
		in[i] = a
	}
	return Case{Name: name, Run: func() error { return Await(e.Exec(in...)) }}, cleanup, nil
}
