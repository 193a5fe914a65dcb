package main

import (
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/report"
	"github.com/smi-gomlx/smi/internal/backend"
)

// TestPartsWithoutWorkingPyTorch: a -pytorch that cannot start costs section 1b its PyTorch
// column, with a note saying why, not the report.
func TestPartsWithoutWorkingPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("times the tiny preset's step parts")
	}
	b, err := backend.New()
	if err != nil {
		t.Skip(err)
	}
	r := &report.Report{Rounds: map[string]string{}}
	s := partsSection{presets: []string{"tiny"}, python: "/nonexistent/python", script: "scripts/reference/step_parts.py"}
	if err := s.measure(r, b, true); err != nil {
		t.Fatalf("measure with a broken -pytorch: %v, want ours timed alone", err)
	}
	if len(r.Parts) != 1 || r.Parts[0].Torch != nil {
		t.Fatalf("got %d parts results (PyTorch's side %v), want one without PyTorch", len(r.Parts), r.Parts)
	}
	if pr := r.Parts[0].Products; pr == nil || pr.Torch || len(pr.Results) != 6*len(pr.Shapes) || len(pr.Shapes) == 0 {
		t.Errorf("products %+v, want ours alone, per dense-layer shape three forms, the two gradients materialized and the input gradient's A/A twin", pr)
	}
	if _, ok := r.Parts[0].Time(gptbench.PartMaterialized); !ok {
		t.Errorf("no %q case", gptbench.PartMaterialized)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "/nonexistent/python") || !strings.Contains(r.Notes[0], "no such file") {
		t.Errorf("notes %q, want one naming the Python and why it failed", r.Notes)
	}
}
