package gptbench

import (
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's graph DSL reads best dot-imported.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// The three matrix products of a dense layer y = x·W in a training step (x: tokens x in), as
// ours computes them (package dotgrad's gradients) and as PyTorch's nn.Linear does, whose
// weight is stored transposed (W': out x in; y = x·W'ᵀ, dx = dy·W', dW' = dyᵀ·x).
const (
	ProductForward = "forward"
	ProductInput   = "input gradient"
	ProductWeight  = "weight gradient"
)

// ProductForms lists the forms in report order.
var ProductForms = []string{ProductForward, ProductInput, ProductWeight}

// HasTransposedOperand reports whether a form's product needs an operand transposed (both
// gradients): those are also timed in dotgrad's Materialized form, beside its default.
func HasTransposedOperand(form string) bool { return form == ProductInput || form == ProductWeight }

// ProductShape is one dense-layer shape of a model and how many of its layers have it.
type ProductShape struct {
	Tokens, In, Out, Count int
}

// Flops of one product of this shape (each form has the same): 2 * tokens * in * out.
func (s ProductShape) Flops() float64 { return 2 * float64(s.Tokens) * float64(s.In) * float64(s.Out) }

// Label is "in x out".
func (s ProductShape) Label() string { return fmt.Sprintf("%dx%d", s.In, s.Out) }

// LinearProducts lists the GPT's dense layers at cfg's batch: per block the attention's input
// (C -> 3C) and output (C -> C) projections and the MLP's two layers (C -> 4C, 4C -> C). The
// output head (tied to the embedding) and attention's batched products are left out.
func LinearProducts(cfg gpt.Config) []ProductShape {
	t, c := cfg.BatchSize*cfg.BlockSize, cfg.NEmbd
	var out []ProductShape
	for _, io := range [][2]int{{c, 3 * c}, {c, c}, {c, 4 * c}, {4 * c, c}} {
		found := false
		for i := range out {
			if out[i].In == io[0] && out[i].Out == io[1] {
				out[i].Count += cfg.NLayer
				found = true
			}
		}
		if !found {
			out = append(out, ProductShape{Tokens: t, In: io[0], Out: io[1], Count: cfg.NLayer})
		}
	}
	return out
}

// ProductCaseName names the timed case of a form and shape, ours or PyTorch's.
func ProductCaseName(form string, s ProductShape, torch bool) string {
	if torch {
		return fmt.Sprintf("PyTorch %s %s", form, s.Label())
	}
	return fmt.Sprintf("%s %s", form, s.Label())
}

// ControlForm is the form whose default-form case is also compiled a second time, from the same
// graph, and timed as a case of its own (an A/A control), placed as the Materialized form's case
// is: the paired ratio of the two measures only what the harness and a second compilation add
// (the order of cases in a round, caches, allocator), and its interval should contain 1.
const ControlForm = ProductInput

// ControlCaseName names the A/A control's second case of a shape.
func ControlCaseName(s ProductShape) string {
	return fmt.Sprintf("%s %s, A/A", ControlForm, s.Label())
}

// MaterializedCaseName names the timed case of a gradient form computed in dotgrad's
// Materialized form (the transposed operand copied before the product).
func MaterializedCaseName(form string, s ProductShape) string {
	return fmt.Sprintf("%s, %s %s", form, dotgrad.Materialized, s.Label())
}

// ProductsResult holds the interleaved timings of every form and shape, ours and (when measured)
// PyTorch's.
type ProductsResult struct {
	Shapes  []ProductShape
	Results []benchmarks.Result
	Torch   bool
}

// Time of a form and shape.
func (r ProductsResult) Time(form string, s ProductShape, torch bool) (benchmarks.Result, bool) {
	name := ProductCaseName(form, s, torch)
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return benchmarks.Result{}, false
}

// Control is the A/A control's second case of a shape (its first is Time(ControlForm, s, false)).
func (r ProductsResult) Control(s ProductShape) (benchmarks.Result, bool) {
	name := ControlCaseName(s)
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return benchmarks.Result{}, false
}

// Materialized is the time of a gradient form in dotgrad's Materialized form.
func (r ProductsResult) Materialized(form string, s ProductShape) (benchmarks.Result, bool) {
	name := MaterializedCaseName(form, s)
	for _, res := range r.Results {
		if res.Name == name {
			return res, true
		}
	}
	return benchmarks.Result{}, false
}

// MeasureProducts times each form of each shape alone, ours compiled as the training step
// computes it (the layer's Dot and dotgrad's gradient of it with respect to x or W; the other
// one is not computed), the gradients both in dotgrad's default form and in its Materialized
// form, PyTorch's (when torch is not nil) in its process, all interleaved. The ControlForm's
// default case is compiled twice and timed as two cases (the A/A control).
func MeasureProducts(b backends.Backend, shapesIn []ProductShape, torch *Torch, opt benchmarks.Options) (ProductsResult, error) {
	dotgrad.Enable()
	res := ProductsResult{Shapes: shapesIn, Torch: torch != nil}
	var cases []benchmarks.Case
	var execs []*Exec
	defer func() {
		for _, e := range execs {
			e.Finalize()
		}
	}()
	for i, s := range shapesIn {
		x, err := benchmarks.RandomTensor(b, int64(200+3*i), shapes.Make(dtypes.Float32, s.Tokens, s.In))
		if err != nil {
			return res, err
		}
		w, err := benchmarks.RandomTensor(b, int64(201+3*i), shapes.Make(dtypes.Float32, s.In, s.Out))
		if err != nil {
			return res, err
		}
		dy, err := benchmarks.RandomTensor(b, int64(202+3*i), shapes.Make(dtypes.Float32, s.Tokens, s.Out))
		if err != nil {
			return res, err
		}
		defer func() {
			for _, t := range []*tensors.Tensor{x, w, dy} {
				_ = t.FinalizeAll()
			}
		}()
		for _, form := range ProductForms {
			graph := func(x, w, dy *Node) *Node {
				if form == ProductForward {
					return Dot(x, w)
				}
				loss := ReduceAllSum(Mul(Dot(x, w), dy)) // its gradient with respect to x·W is dy
				if form == ProductInput {
					return Gradient(loss, x)[0]
				}
				return Gradient(loss, w)[0]
			}
			variants := []dotgrad.Form{dotgrad.CurrentForm()}
			if HasTransposedOperand(form) && variants[0] != dotgrad.Materialized {
				variants = append(variants, dotgrad.Materialized)
			}
			for i, variant := range variants {
				e, err := NewExec(b, graph)
				if err != nil {
					return res, err
				}
				execs = append(execs, e)
				// The gradient is built when the graph is, at the first call.
				if err := withForm(variant, func() error { return benchmarks.Await(e.Exec(x, w, dy)) }); err != nil {
					return res, fmt.Errorf("%s %s, %s: %w", form, s.Label(), variant, err)
				}
				name := ProductCaseName(form, s, false)
				if i > 0 {
					name = MaterializedCaseName(form, s)
				}
				cases = append(cases, benchmarks.Case{Name: name, Run: func() error { return benchmarks.Await(e.Exec(x, w, dy)) }})
				if i == 0 && form == ControlForm {
					c, err := NewExec(b, graph)
					if err != nil {
						return res, err
					}
					execs = append(execs, c)
					if err := withForm(variant, func() error { return benchmarks.Await(c.Exec(x, w, dy)) }); err != nil {
						return res, fmt.Errorf("%s %s, A/A: %w", form, s.Label(), err)
					}
					cases = append(cases, benchmarks.Case{Name: ControlCaseName(s), Run: func() error { return benchmarks.Await(c.Exec(x, w, dy)) }})
				}
			}
			if torch != nil {
				request := fmt.Sprintf("product %s %d %d %d", productRequest[form], s.Tokens, s.In, s.Out)
				cases = append(cases, benchmarks.Case{Name: ProductCaseName(form, s, true), Timed: func() (time.Duration, error) { return torch.Call(request) }})
			}
		}
	}
	results, err := benchmarks.Interleave(cases, opt)
	if err != nil {
		return res, err
	}
	res.Results = results
	return res, nil
}

// productRequest is step_parts.py's name of each form.
var productRequest = map[string]string{ProductForward: "forward", ProductInput: "input", ProductWeight: "weight"}

// withForm runs f (which builds a graph) with dotgrad's form set to form, then restores it.
func withForm(form dotgrad.Form, f func() error) error {
	prev := dotgrad.CurrentForm()
	if err := dotgrad.SetForm(form); err != nil {
		return err
	}
	defer func() { _ = dotgrad.SetForm(prev) }()
	return f()
}
