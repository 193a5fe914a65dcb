package gptbench

import (
	"testing"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
	"github.com/smi-gomlx/smi/spectral"
)

// TestStepProgram checks StepProgram's counts on the cpu preset (4 layers; its 7 shape classes
// are all under the CPU batch limit, so both limits stack them): AdamW has no FFT, every SMI
// strategy one forward and one inverse FFT per shape class; compare counting and q = 0 add no
// scatter to AdamW's (the embedding's gradient), scatter counting adds its histograms; only
// compare counting gathers; SMI adds nodes and reductions. Auto counts as the backend's
// platform does (spectral.CountingFor), so the test holds on every backend.
func TestStepProgram(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	cfg, err := gpt.Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	base, err := StepProgram(b, cfg, OptAdamW)
	if err != nil {
		t.Fatal(err)
	}
	if base.FFTs != 0 || base.Gathers != 0 || base.Reductions == 0 || base.Nodes == 0 {
		t.Errorf("AdamW: %+v, want no FFT or gather, some reductions", base)
	}
	const classes = 7 // wte, wpe, the 4 kinds of matrices of a layer, the layer norms' gains
	for _, s := range benchmarks.Strategies {
		p, err := StepProgram(b, cfg, StrategyOpt(s))
		if err != nil {
			t.Fatal(err)
		}
		if p.FFTs != 2*classes {
			t.Errorf("%s: %d FFTs, want %d", p.Name, p.FFTs, 2*classes)
		}
		counting := s.Counting
		if counting == spectral.CountingAuto {
			counting = spectral.CountingFor(b)
		}
		wantScatter := !s.NoQuantile && counting == spectral.CountingScatter
		if scatters := p.Scatters > base.Scatters; scatters != wantScatter {
			t.Errorf("%s: %d scatters against AdamW's %d", p.Name, p.Scatters, base.Scatters)
		}
		if gathers := p.Gathers > 0; gathers != (!s.NoQuantile && counting == spectral.CountingCompare) {
			t.Errorf("%s: %d gathers", p.Name, p.Gathers)
		}
		if p.Nodes <= base.Nodes || p.Reductions <= base.Reductions {
			t.Errorf("%s: %+v, not more than AdamW's %+v", p.Name, p, base)
		}
	}
	if _, err := StepProgram(b, cfg, "SGD"); err == nil {
		t.Error("StepProgram(SGD): no error for an unknown configuration")
	}
}
