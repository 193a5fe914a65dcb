package study

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// TestVerdictClassifier: every class on made-up intervals, with the boundaries: the paper's
// value exactly on a bound, an interval touching 0, claims of a decrease.
func TestVerdictClassifier(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		lo, hi, paper float64
		want          string
	}{
		// The three: significant, the paper's direction, the paper's value far outside.
		{14.1, 23.7, 4.5, verdictDirection},
		{-3.1, -0.3, -43.5, verdictDirection},
		{-2.4, -1.7, -8.8, verdictDirection},
		{1, 3, 15, verdictDirection}, // smaller than the paper's
		{20, 30, 15, verdictDirection},
		// Inside.
		{1, 10, 5, verdictReproduced},
		{-50, -30, -43.5, verdictReproduced},
		// The paper's value exactly on a bound counts as inside.
		{4.5, 9, 4.5, verdictReproduced},
		{1, 4.5, 4.5, verdictReproduced},
		{-8.8, -2, -8.8, verdictReproduced},
		{-20, -8.8, -8.8, verdictReproduced},
		// Containing 0, touching it included: not detected, whichever side the paper is on.
		{-1.6, 4.2, 15, verdictNotDetected},
		{-38.1, 34.4, -18.1, verdictNotDetected},
		{0, 5, 4.5, verdictNotDetected},
		{-5, 0, -4.5, verdictNotDetected},
		{0, 5, -3, verdictNotDetected},
		{-5, 0, 3, verdictNotDetected},
		{0, 0, 3, verdictNotDetected},
		// Significant the other way.
		{-9.8, -6.1, 33.3, verdictOpposite},
		{0.1, 0.2, -6.4, verdictOpposite},
		{-9.8, -6.1, -33.3, verdictDirection},
		// Bounds given in either order.
		{23.7, 14.1, 4.5, verdictDirection},
		{10, 1, 5, verdictReproduced},
		// Nothing to judge.
		{nan, nan, 5, verdictScale},
		{1, 2, 0, verdictScale},
		{1, 2, nan, verdictScale},
	} {
		if got := classify(tc.lo, tc.hi, tc.paper); got != tc.want {
			t.Errorf("classify(%g, %g, paper %g) = %q, want %q", tc.lo, tc.hi, tc.paper, got, tc.want)
		}
	}
	// A reproduced claim always has the paper's value inside the interval and 0 outside it.
	for lo := -10.0; lo <= 10; lo += 0.5 {
		for hi := lo; hi <= 10; hi += 0.5 {
			for _, paper := range []float64{-7, -4.5, -0.5, 0.5, 4.5, 7} {
				v := classify(lo, hi, paper)
				if v == verdictReproduced && (paper < lo || paper > hi || (lo <= 0 && hi >= 0)) {
					t.Fatalf("classify(%g, %g, %g) = reproduced", lo, hi, paper)
				}
				if (v == verdictDirection || v == verdictOpposite) && lo <= 0 && hi >= 0 {
					t.Fatalf("classify(%g, %g, %g) = %s with 0 inside", lo, hi, paper, v)
				}
			}
		}
	}

	// The sentence says both sizes.
	c := comparison{run: 5, n: 10, pairs: "interleaved rounds", pct: 18.9, pctLo: 14.1, pctHi: 23.7, pT: 1e-5, mdePct: 6.7}
	v, why := verdict(c, 4.5, measure{name: "seconds per training step"}, true)
	if v != verdictDirection || !strings.Contains(why, "Ours +18.9%, paper +4.5%") || !strings.Contains(why, "larger than the paper's") {
		t.Errorf("verdict: %q, %q", v, why)
	}
	c = comparison{run: 5, n: 5, pairs: "seeds", pct: 1.3, pctLo: -1.6, pctHi: 4.2, pT: 0.28, mdePct: 3.9}
	if v, why := verdict(c, 15, measureSpeed, true); v != verdictNotDetected || !strings.Contains(why, "ruled out") {
		t.Errorf("verdict: %q, %q", v, why)
	}
	if v, _ := verdict(comparison{run: 5, n: 1, pairs: "seeds", pctLo: nan, pctHi: nan}, 15, measureSpeed, true); v != verdictScale {
		t.Errorf("one pair: %q", v)
	}
	for _, c := range (&studyData{}).claims() {
		if c.paperPct == 0 {
			t.Errorf("claim %q has no direction", c.text)
		}
	}
}

// fakeRun is a made-up run of the preset's recipe: its loss curve falls with the seed's noise;
// SMI (run 5) lowers the loss by effect and the variance of parameter magnitudes by 9%.
func fakeRun(preset, backend string, run int, seed int64, effect float64) (results.Metrics, results.Analysis) {
	cfg, err := gpt.Preset(preset)
	if err != nil {
		panic(err)
	}
	rng := uint64(seed)*2654435761 + 12345
	noise := func() float64 {
		rng = rng*6364136223846793005 + 1442695040888963407
		return float64(rng>>11)/float64(1<<53) - 0.5
	}
	sign := 0.0
	if run != 0 {
		sign = 1
	}
	loss := make([]float64, cfg.MaxIters)
	for i := range loss {
		loss[i] = 0.9 + 3*math.Exp(-float64(i)/60) + 0.05*noise() - sign*effect*float64(i)/float64(cfg.MaxIters)
		if i == 0 {
			loss[i] = 4.2 + 0.01*float64(seed%7) // the first batch and weights: the seed's alone
		}
	}
	final := loss[len(loss)-1]
	v, n := results.FinalVariance(loss)
	m := results.Metrics{Preset: preset, Run: run, RunName: results.Runs[run].Name, Seed: seed, Config: cfg, Params: 12345, Backend: backend,
		Machine: results.Machine{Host: "test", OS: "linux", Arch: "amd64", CPUs: 2, CPU: "Made-up CPU"}, FinishedUTC: "2026-12-04T00:00:00Z",
		FinalTrainLoss: final, FinalValLoss: final + 0.1 + 0.01*noise(), BestValLoss: final + 0.09, TrainSeconds: 10 + noise(),
		IterLoss: loss, Evals: []results.Eval{{Iter: 0, Train: 4.2, Val: 4.2}, {Iter: cfg.MaxIters, Train: final, Val: final + 0.1}},
		FinalLossVariance: results.Optional(v), VarianceWindow: n}
	a := results.Analysis{Preset: preset, Run: run, Seed: seed, SpectralNormVarianceAcrossLayers: 0.08 + 0.01*noise(), ConditionNumberGeoMean: 50 + noise(),
		ParamMagnitudeVariance: 4e-4 * (1 - 0.09*sign) * (1 + 0.001*noise()), ActiveFraction: 0.91, MLPSparsity: 0.05, AttentionSparsity: 0.55}
	return m, a
}

// fakeStudy publishes made-up runs x seeds of preset, trained on backend, in dir as the study
// does (study.json, runs/<name>/metrics.json and analysis.json, speed.json, steps.json).
func fakeStudy(t testing.TB, dir, preset, backend string, runList []int, seeds []int64, effect float64) {
	t.Helper()
	sf := studyFile{Preset: preset, Runs: runList, Seeds: seeds, Invocations: []invocation{{Command: "shakespeare study (made up)", Revision: "abc123",
		Machine: results.Machine{Host: "test", CPUs: 2, CPU: "Made-up CPU"}, Backend: backend, Started: "2026-12-04T00:00:00Z", Updated: "2026-12-04T01:00:00Z", Seconds: 3600}}}
	speed := speedFile{Tokens: 10, Reps: 3, Backend: backend, Date: "2026-12-04T01:00:00Z", Rates: map[string][]float64{}}
	steps := stepFile{StepsPerRound: 2, Rounds: 4, Backend: backend, Date: "2026-12-04T01:00:00Z", Seconds: map[string][]float64{}}
	for _, seed := range seeds {
		for _, run := range runList {
			name := fmt.Sprintf("%s-run%d-seed%d", preset, run, seed)
			sf.Invocations[0].Trained = append(sf.Invocations[0].Trained, name)
			m, a := fakeRun(preset, backend, run, seed, effect)
			write := func(file string, v any, prov *provenance) {
				raw, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				out, err := publishedForm(raw, droppedFields, prov)
				if err != nil {
					t.Fatal(err)
				}
				if err := writePublished(filepath.Join(dir, "runs", name, file), out); err != nil {
					t.Fatal(err)
				}
			}
			write("metrics.json", m, runProvenance(&sf, name, false))
			write("analysis.json", a, nil)
			speed.Rates[name] = []float64{400 + float64(run), 401 + float64(run), 399 + float64(run)}
		}
	}
	for _, run := range runList {
		steps.Seconds[fmt.Sprintf("run%d", run)] = []float64{0.10 + 0.01*float64(run), 0.11 + 0.01*float64(run), 0.10 + 0.01*float64(run), 0.12 + 0.01*float64(run)}
	}
	for name, v := range map[string]any{"study.json": sf, "speed.json": speed, "steps.json": steps} {
		if err := results.WriteJSON(filepath.Join(dir, name), v); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	fakeCPU  = "xla:/home/u/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so - PJRT plugin (/home/u/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81 [StableHLO] [2 device(s)]"
	fakeCUDA = "xla:cuda - PJRT plugin (/opt/pjrt/pjrt_c_api_cuda_plugin.so) v0.81 [StableHLO] [1 device(s)]"
)

// TestReproductionMerge: a study done in pieces (two folders of cpu-backend runs, one of GPU
// runs of the same preset and seeds) merges into one report; the GPU runs form their own
// section, never paired with the CPU ones; the paper preset's section appears when its files
// do, and is announced as still to be measured before.
func TestReproductionMerge(t *testing.T) {
	root := t.TempDir()
	pieces := filepath.Join(root, "docs", "reproduction")
	a := filepath.Join(pieces, "cpu", "cpu-runs0_5-seeds1_2")
	b := filepath.Join(root, "elsewhere", "cpu-runs0_5-seeds3") // a folder outside docs/reproduction
	gpu := filepath.Join(pieces, "cpu", "cuda-runs0_5-seeds1")
	fakeStudy(t, a, "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	fakeStudy(t, b, "cpu", fakeCPU, []int{0, 5}, []int64{3}, 0.05)
	fakeStudy(t, gpu, "cpu", fakeCUDA, []int{0, 5}, []int64{1}, 0.05)
	report := filepath.Join(root, "docs", "REPRODUCTION.md")

	// Through the study command, as `make study REPORT_ONLY=1 STUDY_FLAGS=-from=...` runs it.
	if err := Command([]string{"-report_only", "-from", pieces + "," + b, "-report", report}, nil); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	md := string(raw)
	for _, want := range []string{
		"## The `cpu` preset on CPU (XLA's CPU plugin)", "## The `cpu` preset on NVIDIA GPU (XLA's CUDA plugin)",
		"runs 0, 5 x seeds 1, 2, 3; 6 runs with usable metrics, from `reproduction/cpu/cpu-runs0_5-seeds1_2/`, `../elsewhere/cpu-runs0_5-seeds3/`",
		"| **5** | 3 |", // run 5 against run 0 over the 3 seeds of both CPU folders
		"| Lower variance of parameter magnitudes | `cpu` (12k params, CPU) | 5 | -9.0% (-9.0 to -9.0) | 8.8% lower | ",
		"| Lower variance of parameter magnitudes | `cpu` (12k params, GPU) | 5 | -9.0% | 8.8% lower | n/a | **not measurable here** | Both runs are measured for only 1 of the seeds",
		"Checked across backends: the `cpu` preset's first-iteration loss on cpu and on cuda, same run and seed: 2 of 2 identical",
		"| every claim | `paper` (10.7M params, GPU) | | | | | **still to be measured on a GPU** |",
		"## The `paper` preset\n\nStill to be measured on a GPU.",
		"| cpu | runs 0, 5 x seeds 1, 2 | test, 2 CPUs (Made-up CPU, linux/amd64) | none | " + fakeCPU + " | yes (XLA CPU) | abc123 |",
		"| cpu-cuda | runs 0, 5 x seeds 1 | test, 2 CPUs (Made-up CPU, linux/amd64) | none | " + fakeCUDA + " | no | abc123 |",
		"**The rule.**",
		"interleaved rounds of 2 steps in rotating order", // steps.json without "order": measured before it was recorded
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the merged report lacks %q", want)
		}
	}
	// Every claim has its row (here, the CPU sections').
	for _, c := range (&studyData{}).claims() {
		if !strings.Contains(md, "| "+c.text+" | `cpu` (") || !strings.Contains(md, " | "+c.paper+" | ") {
			t.Errorf("the report lacks the claim row %q", c.text)
		}
	}
	for _, q := range qualitativeClaims {
		if !strings.Contains(md, "| "+q.text+" | `cpu` (") {
			t.Errorf("the report lacks the claim row %q", q.text)
		}
	}
	for _, p := range []string{plotClaims, plotTrainCurves} {
		for _, slug := range []string{"cpu", "cpu-cuda"} {
			if _, err := os.Stat(filepath.Join(root, "docs", "reproduction", slug, p)); err != nil {
				t.Errorf("plot: %v", err)
			}
		}
	}

	// The paper preset's pieces, from two GPU leases: its section appears.
	fakeStudy(t, filepath.Join(pieces, "paper", "cuda-runs0_5-seeds1337"), "paper", fakeCUDA, []int{0, 5}, []int64{1337}, 0.05)
	fakeStudy(t, filepath.Join(pieces, "paper", "cuda-runs0_5-seeds1"), "paper", fakeCUDA, []int{0, 5}, []int64{1}, 0.05)
	// The second lease trained with run-to-run determinism: its runs' records say so.
	markDeterministic(t, filepath.Join(pieces, "paper", "cuda-runs0_5-seeds1"))
	if err := ReportCommand([]string{"-from", pieces + "," + b, "-reproduction_out", report}); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(report)
	md = string(raw)
	for _, want := range []string{
		"## The `paper` preset on NVIDIA GPU (XLA's CUDA plugin)", "### Against nanoGPT and the paper (`paper`)",
		"**With 2 seeds, what cannot be concluded.**", "Student's t with 1 degree of freedom",
		"| Lower loss variance in the final iterations | `paper` (12k params, GPU) | 5 |",
		"runs 0, 5 x seeds 1, 1337; 4 runs with usable metrics",
		"| paper | runs 0, 5 x seeds 1337 | test, 2 CPUs (Made-up CPU, linux/amd64) | none | " + fakeCUDA + " | no | abc123 |",
		"| paper | runs 0, 5 x seeds 1 | test, 2 CPUs (Made-up CPU, linux/amd64) | none | " + fakeCUDA + " | yes | abc123 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report with paper files lacks %q", want)
		}
	}
	if strings.Contains(md, "still to be measured on a GPU") {
		t.Error("the report still says the paper preset is to be measured")
	}
}

// markDeterministic rewrites the published metrics of every run in dir as trained with
// run-to-run determinism (their "deterministic" field).
func markDeterministic(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "runs", "*", "metrics.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("metrics in %s: %v (%d files)", dir, err, len(files))
	}
	for _, f := range files {
		var m map[string]any
		raw, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(raw, &m)
		}
		if err != nil {
			t.Fatal(err)
		}
		m["deterministic"] = true
		if raw, err = json.Marshal(m); err == nil {
			err = writePublished(f, raw)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReproductionNeverPairsBackends: runs of one seed trained on different kinds of backend,
// or speeds measured in different processes, are not paired, whatever puts them side by side.
func TestReproductionNeverPairsBackends(t *testing.T) {
	rec := func(run int, backend, speedSrc string) *runRecord {
		m, a := fakeRun("cpu", backend, run, 1, 0.05)
		return &runRecord{metrics: m, analysis: &a, speed: []float64{400}, speedSrc: speedSrc}
	}
	d := &studyData{seeds: []int64{1, 2}, runs: []int{0, 5}, byRun: map[int]map[int64]*runRecord{
		0: {1: rec(0, fakeCPU, "a"), 2: rec(0, fakeCPU, "a")},
		5: {1: rec(5, fakeCUDA, "a"), 2: rec(5, fakeCPU, "b")},
	}}
	if c := d.compare(5, measureVal); c.n != 1 {
		t.Errorf("paired %d seeds, want 1: seed 1's runs trained on a CPU and a GPU", c.n)
	}
	if c := d.compare(5, measureSpeed); c.n != 0 {
		t.Errorf("paired %d speeds, want 0: measured in different processes or on different backends", c.n)
	}
	if r := d.pairedBetween(5, 0, measureVal); r.n != 1 {
		t.Errorf("pairedBetween paired %d seeds, want 1", r.n)
	}
	if _, _, _, n := d.ranking(measureVal); n != 1 {
		t.Errorf("ranking over %d seeds, want 1", n)
	}
	for desc, want := range map[string]string{fakeCPU: "cpu", fakeCUDA: "cuda", "Simple Go Portable Backend": "go", "xla:cpu - PJRT plugin (cpu)": "cpu", "": "unknown",
		// The plugin's own name decides, never a folder above it (internal/platform's rule).
		"xla:/opt/cuda/lib/pjrt_c_api_cpu_plugin.so - PJRT plugin (/opt/cuda/lib/pjrt_c_api_cpu_plugin.so) v0.81 [2 device(s)]": "cpu",
		"xla:/venv/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin (/venv/cpu/x.so) v0.115 [1 device(s)]": "cuda",
		"xla:/home/gpu/libpjrt_cpu.so - PJRT plugin": "cpu",
		"mystery backend - v1":                       "mystery backend"} {
		if got := backendKind(desc); got != want {
			t.Errorf("backendKind(%q) = %q, want %q", desc, got, want)
		}
	}

	// Every platform the rule names has a reader's name and a short one.
	for kind, short := range map[string]string{"cpu": "CPU", "go": "CPU", "cuda": "GPU", "rocm": "GPU", "gpu": "GPU", "metal": "GPU", "tpu": "TPU"} {
		if got := (&studyData{kind: kind}).kindShort(); got != short {
			t.Errorf("kindShort(%q) = %q, want %q", kind, got, short)
		}
		if kindName(kind) == kind {
			t.Errorf("kindName(%q) names no machine", kind)
		}
	}

	// Loaded from files, a CPU and a GPU folder of the same preset and seeds make two sections.
	root := t.TempDir()
	fakeStudy(t, filepath.Join(root, "c"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	fakeStudy(t, filepath.Join(root, "g"), "cpu", fakeCUDA, []int{0, 5}, []int64{1, 2}, 0.05)
	rp, err := loadReproduction([]string{root}, filepath.Join(root, "R.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.sections) != 2 {
		t.Fatalf("%d sections, want 2", len(rp.sections))
	}
	for _, s := range rp.sections {
		for _, r := range s.records {
			if backendKind(r.metrics.Backend) != s.kind {
				t.Errorf("section %s holds a run trained on %s", s.slug, r.metrics.Backend)
			}
		}
		if c := s.compare(5, measureVal); c.n != 2 {
			t.Errorf("section %s paired %d seeds, want 2", s.slug, c.n)
		}
	}
}

// TestReportPublishedForm: the published form drops the telemetry and the indentation and keeps every
// figure the report reads, to the bit; compactPublished converts a folder in place, twice
// without change.
func TestReportPublishedForm(t *testing.T) {
	m, a := fakeRun("cpu", fakeCPU, 5, 3, 0.05)
	m.SMITelemetry = []results.SMIPoint{{Iter: 1, Alpha: 0.1, KeptEnergy: 0.98}}
	m.IterLoss[7] = 1.0000000000000002 // a float64 that needs all its digits
	dir := t.TempDir()
	runDir := filepath.Join(dir, "runs", "cpu-run5-seed3")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sf := studyFile{Preset: "cpu", Runs: []int{5}, Seeds: []int64{3}, Invocations: []invocation{{Revision: "r1", Trained: []string{"cpu-run5-seed3"}}}}
	for name, v := range map[string]any{"study.json": sf, filepath.Join("runs", "cpu-run5-seed3", "metrics.json"): m,
		filepath.Join("runs", "cpu-run5-seed3", "analysis.json"): a} {
		if err := results.WriteJSON(filepath.Join(dir, name), v); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := compactPublished(dir); err != nil {
			t.Fatal(err)
		}
	}
	records, problems, err := readRecordsChecked([]string{dir})
	if err != nil || len(records) != 1 || len(problems) > 0 {
		t.Fatalf("%v %v", err, problems)
	}
	got := records[0]
	want := m
	want.SMITelemetry = nil
	if !reflect.DeepEqual(got.metrics, want) || !reflect.DeepEqual(*got.analysis, a) {
		t.Error("the published form changed a figure")
	}
	if got.prov == nil || got.prov.Revision != "r1" {
		t.Errorf("provenance %+v, want revision r1", got.prov)
	}
	raw, _ := os.ReadFile(filepath.Join(runDir, "metrics.json"))
	if strings.Contains(string(raw), "smi_telemetry") || strings.Count(string(raw), "\n") != 1 {
		t.Errorf("not the published form: %d lines", strings.Count(string(raw), "\n"))
	}
}

// TestReproductionOneRunPiece: the `paper` preset's first piece may be one run of one seed (what
// one GPU lease trains): the report shows it against nanoGPT, says that no pair can be checked or
// tested yet, and calls no paired claim anything but not measurable.
func TestReproductionOneRunPiece(t *testing.T) {
	root := t.TempDir()
	pieces := filepath.Join(root, "docs", "reproduction")
	fakeStudy(t, filepath.Join(pieces, "cpu", "cpu-runs0_5-seeds1_2"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	fakeStudy(t, filepath.Join(pieces, "paper", "cuda-runs5-seeds1337"), "paper", fakeCUDA, []int{5}, []int64{1337}, 0.05)
	report := filepath.Join(root, "docs", "REPRODUCTION.md")
	if err := ReportCommand([]string{"-from", pieces, "-reproduction_out", report}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	md := string(raw)
	section := md[strings.Index(md, "## The `paper` preset on NVIDIA GPU"):]
	for _, want := range []string{
		"runs 5 x seeds 1337; 1 run with usable metrics",
		"No seed has two configurations yet (1 run), so no pair's common start can be checked.",
		"### Against nanoGPT and the paper (`paper`)",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the paper section lacks %q", want)
		}
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Contains(line, "| `paper` (") && !strings.Contains(line, "**not measurable here**") {
			t.Errorf("a paper claim with one run is judged: %s", line)
		}
	}
}

// writeStudyFile publishes sf as dir/study.json: a study folder without runs.
func writeStudyFile(t *testing.T, dir string, sf studyFile) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(filepath.Join(dir, "study.json"), sf); err != nil {
		t.Fatal(err)
	}
}

// TestReportPlacesDivergedRuns: a run that diverged is named in the section of its preset, recipe
// and backend, whatever the folders' names; a folder whose only runs diverged with another recipe
// joins no section, and its runs are listed with what the report could not count. A diverged run
// of a folder's grid is named once, not also as a missing metrics file.
func TestReportPlacesDivergedRuns(t *testing.T) {
	root := t.TempDir()
	m, _ := fakeRun("cpu", fakeCPU, 5, 3, 0.05)
	other := m.Config
	other.LearningRate = 1e4
	diverged := func(dir string, cfg gpt.Config) {
		writeStudyFile(t, dir, studyFile{Preset: "cpu", Runs: []int{5}, Seeds: []int64{3}, Invocations: []invocation{{Command: "made up", Backend: fakeCPU}},
			Diverged: []divergedRun{{Run: 5, Seed: 3, Iter: 7, MaxIters: 300, Loss: "NaN", Backend: fakeCPU, Config: cfg}}})
	}
	// "a-..." sorts before the folder with the runs, which the report read first before.
	diverged(filepath.Join(root, "a-same-recipe"), m.Config)
	diverged(filepath.Join(root, "a-other-recipe"), other)
	fakeStudy(t, filepath.Join(root, "b-runs"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := rp.markdown()
	intro := "**Diverged, so without results:** run 5, seed 3 diverged at iteration 7 of 300 (training loss NaN) on CPU (XLA's CPU plugin). "
	if strings.Count(md, intro) != 1 {
		t.Errorf("the section names the diverged run of its recipe %d times, want once:\n%s", strings.Count(md, intro), md)
	}
	if !strings.Contains(md, "a-other-recipe (the cpu preset on cpu) holds no usable run (1 diverged, below)") ||
		!strings.Contains(md, "a-other-recipe: run 5, seed 3 diverged at iteration 7") {
		t.Errorf("the folder of another recipe is not listed as not counted:\n%s", md)
	}
	if strings.Contains(md, "a-same-recipe (the cpu preset on cpu) holds no usable run") {
		t.Errorf("the folder of the same recipe joins no section")
	}
	if strings.Contains(md, "run 5, seed 3 (a-same-recipe): no usable metrics.json") {
		t.Errorf("the diverged run is also reported as a missing metrics file")
	}
}

// TestReportPlacesFoldersByRecipe: a folder whose study.json holds no run yet joins the section of
// the recipe its invocation records, and no other; one without a recorded recipe (older files)
// joins every section of its preset and backend.
func TestReportPlacesFoldersByRecipe(t *testing.T) {
	root := t.TempDir()
	m, _ := fakeRun("cpu", fakeCPU, 5, 3, 0.05)
	other := m.Config
	other.LearningRate = 1e-4
	empty := func(name string, cfg *gpt.Config) {
		writeStudyFile(t, filepath.Join(root, name),
			studyFile{Preset: "cpu", Runs: []int{5}, Seeds: []int64{9}, Invocations: []invocation{{Command: "made up", Backend: fakeCPU, Config: cfg}}})
	}
	empty("a-same-recipe", &m.Config)
	empty("a-other-recipe", &other)
	empty("a-no-recipe", nil)
	fakeStudy(t, filepath.Join(root, "b-runs"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.sections) != 1 {
		t.Fatalf("%d sections, want the one of b-runs", len(rp.sections))
	}
	joined := map[string]bool{}
	for _, s := range rp.sections[0].sources {
		joined[filepath.Base(s.dir)] = true
	}
	for name, want := range map[string]bool{"a-same-recipe": true, "a-other-recipe": false, "a-no-recipe": true, "b-runs": true} {
		if joined[name] != want {
			t.Errorf("%s joins the section: %v, want %v", name, joined[name], want)
		}
	}
	if md := rp.markdown(); !strings.Contains(md, "a-other-recipe (the cpu preset on cpu) holds no usable run yet") {
		t.Errorf("the folder of another recipe is not listed as holding no run:\n%s", md)
	}
}

// TestReportScaleAgainstPaper: what may depend on scale gives the section's own ratios to the
// paper preset's recipe (the cpu preset: 3x narrower, 2.5x shorter; a shortened tiny one: 12x,
// 250x), and a section at the paper preset's recipe has no such text.
func TestReportScaleAgainstPaper(t *testing.T) {
	scaleText := func(t *testing.T, preset string, set map[string]any) string {
		t.Helper()
		root := t.TempDir()
		fakeStudy(t, filepath.Join(root, "a"), preset, fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
		for field, v := range set {
			setRecipe(t, filepath.Join(root, "a"), field, v)
		}
		rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
		if err != nil {
			t.Fatal(err)
		}
		md := rp.markdown()
		i := strings.Index(md, "### What may depend on scale")
		if i < 0 {
			return ""
		}
		return md[i : i+strings.Index(md[i:], "\n\n#")]
	}
	for _, tc := range []struct {
		preset     string
		set        map[string]any
		want, not  []string
		noScaleTxt bool
	}{
		{preset: "cpu", want: []string{"matrices 3x narrower have fewer, coarser frequencies, and a run 2.5x shorter", "This preset trains"}},
		{preset: "tiny", set: map[string]any{"MaxIters": 20}, want: []string{"matrices 12x narrower", "a run 250x shorter", "This section's recipe trains"},
			not: []string{"3x narrower", "2.5x shorter"}},
		{preset: "paper", set: map[string]any{"MaxIters": 4}, want: []string{"SMI blends its mask in along the alpha schedule, so a run 1250x shorter", "(#the-paper-preset)"},
			not: []string{"narrower", "wider"}},
		{preset: "paper", set: map[string]any{"EvalIters": 3}, noScaleTxt: true}, // off the preset, at its scale
		{preset: "paper", noScaleTxt: true},
	} {
		txt := scaleText(t, tc.preset, tc.set)
		if tc.noScaleTxt != (txt == "") {
			t.Errorf("%s %v: what may depend on scale: %q", tc.preset, tc.set, txt)
		}
		for _, want := range tc.want {
			if !strings.Contains(txt, want) {
				t.Errorf("%s %v: the scale text lacks %q:\n%s", tc.preset, tc.set, want, txt)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(txt, not) {
				t.Errorf("%s %v: the scale text says %q:\n%s", tc.preset, tc.set, not, txt)
			}
		}
	}
}

// TestVerdictSaysWhyNotMeasurable: a claim without an interval is said to lack it for its own
// reason: one pair; run 0's mean 0 (no percentage of it, whether or not the runs differ; two
// pairs, which elsewhere give intervals); a value that is not finite.
func TestVerdictSaysWhyNotMeasurable(t *testing.T) {
	attention := (&studyData{}).claims()[5]
	cond := (&studyData{}).claims()[7]
	if attention.text != "Higher attention sparsity" || cond.text != "Lower condition numbers" {
		t.Fatalf("claims %q, %q", attention.text, cond.text)
	}
	section := func(seeds []int64, set func(run int, a *results.Analysis)) *studyData {
		d := &studyData{seeds: seeds, runs: []int{0, 5}, byRun: map[int]map[int64]*runRecord{0: {}, 5: {}}}
		for _, run := range d.runs {
			for _, seed := range seeds {
				m, a := fakeRun("cpu", fakeCPU, run, seed, 0.05)
				set(run, &a)
				d.byRun[run][seed] = &runRecord{metrics: m, analysis: &a}
			}
		}
		return d
	}
	for _, tc := range []struct {
		name   string
		d      *studyData
		c      claim
		want   string
		unwant string
	}{
		{"one pair", section([]int64{1}, func(int, *results.Analysis) {}), attention, "Both runs are measured for only 1 of the seeds", ""},
		{"sparsity 0 in both runs", section([]int64{1, 2}, func(_ int, a *results.Analysis) { a.AttentionSparsity = 0 }), attention,
			"Run 0's mean attention sparsity over the 2 seeds is 0, so a change has no percentage of it: the paired difference is 0 (95% CI 0 to 0, paired p = 1)", "only 2"},
		{"sparsity 0 in run 0 only", section([]int64{1, 2}, func(run int, a *results.Analysis) { a.AttentionSparsity = 0.1 * float64(run) }), attention,
			"Run 0's mean attention sparsity over the 2 seeds is 0, so a change has no percentage of it", "Inf"},
		{"an infinite condition number", section([]int64{1, 2}, func(run int, a *results.Analysis) {
			if run == 5 {
				a.ConditionNumberGeoMean = math.Inf(1)
			}
		}), cond, "A value of run 5 or run 0 on condition number (geometric mean) is not finite", ""},
	} {
		cmp := tc.d.compareClaim(tc.c, 5)
		v, why := verdict(cmp, tc.c.paperPct, tc.c.m, true)
		if v != verdictScale || !strings.Contains(why, tc.want) || tc.unwant != "" && strings.Contains(why, tc.unwant) {
			t.Errorf("%s: %s: %q, want %s: %q", tc.name, v, why, verdictScale, tc.want)
		}
		if got := fmtPctCI(cmp.pct, cmp.pctLo, cmp.pctHi); tc.c.m.name == attention.m.name && strings.Contains(got, "Inf") {
			t.Errorf("%s: the change is %s", tc.name, got)
		}
	}
}

// TestReportDocLinks: the links to the repository's docs (docs/ALGORITHM.md, docs/SHAKESPEARE.md)
// resolve from a report written outside docs/, and read as before from docs/REPRODUCTION.md;
// the repository is found from its root or a folder below it.
func TestReportDocLinks(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{"go.mod": "module " + repoModule + "\n\ngo 1.26\n",
		filepath.Join("docs", "ALGORITHM.md"): "# Algorithm\n", filepath.Join("docs", "SHAKESPEARE.md"): "# Shakespeare\n"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fakeStudy(t, filepath.Join(root, "pub", "a"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	sub := filepath.Join(root, "examples", "x")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root) // the repository's root, as the command is run
	link := regexp.MustCompile(`\]\(([^)#]*\.md)(#[^)]*)?\)`)
	for _, report := range []string{filepath.Join("elsewhere", "deeper", "R.md"), filepath.Join(root, "R.md"), filepath.Join("docs", "REPRODUCTION.md"), filepath.Join(sub, "R.md")} {
		if report == filepath.Join(sub, "R.md") {
			t.Chdir(sub) // below the root, as a package's tests run
		}
		flagName := "-reproduction_out"
		if report == filepath.Join(root, "R.md") {
			flagName = "-report" // the study command's name for it, accepted too
		}
		if err := ReportCommand([]string{"-from", filepath.Join(root, "pub"), flagName, report}); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		links := link.FindAllStringSubmatch(string(raw), -1)
		if len(links) != 5 {
			t.Errorf("%s: %d links to pages, want 5 (ALGORITHM.md, SHAKESPEARE.md four times)", report, len(links))
		}
		for _, l := range links {
			if _, err := os.Stat(filepath.Join(filepath.Dir(report), l[1])); err != nil {
				t.Errorf("%s: the link %s does not resolve: %v", report, l[0], err)
			}
		}
	}
	raw, _ := os.ReadFile(filepath.Join(root, "docs", "REPRODUCTION.md"))
	for _, want := range []string{"[ALGORITHM.md](ALGORITHM.md)", "[SHAKESPEARE.md](SHAKESPEARE.md))", "[SHAKESPEARE.md](SHAKESPEARE.md).",
		"[SHAKESPEARE.md](SHAKESPEARE.md#same-seed-pairs-across-machines)", "[SHAKESPEARE.md](SHAKESPEARE.md#the-study-study-make-study)"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("docs/REPRODUCTION.md lacks %q", want)
		}
	}
}

// TestReportNamesStepsSource: of a section's several steps.json files, the report says which
// one its training-time overhead comes from and why, that the others are not pooled with it,
// and which configuration another one times instead; each file's provenance line says whether
// the overhead uses it.
func TestReportNamesStepsSource(t *testing.T) {
	root := t.TempDir()
	fakeStudy(t, filepath.Join(root, "a"), "cpu", fakeCPU, []int{0, 5}, []int64{1}, 0.05)
	fakeStudy(t, filepath.Join(root, "b"), "cpu", fakeCPU, []int{0, 5}, []int64{2}, 0.05)
	fakeStudy(t, filepath.Join(root, "c"), "cpu", fakeCPU, []int{0, 3}, []int64{1}, 0.05)
	rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := rp.markdown()
	for _, want := range []string{
		"the step times are those of `a/steps.json`, of the section's 3 steps.json files the one that times the most configurations (then the most rounds; the first folder on a tie); " +
			"`b/steps.json`, `c/steps.json` are not pooled with it",
		"a configuration that it does not time with run 0 is compared from the file with the most rounds that does (run 3 from `c/steps.json`)",
		"[2 device(s)]). The `cpu` section's training-time overhead comes from these step times.",
		"Not used: the `cpu` section's training-time overhead comes from `a/steps.json`, and step times measured in different processes are not pooled.",
		"The `cpu` section's training-time overhead of run 3 only comes from these step times, which the section's main file, `a/steps.json`, lacks.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// A section with one steps.json says nothing of a choice.
	alone, err := loadReproduction([]string{filepath.Join(root, "a")}, filepath.Join(root, "REPRODUCTION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if md := alone.markdown(); strings.Contains(md, "not pooled") || strings.Contains(md, "comes from these step times") {
		t.Error("a section with one steps.json speaks of a choice")
	}
}

// TestReportOneSeed: with one seed, the report says that every claim but the training-time
// overhead needs two seeds, and judges the overhead from its interleaved rounds; without a
// steps.json, the overhead needs two seeds as well.
func TestReportOneSeed(t *testing.T) {
	root := t.TempDir()
	fakeStudy(t, root, "cpu", fakeCPU, []int{0, 5}, []int64{1}, 0.05)
	report := func() string {
		rp, err := loadReproduction([]string{root}, filepath.Join(root, "REPRODUCTION.md"))
		if err != nil {
			t.Fatal(err)
		}
		return rp.markdown()
	}
	overheadRow := func(md string) string {
		i := strings.Index(md, "| Training-time overhead of SMI | ")
		return md[i : i+strings.Index(md[i:], "\n")]
	}
	md := report()
	for _, want := range []string{"**With 1 seed, what cannot be concluded.**", "every claim but the training-time overhead needs at least 2 seeds",
		"The overhead is judged all the same: its pairs are the interleaved timing rounds of steps.json, not seeds."} {
		if !strings.Contains(md, want) {
			t.Errorf("the 1-seed report lacks %q", want)
		}
	}
	if strings.Contains(md, "no claim can be judged") || strings.Contains(md, "1 seeds") {
		t.Error("the 1-seed report says no claim can be judged, or 1 seeds")
	}
	if row := overheadRow(md); strings.Contains(row, verdictScale) || !strings.Contains(row, "4 interleaved rounds") {
		t.Errorf("the overhead is not judged from its rounds: %s", row)
	}
	if err := os.Remove(filepath.Join(root, "steps.json")); err != nil {
		t.Fatal(err)
	}
	md = report()
	if !strings.Contains(md, "every claim needs at least 2 seeds") || !strings.Contains(overheadRow(md), verdictScale) {
		t.Errorf("without steps.json: %s\n%s", md[strings.Index(md, "**With 1 seed"):][:400], overheadRow(md))
	}
}

// TestFindStudyFolders: a folder the report is made from is searched through a symbolic link
// given as it, and one that holds no study is named (it was dropped without a word, while the
// report's header listed it); folders that overlap are fine.
func TestFindStudyFolders(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "a")
	fakeStudy(t, filepath.Join(a, "piece"), "cpu", fakeCPU, []int{0, 5}, []int64{1}, 0.05)
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	if dirs, err := findStudyFolders([]string{link}); err != nil || len(dirs) != 1 {
		t.Errorf("through a link: %v, %v", dirs, err)
	}
	if dirs, err := findStudyFolders([]string{a, filepath.Join(a, "piece")}); err != nil || len(dirs) != 1 {
		t.Errorf("overlapping folders: %v, %v", dirs, err)
	}
	if _, err := findStudyFolders([]string{a, empty}); err == nil || !strings.Contains(err.Error(), "no published study (study.json) in or under "+empty) {
		t.Errorf("a folder without a study: %v", err)
	}
}

// TestReportTextLast: the report's text is written after its plots, so a report cut short keeps
// the old text rather than a new one beside older plots.
func TestReportTextLast(t *testing.T) {
	root := t.TempDir()
	fakeStudy(t, filepath.Join(root, "pub"), "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	report := filepath.Join(root, "out", "R.md")
	if err := os.MkdirAll(filepath.Join(root, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file where the plots' folder goes: plotting fails.
	if err := os.WriteFile(filepath.Join(root, "out", "reproduction"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReproduction([]string{filepath.Join(root, "pub")}, report); err == nil {
		t.Fatal("the plots could not be written, yet the report succeeded")
	}
	if raw, _ := os.ReadFile(report); string(raw) != "old" {
		t.Errorf("a report whose plots failed replaced the old text (%d bytes)", len(raw))
	}
}
