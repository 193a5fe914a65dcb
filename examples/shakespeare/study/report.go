package study

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/stats"
	"github.com/smi-gomlx/smi/internal/cli"
)

// runRecord is one run's metrics (and analysis, when `analyze` was run on it).
type runRecord struct {
	path     string
	metrics  results.Metrics
	analysis *results.Analysis
	prov     *provenance // where and with what code it trained, when its published file says
	aprov    *provenance // the same for its analysis
	speed    []float64   // inference tokens/s per repetition of a study's interleaved measurement
	speedSrc string      // the folder of the speed.json that measured it (speeds pair within one)
	source   string      // the published study folder it was read from
}

// group is one configuration: runs that differ only in their seed.
type group struct {
	label string
	key   string
	runs  []*runRecord
	base  *group // run 0 with the same preset and recipe; nil for run 0 itself
}

// metricDef extracts one figure from a run; ok is false when the run lacks it.
type metricDef struct {
	name string
	get  func(r *runRecord) (float64, bool)
}

// ReportCommand is the report command: a comparison of any runs (their directories or parents),
// the reproduction report from published study folders (-from), or a published folder made
// compact (-compact); see -help.
func ReportCommand(args []string) error {
	fset := flag.NewFlagSet("report", flag.ContinueOnError)
	out := fset.String("out", filepath.Join("results", "shakespeare", "report"), "directory for report.md and its plots")
	from := fset.String("from", "", "published study folders, comma-separated, each searched for study.json (e.g. docs/reproduction): write the reproduction report from every study found, merged")
	repro := fset.String("reproduction", "", "the same as -from (kept for old commands)")
	reproOut := fset.String("reproduction_out", filepath.Join("docs", "REPRODUCTION.md"), "with -from: the report to write; its plots go to reproduction/<section>/ beside it")
	fset.StringVar(reproOut, "report", *reproOut, "the same as -reproduction_out (the study command's name for it)")
	compact := fset.String("compact", "", "a published study folder: rewrite its files in the compact published form (no indentation, no SMI telemetry, each run's provenance from study.json), then stop")
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: shakespeare report [-out DIR] RUN_DIR_OR_PARENT...\n       shakespeare report -from FOLDER[,FOLDER...] [-reproduction_out FILE]\n       shakespeare report -compact PUBLISHED_STUDY_DIR")
		fset.PrintDefaults()
	}
	if err := cli.ParseFlags(fset, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fset, args, "run directories"); err != nil {
		return err
	}
	if (*compact != "" || *from != "" || *repro != "") && fset.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q: with -compact or -from, report takes no run directories (see -help)", fset.Args())
	}
	if *compact != "" {
		return compactPublished(*compact)
	}
	if *from != "" || *repro != "" {
		var roots []string
		for _, f := range []struct{ name, list string }{{"-from", *from}, {"-reproduction", *repro}} {
			if f.list == "" {
				continue
			}
			folders, err := splitFolders(f.name, f.list)
			if err != nil {
				return err
			}
			roots = append(roots, folders...)
		}
		if err := writeReproduction(roots, *reproOut); err != nil {
			return err
		}
		fmt.Printf("Report: %s\n", *reproOut)
		return nil
	}
	if fset.NArg() == 0 {
		return cli.Usagef("give run directories (or a directory holding them), e.g. results/shakespeare")
	}
	records, err := readRecords(fset.Args())
	if err != nil {
		return err
	}
	groups := groupRuns(records)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	md := reportMarkdown(groups)
	path := filepath.Join(*out, "report.md")
	if err := results.WriteFileAtomic(path, []byte(md)); err != nil {
		return err
	}
	plots, err := reportPlots(*out, groups)
	if err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	fmt.Printf("%d runs in %d configurations.\nReport: %s\n", len(records), len(groups), path)
	for _, p := range plots {
		fmt.Printf("Plot:   %s\n", p)
	}
	return nil
}

// readRecords reads the metrics.json files given or found under the directories given, each
// with the analysis.json beside it when there is one. A file that cannot be used is skipped
// with a line on stderr naming it and why, and the other runs still count; it fails only when
// no run can be used.
func readRecords(args []string) ([]*runRecord, error) {
	records, problems, err := readRecordsChecked(args)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "skipped: %s\n", p)
	}
	return records, err
}

// readRecordsChecked is readRecords returning the skipped files' problems.
func readRecordsChecked(args []string) (records []*runRecord, problems []string, err error) {
	var paths []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", arg, err)
		}
		if !info.IsDir() {
			paths = append(paths, arg)
			continue
		}
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == "metrics.json" {
				paths = append(paths, p)
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		r := &runRecord{path: p}
		var prov, aprov struct {
			P *provenance `json:"provenance"`
		}
		var losses32 readIterLoss32 // a published file's losses in their float32 form
		if err := readChecked(p, &r.metrics, metricsRequired, &prov, &losses32); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if err := losses32.apply(&r.metrics); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		r.prov = prov.P
		ap := filepath.Join(filepath.Dir(p), "analysis.json")
		if _, err := os.Stat(ap); err == nil {
			r.analysis = &results.Analysis{}
			if err := readChecked(ap, r.analysis, analysisRequired, &aprov); err != nil {
				problems = append(problems, err.Error()+" (the run counts without its analysis)")
				r.analysis = nil
			}
			r.aprov = aprov.P
		}
		records = append(records, r)
	}
	if len(records) == 0 {
		what := "no metrics.json found"
		if len(paths) > 0 {
			what = "no usable metrics.json found"
		}
		return nil, problems, fmt.Errorf("%s under %s: train some runs first", what, strings.Join(args, ", "))
	}
	return records, problems, nil
}

// The fields a run's files must have, present and not null: a figure that is absent must not
// read as 0.
var (
	metricsRequired = []string{"preset", "run", "seed", "config", "final_train_loss", "final_val_loss",
		"best_val_loss", "train_seconds", "iter_loss", "evals", "final_loss_variance"}
	analysisRequired = []string{"spectral_norm_variance_across_layers", "condition_number_geomean",
		"param_magnitude_variance", "active_fraction", "mlp_sparsity", "attention_sparsity"}
)

// readChecked decodes the JSON file at path into v (and into each of also) after checking that
// every required field is present and not null, unless the file's "undefined" says why it is
// null (a metric a short run leaves undefined, read as NaN: see results.Metrics.Undefined).
func readChecked(path string, v any, required []string, also ...any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("%s is not valid JSON: %v", path, err)
	}
	var undefined map[string]string
	if raw, ok := fields["undefined"]; ok {
		_ = json.Unmarshal(raw, &undefined) // not a map: no reasons, so nulls are missing
	}
	var missing []string
	for _, f := range required {
		if val, ok := fields[f]; !ok || string(val) == "null" && undefined[f] == "" {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lacks %s (missing or null)", path, strings.Join(missing, ", "))
	}
	for _, into := range append([]any{v}, also...) {
		if err := json.Unmarshal(raw, into); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	return nil
}

// groupRuns groups runs by preset, recipe (Config), optimizer settings and text: everything but
// the seed.
func groupRuns(records []*runRecord) []*group {
	byKey := map[string]*group{}
	var groups []*group
	for _, r := range records {
		cfg, _ := json.Marshal(r.metrics.Config)
		smi, _ := json.Marshal(r.metrics.SMI)
		key := fmt.Sprintf("%s|%d|%s|%s|%s", r.metrics.Preset, r.metrics.Run, cfg, smi, results.DataSHA256(&r.metrics))
		g := byKey[key]
		if g == nil {
			g = &group{key: key, label: fmt.Sprintf("%s run %d (%s)", r.metrics.Preset, r.metrics.Run, r.metrics.RunName)}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.runs = append(g.runs, r)
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].key < groups[j].key })
	labels := map[string]int{}
	for _, g := range groups {
		labels[g.label]++
		if n := labels[g.label]; n > 1 { // same run, other recipe or settings
			g.label = fmt.Sprintf("%s #%d", g.label, n)
		}
	}
	for _, g := range groups {
		m := g.runs[0].metrics
		if m.Run == 0 && m.SMI == nil {
			continue
		}
		cfg, _ := json.Marshal(m.Config)
		g.base = byKey[fmt.Sprintf("%s|0|%s|null|%s", m.Preset, cfg, results.DataSHA256(&m))]
	}
	return groups
}

func reportMetrics(groups []*group) []metricDef {
	m := func(name string, f func(*results.Metrics) float64) metricDef {
		return metricDef{name, func(r *runRecord) (float64, bool) { return f(&r.metrics), true }}
	}
	a := func(name string, f func(*results.Analysis) float64) metricDef {
		return metricDef{name, func(r *runRecord) (float64, bool) {
			if r.analysis == nil {
				return 0, false
			}
			return f(r.analysis), true
		}}
	}
	defs := []metricDef{
		m("final validation loss", func(m *results.Metrics) float64 { return m.FinalValLoss }),
		m("final training loss", func(m *results.Metrics) float64 { return m.FinalTrainLoss }),
		m("best validation loss", func(m *results.Metrics) float64 { return m.BestValLoss }),
		m("training time (s)", func(m *results.Metrics) float64 { return m.TrainSeconds }),
		m("training tokens/s", func(m *results.Metrics) float64 { return m.TrainTokensPerSec }),
		m("loss variance, final 20%", func(m *results.Metrics) float64 { return float64(m.FinalLossVariance) }),
		{"inference tokens/s", func(r *runRecord) (float64, bool) {
			if r.metrics.Inference == nil {
				return 0, false
			}
			return r.metrics.Inference.TokensPerSec, true
		}},
	}
	thresholds := map[float64]bool{}
	for _, g := range groups {
		for _, r := range g.runs {
			for _, th := range r.metrics.ItersToThreshold {
				thresholds[th.Loss] = true
			}
		}
	}
	var ths []float64
	for th := range thresholds {
		ths = append(ths, th)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(ths)))
	for _, th := range ths {
		defs = append(defs, metricDef{fmt.Sprintf("iterations to smoothed train loss < %g", th), func(r *runRecord) (float64, bool) {
			for _, t := range r.metrics.ItersToThreshold {
				if t.Loss == th && t.Iter != nil {
					return float64(*t.Iter), true
				}
			}
			return 0, false
		}})
	}
	return append(defs,
		a("spectral-norm variance across layers", func(a *results.Analysis) float64 { return a.SpectralNormVarianceAcrossLayers }),
		a("condition number (geometric mean)", func(a *results.Analysis) float64 { return a.ConditionNumberGeoMean }),
		a("variance of parameter magnitudes", func(a *results.Analysis) float64 { return a.ParamMagnitudeVariance }),
		a("effectively active parameters", func(a *results.Analysis) float64 { return a.ActiveFraction }),
		a("MLP activation sparsity", func(a *results.Analysis) float64 { return a.MLPSparsity }),
		a("attention sparsity", func(a *results.Analysis) float64 { return a.AttentionSparsity }),
	)
}

func values(g *group, d metricDef) []float64 {
	var xs []float64
	for _, r := range g.runs {
		if v, ok := d.get(r); ok && !math.IsNaN(v) { // NaN: undefined for the run (results.Metrics.Undefined)
			xs = append(xs, v)
		}
	}
	return xs
}

func reportMarkdown(groups []*group) string {
	var sb strings.Builder
	sb.WriteString("# Shakespeare runs: comparison\n\n")
	sb.WriteString("Generated by `shakespeare report`. Mean over seeds with its 95% Student-t confidence interval; ")
	sb.WriteString("differences are from run 0 (AdamW alone) with the same preset and recipe, with the two-sided ")
	sb.WriteString("p-value of Welch's t-test (n/a with fewer than two seeds on either side). ")
	sb.WriteString("Definitions: docs/SHAKESPEARE.md.\n\n## Configurations\n\n| configuration | seeds | backend | machine |\n|---|---|---|---|\n")
	for _, g := range groups {
		var seeds []string
		for _, r := range g.runs {
			seeds = append(seeds, fmt.Sprint(r.metrics.Seed))
		}
		m := g.runs[0].metrics
		fmt.Fprintf(&sb, "| %s | %s | %s | %s, %d CPUs (%s) |\n", g.label, strings.Join(seeds, ", "),
			m.Backend, m.Machine.Host, m.Machine.CPUs, m.Machine.CPU)
	}
	for _, d := range reportMetrics(groups) {
		rows := 0
		var body strings.Builder
		for _, g := range groups {
			xs := values(g, d)
			if len(xs) == 0 {
				continue
			}
			rows++
			mean, lo, hi := stats.MeanCI95(xs)
			diff, pct, p := "", "", ""
			if g.base != nil {
				if bs := values(g.base, d); len(bs) > 0 {
					bm := stat.Mean(bs, nil)
					diff = stats.Format(mean - bm)
					if bm != 0 {
						pct = fmt.Sprintf("%+.1f%%", 100*(mean-bm)/math.Abs(bm))
					}
					p = stats.Format(stats.Welch(xs, bs))
				}
			}
			ci := "n/a"
			if !math.IsNaN(lo) {
				ci = stats.Format(lo) + " to " + stats.Format(hi)
			}
			fmt.Fprintf(&body, "| %s | %d/%d | %s | %s | %s | %s | %s |\n", g.label, len(xs), len(g.runs),
				stats.Format(mean), ci, diff, pct, p)
		}
		if rows == 0 {
			continue
		}
		fmt.Fprintf(&sb, "\n## %s\n\n| configuration | n | mean | 95%% CI | vs run 0 | change | p (Welch) |\n|---|---|---|---|---|---|---|\n%s",
			d.name, body.String())
	}
	return sb.String()
}

// reportPlots draws the mean smoothed training-loss curves and interval plots of key figures.
func reportPlots(dir string, groups []*group) ([]string, error) {
	var written []string
	p := plot.New()
	p.Title.Text = fmt.Sprintf("training loss (mean over seeds of the trailing %d-iteration mean)", results.SmoothWindow)
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = "cross-entropy"
	p.Add(plotter.NewGrid())
	for k, g := range groups {
		var curves [][]float64
		for _, r := range g.runs {
			curves = append(curves, results.Smooth(r.metrics.IterLoss, results.SmoothWindow))
		}
		n := len(curves[0])
		for _, c := range curves {
			n = min(n, len(c))
		}
		var xys plotter.XYs
		for i := range n {
			sum := 0.0
			for _, c := range curves {
				sum += c[i]
			}
			if !math.IsNaN(sum) {
				xys = append(xys, plotter.XY{X: float64(i + 1), Y: sum / float64(len(curves))})
			}
		}
		if len(xys) < 2 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(k)
		p.Add(l)
		p.Legend.Add(g.label, l)
	}
	p.Legend.Top = true
	path := filepath.Join(dir, "loss_curves.png")
	if err := results.SavePlot(p, 9*vg.Inch, 5.5*vg.Inch, path); err != nil {
		return nil, err
	}
	written = append(written, path)

	for _, d := range reportMetrics(groups)[:7] {
		path, err := intervalPlot(dir, groups, d)
		if err != nil {
			return nil, err
		}
		if path != "" {
			written = append(written, path)
		}
	}
	return written, nil
}

func intervalPlot(dir string, groups []*group, d metricDef) (string, error) {
	var means []float64
	var errs plotter.YErrors
	var names []string
	for _, g := range groups {
		xs := values(g, d)
		if len(xs) == 0 {
			continue
		}
		mean, lo, hi := stats.MeanCI95(xs)
		half := 0.0
		if !math.IsNaN(lo) {
			half = (hi - lo) / 2
		}
		means = append(means, mean)
		errs = append(errs, struct{ Low, High float64 }{half, half})
		names = append(names, strings.Replace(g.label, " (", "\n(", 1))
	}
	if len(means) == 0 {
		return "", nil
	}
	// Points with interval bars, on an axis fitted to them: differences between configurations
	// are small next to the values themselves.
	p := plot.New()
	p.Title.Text = d.name + " (mean over seeds, 95% CI)"
	p.Add(plotter.NewGrid())
	xys := make(plotter.XYs, len(means))
	for i, m := range means {
		xys[i] = plotter.XY{X: float64(i), Y: m}
	}
	points, err := plotter.NewScatter(xys)
	if err != nil {
		return "", err
	}
	points.Color = results.ColorTrain
	points.Radius = vg.Points(4)
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{xys, errs})
	if err != nil {
		return "", err
	}
	eb.Color = results.ColorTrain
	p.Add(points, eb)
	p.X.Min, p.X.Max = -0.5, float64(len(means))-0.5
	p.Y.Tick.Marker = preciseTicks{}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0
	name := strings.NewReplacer(" ", "_", "/", "_", "%", "pct", ",", "", "(", "", ")", "").Replace(d.name)
	path := filepath.Join(dir, name+".png")
	return path, results.SavePlot(p, vg.Length(max(5, 1.5*float64(len(means))))*vg.Inch, 4*vg.Inch, path)
}

// preciseTicks labels gonum's default ticks with enough digits to tell close ticks apart.
type preciseTicks struct{}

func (preciseTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = fmt.Sprintf("%.4g", ticks[i].Value)
		}
	}
	return ticks
}
