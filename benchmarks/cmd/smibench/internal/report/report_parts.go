package report

import (
	"fmt"
	"math"
	"time"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
)

// TorchGoal is our goal for the GPT's training speed on the `cpu` preset: tokens per second at
// least this many times nanoGPT's PyTorch step on the same cores (same model and batch, so the
// ratio of tokens per second is PyTorch's step time over ours).
const TorchGoal = 1.2

// FilterTrafficGoal bounds the whole filter's time by this many times its least memory traffic
// (FilterParts' PartWhole bytes per element) at the read+write bandwidth of section 5.
const FilterTrafficGoal = 3.0

func (r *Report) parts(preset string) (gptbench.PartsResult, bool) {
	for _, s := range r.Parts {
		if s.Preset == preset {
			return s, true
		}
	}
	return gptbench.PartsResult{}, false
}

// torchSpeedRatio is PyTorch's AdamW step over ours, round by round: our tokens per second as
// a multiple of PyTorch's.
func (r *Report) torchSpeedRatio(preset string) (benchmarks.Ratio, bool) {
	s, ok := r.parts(preset)
	if !ok || s.Torch == nil {
		return benchmarks.Ratio{}, false
	}
	ours, okO := s.Time(gptbench.PartStep)
	torch, okT := s.Time(gptbench.PartTorchStep)
	if !okO || !okT {
		return benchmarks.Ratio{}, false
	}
	return benchmarks.PairedRatio(ours, torch), true
}

// speedVerdict compares a ratio with a goal where higher is better.
func speedVerdict(r benchmarks.Ratio, goal float64) string {
	switch {
	case math.IsNaN(r.Median):
		return "not measured"
	case r.Lo >= goal:
		return "**met**"
	case r.Median >= goal:
		return "met by the median (interval reaches below)"
	case r.Hi >= goal:
		return "not met by the median (interval reaches above)"
	default:
		return "**not met**"
	}
}

// writeSpeedGoals adds the goal rows of the step's speed against PyTorch and of the filter
// against its memory traffic.
func (r *Report) writeSpeedGoals(p printer) {
	if ratio, ok := r.torchSpeedRatio("cpu"); ok {
		p("| our `cpu` training tokens/s >= %.1fx nanoGPT's PyTorch step (same model, batch and cores) | %s | %s |\n",
			TorchGoal, ratio, speedVerdict(ratio, TorchGoal))
	} else {
		p("| our `cpu` training tokens/s >= %.1fx nanoGPT's PyTorch step | not measured in this run (PyTorch not given: `make reference` installs it, then `make bench`) | - |\n", TorchGoal)
	}
	_, rw := r.refBandwidth()
	if rw == 0 {
		return
	}
	whole := benchmarks.FilterParts[len(benchmarks.FilterParts)-1]
	for _, m := range r.Models {
		if m.Name != "cpu" && m.Name != "paper" {
			continue
		}
		t, ok := m.graphTime(false)
		if !ok {
			continue
		}
		least := time.Duration(whole.BytesPerElement * float64(m.Params) / rw * float64(time.Second))
		x := t.Median().Seconds() / least.Seconds()
		v := "**met**"
		if x > FilterTrafficGoal {
			v = "**not met**"
			if ffts, ok := m.fftTime(); ok {
				fx := ffts.Median().Seconds() / least.Seconds()
				v += fmt.Sprintf("; the two FFTs alone take %.1fx", fx)
				if fx > FilterTrafficGoal {
					v += ", so no exact filter on XLA CPU's FFT can meet it"
				}
			}
		}
		p("| the filter of `%s`'s variables (one graph, full spectrum) within %.0fx its least memory traffic (%.0f bytes per element at %.1f GB/s) | %s for %s least: %.1fx | %s |\n",
			m.Name, FilterTrafficGoal, whole.BytesPerElement, rw/1e9, gptbench.HumanDuration(t.Median()), gptbench.HumanDuration(least), x, v)
	}
}

// writeParts is the section on the step's parts, ours beside PyTorch's.
func (r *Report) writeParts(p printer) {
	if len(r.Parts) == 0 {
		p("Not measured in this run.\n")
		return
	}
	p("The training step split into its parts by timing, interleaved in the same rounds: the loss alone " +
		"(forward), the loss and all gradients (forward+backward; the gradients reduced to their global " +
		"norm so none is left out), the AdamW step of section 1 and the SMI(AdamW) step. Each part is the " +
		"paired difference of two of them, round by round: backward = forward+backward - forward, " +
		"optimizer (global-norm clip and AdamW) = AdamW step - forward+backward, SMI = SMI(AdamW) step - " +
		"AdamW step. PyTorch's side is nanoGPT's model and `torch.optim.AdamW` at the same size and batch " +
		"(`scripts/reference/step_parts.py`, a separate process that times each call itself and answers " +
		"between ours, so both run on the same cores in the same rounds), without SMI. Each sample starts " +
		"with one untimed call of its case, after a pause in which the other side's threads go to sleep, so " +
		"both sides are timed warm, as in their own training loops.\n\n")
	for _, s := range r.Parts {
		torch := "not measured (no PyTorch given)"
		if s.Torch != nil {
			torch = fmt.Sprintf("PyTorch %s, %d threads", s.Torch.Version, s.Torch.Threads)
		}
		p("**`%s`** (%d x %d tokens per step; %s; %d rounds):\n\n", s.Preset, s.Config.BatchSize, s.Config.BlockSize,
			torch, len(s.Results[0].Samples))
		p("| part | ours [95%% CI] | PyTorch [95%% CI] | ours / PyTorch |\n|---|---:|---:|---:|\n")
		for _, part := range gptbench.StepParts(s) {
			ours := fmt.Sprintf("%s [%s, %s]", signedDuration(part.Ours.Median), signedDuration(part.Ours.Lo), signedDuration(part.Ours.Hi))
			tv, ratio := "-", "-"
			if part.Torch.N > 0 {
				tv = fmt.Sprintf("%s [%s, %s]", signedDuration(part.Torch.Median), signedDuration(part.Torch.Lo), signedDuration(part.Torch.Hi))
				// A part is a difference of two timings; a median at or below zero is noise, and so
				// would be its ratio.
				if part.Torch.Median > 0 && part.Ours.Median > 0 {
					ratio = fmt.Sprintf("%.2fx", part.Ours.Median.Seconds()/part.Torch.Median.Seconds())
				}
			}
			p("| %s | %s | %s | %s |\n", part.Name, ours, tv, ratio)
		}
		if slow, ok := s.Time(gptbench.PartGoMLXGrads); ok {
			fast, _ := s.Time(gptbench.PartStep)
			p("\nThe AdamW step compiled with GoMLX v0.26's own gradients of matrix products (package `dotgrad` "+
				"disabled) takes %s: %s the step with `dotgrad.Enable()`.\n", gptbench.HumanDuration(slow.Median()), benchmarks.PairedRatio(fast, slow))
		}
		if m, ok := s.Time(gptbench.PartMaterialized); ok {
			def, _ := s.Time(gptbench.PartStep)
			p("\nThe AdamW step compiled with `dotgrad.SetForm(dotgrad.Materialized)` (the gradient products' "+
				"transposed operands copied into their transposed layout first; below) takes %s: %s the step in "+
				"dotgrad's default form (below 1x: faster).\n", gptbench.HumanDuration(m.Median()), benchmarks.PairedRatio(def, m))
		}
		p("\n")
		if s.Products != nil {
			writeProducts(p, s)
		}
	}
}

// writeProducts is the table of the dense layers' matrix products, ours beside PyTorch's.
func writeProducts(p printer, s gptbench.PartsResult) {
	pr := s.Products
	p("**The dense layers' matrix products** of `%s`, each timed alone in interleaved rounds: a layer "+
		"y = x·W on %d tokens computes x·W forward, and in the backward pass the input gradient dy·Wᵀ and the "+
		"weight gradient xᵀ·dy (ours: the layer's `Dot` and package `dotgrad`'s gradients of it, compiled by "+
		"XLA as in the training step", s.Preset, s.Config.BatchSize*s.Config.BlockSize)
	if pr.Torch {
		p("; PyTorch's: the products `nn.Linear` computes, x·W'ᵀ, dy·W' and dyᵀ·x with W' = Wᵀ, in its process")
	}
	p("). Both gradients need an operand transposed (the weight gradient its left one). \"Ours\" is " +
		"dotgrad's default form, which leaves the transposition to XLA: XLA folds it into the product's " +
		"dimension numbers, and the product library reads that operand in transposed order. \"Materialized\" " +
		"(`dotgrad.SetForm(dotgrad.Materialized)`) copies the operand into its transposed layout first, so that " +
		"each product has the standard form [m, k]·[k, n]; its time includes the copy, and its ratio is over ours " +
		"(below 1x: faster).\n\n")
	p("| product | layers | ours | ours GFLOP/s | materialized | materialized / ours | PyTorch | PyTorch GFLOP/s | ours / PyTorch |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sh := range pr.Shapes {
		for _, form := range gptbench.ProductForms {
			ours, ok := pr.Time(form, sh, false)
			if !ok {
				continue
			}
			mt, mr := "-", "-"
			if m, ok := pr.Materialized(form, sh); ok {
				mt, mr = gptbench.HumanDuration(m.Median()), benchmarks.PairedRatio(ours, m).String()
			}
			tt, tg, ratio := "-", "-", "-"
			if t, ok := pr.Time(form, sh, true); ok {
				tt, tg = gptbench.HumanDuration(t.Median()), fmt.Sprintf("%.0f", sh.Flops()/t.Median().Seconds()/1e9)
				ratio = benchmarks.PairedRatio(t, ours).String()
			}
			p("| %s %s | %d | %s | %.0f | %s | %s | %s | %s | %s |\n", form, sh.Label(), sh.Count, gptbench.HumanDuration(ours.Median()),
				sh.Flops()/ours.Median().Seconds()/1e9, mt, mr, tt, tg, ratio)
		}
	}
	sep := "\nA/A control (the " + gptbench.ControlForm + " compiled twice from the same graph and timed as two cases, paired " +
		"as materialized / ours is; its interval should contain 1x): "
	for _, sh := range pr.Shapes {
		ours, okO := pr.Time(gptbench.ControlForm, sh, false)
		c, okC := pr.Control(sh)
		if okO && okC {
			p("%s%s %s", sep, sh.Label(), benchmarks.PairedRatio(ours, c))
			sep = "; "
		}
	}
	if sep == "; " {
		p(".\n")
	}
	p("\nThe materialized form minus ours, %s: input gradients %s, weight gradients %s.\n", layersSum,
		plusDuration(materializedGap(pr, gptbench.ProductInput)), plusDuration(materializedGap(pr, gptbench.ProductWeight)))
	if pr.Torch {
		p("\nOurs minus PyTorch's, %s:", layersSum)
		sep := " "
		for _, form := range gptbench.ProductForms {
			p("%s%s %s", sep, form, plusDuration(productsGap(pr, form)))
			sep = "; "
		}
		p(".\n")
	}
	p("\n")
}

// layersSum says what materializedGap and productsGap give, for the sentences that state them: a
// sum of medians of paired differences, which need not equal the difference of the table's
// columns, each a median of one case's times.
const layersSum = "summed over the model's layers (each product times its number of layers), each the median of " +
	"the rounds' paired differences, so not the difference of the columns' medians"

// materializedGap is, summed over the model's layers, the median of the materialized form minus
// ours for a gradient form.
func materializedGap(pr *gptbench.ProductsResult, form string) time.Duration {
	var gap time.Duration
	for _, sh := range pr.Shapes {
		ours, okO := pr.Time(form, sh, false)
		m, okM := pr.Materialized(form, sh)
		if okO && okM {
			gap += time.Duration(sh.Count) * benchmarks.PairedDiff(ours, m).Median
		}
	}
	return gap
}

// productsGap is, summed over the model's layers, the median of ours minus PyTorch's for a form.
func productsGap(pr *gptbench.ProductsResult, form string) time.Duration {
	var gap time.Duration
	for _, sh := range pr.Shapes {
		ours, okO := pr.Time(form, sh, false)
		torch, okT := pr.Time(form, sh, true)
		if okO && okT {
			gap += time.Duration(sh.Count) * benchmarks.PairedDiff(torch, ours).Median
		}
	}
	return gap
}

// writeSpeedWhy explains the goal against PyTorch from the parts: which part the difference
// between the two steps is in.
func (r *Report) writeSpeedWhy(p printer) {
	s, ok := r.parts("cpu")
	if !ok || s.Torch == nil {
		return
	}
	parts := gptbench.StepParts(s)
	var step gptbench.StepPart
	for _, part := range parts {
		if part.Name == "step" {
			step = part
		}
	}
	p("\n**Why, against PyTorch.** On `cpu` our AdamW step takes %s and PyTorch's %s (section 1b); the goal "+
		"needs ours at %s or less. By part, ours minus PyTorch's:", gptbench.HumanDuration(step.Ours.Median),
		gptbench.HumanDuration(step.Torch.Median), gptbench.HumanDuration(time.Duration(float64(step.Torch.Median)/TorchGoal)))
	sep := " "
	for _, part := range parts {
		if part.Name == "step" || part.Torch.N == 0 {
			continue
		}
		p("%s%s %s (%s against %s)", sep, part.Name, plusDuration(part.Ours.Median-part.Torch.Median),
			signedDuration(part.Ours.Median), signedDuration(part.Torch.Median))
		sep = "; "
	}
	for _, part := range parts {
		if part.Name == "SMI" {
			p(". SMI adds %s to ours", plusDuration(part.Ours.Median))
		}
	}
	if pr := s.Products; pr != nil && pr.Torch {
		p(". The dense layers' products alone, ours minus PyTorch's (section 1b), %s: weight "+
			"gradients %s, input gradients %s, forward %s", layersSum, plusDuration(productsGap(pr, gptbench.ProductWeight)),
			plusDuration(productsGap(pr, gptbench.ProductInput)), plusDuration(productsGap(pr, gptbench.ProductForward)))
	}
	p(".\n")
}

// plusDuration is signedDuration with a plus sign on positive differences.
func plusDuration(d time.Duration) string {
	if d > 0 {
		return "+" + gptbench.HumanDuration(d)
	}
	return signedDuration(d)
}
