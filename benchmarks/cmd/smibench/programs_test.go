package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/platform"
)

// compiledHLO returns an optimized program's text whose entry launches the given fusions (each
// of kind kLoop on a f32[1024] operand) and, with fft, one FFT.
func compiledHLO(loops int, fft bool) string {
	var b strings.Builder
	b.WriteString("HloModule m\n\nENTRY %main (p: f32[1024]) -> f32[1024] {\n  %p = f32[1024]{0} parameter(0)\n")
	for i := range loops {
		b.WriteString("  %loop_fusion." + string(rune('a'+i)) + " = f32[1024]{0} fusion(%p), kind=kLoop, calls=%f\n")
	}
	if fft {
		b.WriteString("  %fft.1 = c64[513]{0} fft(%p), fft_type=RFFT, fft_length={1024}\n")
	}
	b.WriteString("  ROOT %t = (f32[1024]{0}) tuple(%p)\n}\n")
	return b.String()
}

func TestSummarizePrograms(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	man := programManifest{Device: "NVIDIA H100 80GB HBM3", Plugin: "xla_cuda_plugin.so of jax-cuda13-pjrt 0.11.2", Jaxlib: "0.10.2",
		Programs: []programEntry{
			{Preset: "tiny", Name: "AdamW", Compiled: write("a.txt", compiledHLO(2, false)), Seconds: 1.5},
			{Preset: "tiny", Name: "SMI(AdamW) [auto, auto limit]", Compiled: write("b.txt", compiledHLO(3, true)), Seconds: 2.5},
		}}
	rep, err := summarizePrograms(man, "a CPU", "abc")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Records) != 2 || rep.Kind != gpuProgramsKind || rep.Device != man.Device || rep.Revision != "abc" {
		t.Fatalf("report %+v", rep)
	}
	smi := rep.Records[1]
	if smi.Kernels != 4 || smi.Elementwise != 3 || smi.Other != 0 || smi.FFT != 1 || smi.CompileSeconds != 2.5 || smi.Bytes != 3*8192+4096+513*8 {
		t.Errorf("SMI's record %+v", smi)
	}

	// The report renders with each SMI program's kernels beyond AdamW's.
	var buf bytes.Buffer
	raw, err := jsonBytes(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !isGPUProgramReport(raw) {
		t.Fatal("isGPUProgramReport: false for a GPU-program report")
	}
	if isGPUProgramReport([]byte(`{"backend": "x", "records": []}`)) {
		t.Error("isGPUProgramReport: true for a strategies report")
	}
	if err := writeGPUPrograms(&buf, raw, "docs/benchmarks/p.json", "docs/B.md"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "XLA_FLAGS") {
		t.Errorf("the section names XLA flags, and the compilation had none:\n%s", buf.String())
	}
	rep.Options = "--xla_gpu_deterministic_ops=true"
	withFlags, err := jsonBytes(rep)
	if err != nil {
		t.Fatal(err)
	}
	var flagged bytes.Buffer
	if err := writeGPUPrograms(&flagged, withFlags, "p.json", "B.md"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flagged.String(), "XLA_FLAGS of the compilation: `--xla_gpu_deterministic_ops=true`") {
		t.Errorf("the section does not name the compilation's XLA flags:\n%s", flagged.String())
	}
	for _, want := range []string{"NVIDIA H100 80GB HBM3", "| tiny | SMI(AdamW) [auto, auto limit] | 4 | 3 | 0 | 0 | 0 | 1 | 0 | 4 |",
		"| +2 | +16.01 KiB", "[p.json](benchmarks/p.json)", "`auto` is SMI's default on a GPU"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the section lacks %q:\n%s", want, buf.String())
		}
	}

	// Every failure of the compile step is reported by program.
	for want, change := range map[string]func(*programManifest){
		"XLA could not compile it for NVIDIA H100 80GB HBM3: INTERNAL: ptxas": func(m *programManifest) { m.Programs[1].Error = "INTERNAL: ptxas" },
		"tiny AdamW: open":                 func(m *programManifest) { m.Programs[0].Compiled = filepath.Join(dir, "missing.txt") },
		"no ENTRY computation":             func(m *programManifest) { m.Programs[0].Compiled = write("bad.txt", "HloModule m\n") },
		"did not say which GPU and plugin": func(m *programManifest) { m.Plugin = "" },
	} {
		m := man
		m.Programs = append([]programEntry(nil), man.Programs...)
		change(&m)
		if _, err := summarizePrograms(m, "a CPU", "abc"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error containing %q", err, want)
		}
	}
}

// TestExportPrograms exports the tiny preset's programs as built for CUDA, in a process of its
// own: XLA reads its dump flags once per process, when the first backend is created.
func TestExportPrograms(t *testing.T) {
	if os.Getenv("SMI_EXPORT_PROGRAMS_CHILD") != "1" {
		if testing.Short() {
			t.Skip("compiles two training steps (-short)")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestExportPrograms$", "-test.v")
		cmd.Env = append(os.Environ(), "SMI_EXPORT_PROGRAMS_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestExportPrograms") {
			t.Fatalf("the child did not pass:\n%s", out)
		}
		return
	}
	dir := t.TempDir()
	dump := filepath.Join(dir, "dump")
	if err := os.Setenv("XLA_FLAGS", dumpFlags(os.Getenv("XLA_FLAGS"), dump)); err != nil {
		t.Fatal(err)
	}
	host, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	b := cudaDescribed(host)
	if platform.Name(b.Description()) != "cuda" {
		t.Fatalf("the described backend %q does not read as CUDA", b.Description())
	}
	auto, _ := benchmarks.StrategyByID("auto")
	programs, err := exportPrograms(b, []string{"tiny"}, []benchmarks.Strategy{auto}, dump, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(programs) != 2 || programs[0].Name != "AdamW" || programs[1].Name != "SMI(AdamW) [auto, auto limit]" {
		t.Fatalf("programs %+v", programs)
	}
	for _, p := range programs {
		data, err := os.ReadFile(p.HLO)
		if err != nil {
			t.Fatal(err)
		}
		// An HloProto: field 1 (the module), length-delimited, holding the module's name.
		if len(data) < 100 || data[0] != 0x0a || !bytes.Contains(data, []byte("Trainer")) {
			t.Errorf("%s: %d bytes, not a training step's HloProto", p.HLO, len(data))
		}
		if !strings.HasSuffix(p.Compiled, ".gpu.txt") || filepath.Dir(p.Compiled) != dir {
			t.Errorf("compiled program's path %q", p.Compiled)
		}
	}
}
