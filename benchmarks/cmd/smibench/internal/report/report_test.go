package report

import (
	"strings"
	"testing"
	"time"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
	"github.com/smi-gomlx/smi/internal/gpt"
)

func samples(ms ...float64) benchmarks.Result {
	r := benchmarks.Result{Calls: 1}
	for _, m := range ms {
		r.Samples = append(r.Samples, time.Duration(m*float64(time.Millisecond)))
	}
	return r
}

func named(name string, r benchmarks.Result) benchmarks.Result { r.Name = name; return r }

// The report renders every section and states the goals' verdicts from the data given.
func TestReportWrite(t *testing.T) {
	cfg, err := gpt.Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	spec := benchmarks.FilterSpec{Label: "square", Dims: []int{64, 64}, Parts: true}
	var parts []benchmarks.Result
	for i, p := range append(append([]string{}, breakdownParts...), benchmarks.PartWhole) {
		parts = append(parts, named(p, samples(float64(i+1), float64(i+1))))
	}
	shapes := []benchmarks.ModelShape{{Dims: []int{64, 64}, Count: 2}}
	r := &Report{
		Command: "make bench",
		Env:     gptbench.Env{Date: time.Now()},
		Bandwidth: []benchmarks.BandwidthResult{
			{Op: benchmarks.StreamOps[0], Elems: 1 << 20, Time: samples(1, 1, 1)},
			{Op: benchmarks.StreamOps[1], Elems: 1 << 20, Time: samples(2, 2, 2)},
		},
		Sweep: []benchmarks.FilterResult{{Spec: spec, Results: parts}},
		Models: []ModelInfo{{Name: "cpu", Params: 8192, Shapes: shapes, Graph: []benchmarks.Result{named("full", samples(0.05, 0.05, 0.05)),
			named("half", samples(0.06, 0.06, 0.06)), named(GraphFFTs, samples(0.03, 0.03, 0.03))}}},
		Plugin:   &gptbench.PluginKernels{Path: "/p.so", FFTFloatLanes: []int{4}, EigenGEBP: [][2]int{{8, 4}}, EigenFloatPacketLanes: []int{4}, EigenOneDNN: true, XNNGemmISAs: []string{"avx512f", "fma3"}},
		CPUFlags: []string{"sse4_2", "avx", "avx2", "fma"},
		Parts: []gptbench.PartsResult{{Preset: "cpu", Config: cfg, Torch: &gptbench.TorchInfo{Version: "2.x", Threads: 2},
			Products: &gptbench.ProductsResult{Torch: true, Shapes: []gptbench.ProductShape{{Tokens: 768, In: 128, Out: 512, Count: 4}},
				Results: []benchmarks.Result{named(gptbench.ProductCaseName(gptbench.ProductForward, gptbench.ProductShape{In: 128, Out: 512}, false), samples(1, 1, 1)),
					named(gptbench.ProductCaseName(gptbench.ProductForward, gptbench.ProductShape{In: 128, Out: 512}, true), samples(1.5, 1.5, 1.5)),
					named(gptbench.ProductCaseName(gptbench.ProductInput, gptbench.ProductShape{In: 128, Out: 512}, false), samples(1, 1, 1)),
					named(gptbench.ProductCaseName(gptbench.ProductInput, gptbench.ProductShape{In: 128, Out: 512}, true), samples(1, 1, 1)),
					named(gptbench.ProductCaseName(gptbench.ProductWeight, gptbench.ProductShape{In: 128, Out: 512}, false), samples(2, 2, 2)),
					named(gptbench.ProductCaseName(gptbench.ProductWeight, gptbench.ProductShape{In: 128, Out: 512}, true), samples(1, 1, 1)),
					named(gptbench.MaterializedCaseName(gptbench.ProductInput, gptbench.ProductShape{In: 128, Out: 512}), samples(0.9, 0.9, 0.9)),
					named(gptbench.MaterializedCaseName(gptbench.ProductWeight, gptbench.ProductShape{In: 128, Out: 512}), samples(1.5, 1.5, 1.5)),
					named(gptbench.ControlCaseName(gptbench.ProductShape{In: 128, Out: 512}), samples(1.1, 1.1, 1.1))}},
			Results: []benchmarks.Result{named(gptbench.PartForward, samples(10, 10, 10)), named(gptbench.PartBackward, samples(40, 41, 39)),
				named(gptbench.PartStep, samples(44, 45, 43)), named(gptbench.PartSMIStep, samples(50, 50, 50)), named(gptbench.PartGoMLXGrads, samples(4400, 4500, 4300)),
				named(gptbench.PartMaterialized, samples(40, 41, 39)),
				named(gptbench.PartTorchForward, samples(11, 11, 11)), named(gptbench.PartTorchBack, samples(30, 30, 30)), named(gptbench.PartTorchStep, samples(33, 33, 33))}}},
		Steps: []gptbench.StepResult{{
			Preset: "cpu", Config: cfg, Params: 8192, Shapes: shapes,
			Results: []benchmarks.Result{named(gptbench.OptAdamW, samples(100, 100, 100)), named(gptbench.OptSMIAdamW, samples(103, 102, 104)),
				named(gptbench.OptSMIAdamWH, samples(120, 121, 119))},
			Memory: []gptbench.MemoryResult{{Opt: gptbench.OptAdamW, ParamBytes: 32768, StateBytes: 65536},
				{Opt: gptbench.OptSMIAdamW, ParamBytes: 32768, StateBytes: 65536 + 2*64*33*4}, {Opt: gptbench.OptSMIAdamWH, ParamBytes: 32768, StateBytes: 65536 + 2*64*33*4}},
		}},
	}
	var sb strings.Builder
	if err := r.Write(&sb, t.TempDir(), "plots"); err != nil {
		t.Fatal(err)
	}
	md := sb.String()
	for _, want := range []string{"## 1. Step overhead", "## 2. Filter alone", "## 3. Memory", "## 4. Scaling",
		"## 5. The limit", "| SMI(AdamW) step <= 1.05x AdamW on `cpu` (CPU) | 1.030x [1.020, 1.040] | **met** |",
		"| SMI(AdamW) half step <= 1.05x AdamW on `cpu` (CPU) | 1.200x [1.190, 1.210] | **not met** |",
		"| our `cpu` training tokens/s >= 1.2x nanoGPT's PyTorch step (same model, batch and cores) | 0.750x [0.733, 0.767] | **not met** |",
		"within 3x its least memory traffic (12 bytes per element at 4.2 GB/s) | 50 µs for 23.4 µs least: 2.1x | **met** |",
		"## 1b. The step by part", "| backward | 30 ms [29 ms, 31 ms] | 19 ms [19 ms, 19 ms] | 1.58x |",
		"| SMI | 6 ms [5 ms, 7 ms] | - | - |",
		"**Why, against PyTorch.** On `cpu` our AdamW step takes 44 ms and PyTorch's 33 ms (section 1b); the goal needs ours at 27.5 ms or less. By part, ours minus PyTorch's: forward -1 ms (10 ms against 11 ms); backward +11 ms (30 ms against 19 ms); optimizer +1 ms (4 ms against 3 ms). SMI adds +6 ms to ours. The dense layers' products alone, ours minus PyTorch's (section 1b), summed over the model's layers (each product times its number of layers), each the median of the rounds' paired differences, so not the difference of the columns' medians: weight gradients +4 ms, input gradients 0 µs, forward -2 ms.",
		"| weight gradient 128x512 | 4 | 2 ms | 50 | 1.5 ms | 0.750x [0.750, 0.750] | 1 ms | 101 | 2.000x [2.000, 2.000] |",
		"| forward 128x512 | 4 | 1 ms | 101 | - | - | 1.5 ms | 67 | 0.667x [0.667, 0.667] |",
		"The materialized form minus ours, summed over the model's layers (each product times its number of layers), each the median of the rounds' paired differences, so not the difference of the columns' medians: input gradients -400 µs, weight gradients -2 ms.",
		"Ours minus PyTorch's, summed over the model's layers (each product times its number of layers), each the median of the rounds' paired differences, so not the difference of the columns' medians: forward -2 ms; input gradient 0 µs; weight gradient +4 ms.",
		"A/A control (the input gradient compiled twice from the same graph and timed as two cases, paired as materialized / ours is; its interval should contain 1x): 128x512 1.100x [1.100, 1.100].",
		"takes 40 ms: 0.909x [0.907, 0.911] the step in dotgrad's default form",
		"| cpu | 8.2k | 2 | 14 ms | - | 50 µs | 60 µs | 30 µs | 6.1 ms |",
		"## 7. The XLA CPU plugin's kernels", "The 2-D real FFT of every gradient and its inverse alone, the least any exact filter computes, take 30 µs (0.0% of the step)", "float SIMD vectors of 4 lanes (128-bit): DUCC's native vector type",
		"Its widest vectors are 256 bits, but the FFTs run on 128-bit vectors, and Eigen packs the operands of the products given to it with 128-bit ones.",
		"| XNNPACK | the other matrix products, where XLA chooses it (this depends on the CPU: profile to know) | float GEMM micro-kernels for avx512f, fma3, chosen at run time for this CPU |", "takes 4.4 s: 100.000x [100.000, 100.000] the step",
		"SMI's extra memory on `cpu` is the history on the real-FFT bins only, both modes", "(0.5156x)", "**met**", "plots/step_overhead.svg"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// A part whose paired difference comes out negative (noise: the AdamW step measured faster than
// forward+backward alone) is written with its sign and without a ratio.
func TestReportNegativePart(t *testing.T) {
	cfg, err := gpt.Preset("cpu")
	if err != nil {
		t.Fatal(err)
	}
	r := &Report{Command: "make bench", Env: gptbench.Env{Date: time.Now()},
		Parts: []gptbench.PartsResult{{Preset: "cpu", Config: cfg, Torch: &gptbench.TorchInfo{Version: "2.x", Threads: 2},
			Results: []benchmarks.Result{named(gptbench.PartForward, samples(10, 10, 10)), named(gptbench.PartBackward, samples(40, 40, 40)),
				named(gptbench.PartStep, samples(37, 37, 37)), named(gptbench.PartSMIStep, samples(50, 50, 50)),
				named(gptbench.PartTorchForward, samples(11, 11, 11)), named(gptbench.PartTorchBack, samples(30, 30, 30)), named(gptbench.PartTorchStep, samples(33, 33, 33))}}},
	}
	var sb strings.Builder
	if err := r.Write(&sb, t.TempDir(), "plots"); err != nil {
		t.Fatal(err)
	}
	md := sb.String()
	for _, want := range []string{"| optimizer | -3 ms [-3 ms, -3 ms] | 3 ms [3 ms, 3 ms] | - |", "optimizer -6 ms (-3 ms against 3 ms)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}
