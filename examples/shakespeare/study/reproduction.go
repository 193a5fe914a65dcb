package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/stats"
)

// The reproduction report: each of the paper's claims, the paper's figure beside ours, with
// paired tests over seeds and a verdict that weighs the size of the claim. It is made only from
// published result files (see Run and publishedForm), from one folder or several, so it regenerates without
// training and merges a study done in pieces on several machines. Runs are grouped into
// sections by preset, recipe and kind of backend; runs are paired (same seed) only within a
// section, never across backends.

// studySource is one published study folder: its study.json and the speed.json and steps.json
// beside it.
type studySource struct {
	dir   string
	study studyFile
	speed *speedFile
	steps *stepFile
}

// stepSource is one steps.json: interleaved step times measured in one process.
type stepSource struct {
	dir  string
	file *stepFile
}

// studyData is one section of the report: the runs of one preset and recipe trained on one kind
// of backend, from one or more published folders.
type studyData struct {
	preset, kind, slug string
	sources            []*studySource
	stepFiles          []stepSource
	steps              *stepFile // the steps file with the most configurations (then rounds)
	records            []*runRecord
	problems           []string // files skipped, and grid points without a usable run
	// byRun[run][seed]
	byRun map[int]map[int64]*runRecord
	seeds []int64 // in the order the folders list them
	runs  []int
	// plotDir: where the section's plots are written; plotLink: the same, relative to the report
	plotDir, plotLink string
}

// reproduction is everything the report is made from.
type reproduction struct {
	roots     []string // the folders given (each searched for published studies)
	reportDir string   // the report's folder: links and folder names are relative to it
	sources   []*studySource
	sections  []*studyData
	problems  []string // what belongs to no section
}

// backendKind names the kind of machine a backend computes on, from its description: "cpu",
// "cuda", "rocm", "tpu", "go" (GoMLX's pure Go backend), or the description's first part.
func backendKind(desc string) string {
	l := strings.ToLower(desc)
	switch {
	case strings.HasPrefix(l, "simple go") || l == "go":
		return "go"
	case strings.Contains(l, "cuda"):
		return "cuda"
	case strings.Contains(l, "rocm"):
		return "rocm"
	case strings.Contains(l, "tpu"):
		return "tpu"
	case strings.Contains(l, "cpu"):
		return "cpu"
	}
	if i := strings.Index(desc, " - "); i > 0 {
		return desc[:i]
	}
	if desc == "" {
		return "unknown"
	}
	return desc
}

// kindName is a backend kind for readers.
func kindName(kind string) string {
	switch kind {
	case "cpu":
		return "CPU (XLA's CPU plugin)"
	case "cuda":
		return "NVIDIA GPU (XLA's CUDA plugin)"
	case "rocm":
		return "AMD GPU (XLA's ROCm plugin)"
	case "tpu":
		return "TPU"
	case "go":
		return "CPU (GoMLX's Go backend)"
	}
	return kind
}

// presetRank orders the report's sections: the small preset first, then the paper's.
func presetRank(p string) int {
	switch p {
	case "cpu":
		return 0
	case "paper":
		return 1
	}
	return 2
}

// findStudyFolders returns every folder holding a study.json in or under the roots.
func findStudyFolders(roots []string) ([]string, error) {
	seen := map[string]bool{}
	var dirs []string
	for _, root := range roots {
		info, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", root, err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%s is not a folder", root)
		}
		err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "runs" && p != root {
				return fs.SkipDir // a study's run files, not another study
			}
			if !e.IsDir() && e.Name() == "study.json" {
				dir := filepath.Dir(p)
				key, _ := filepath.Abs(dir)
				if !seen[key] {
					seen[key] = true
					dirs = append(dirs, dir)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no published study (study.json) in or under %s: run the study command first", strings.Join(roots, ", "))
	}
	sort.Strings(dirs)
	return dirs, nil
}

// loadSource reads one published study folder: its runs, and its speeds where they were
// measured on the kind of backend the run was trained on.
func loadSource(dir string) (*studySource, []*runRecord, []string, error) {
	s := &studySource{dir: dir}
	path := filepath.Join(dir, "study.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s is not a published study (%v): run the study command first", dir, err)
	}
	if err := json.Unmarshal(raw, &s.study); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	var problems []string
	var records []*runRecord
	if info, err := os.Stat(filepath.Join(dir, "runs")); err == nil && info.IsDir() {
		var err error
		records, problems, err = readRecordsChecked([]string{filepath.Join(dir, "runs")})
		if err != nil && len(records) == 0 {
			problems = append(problems, err.Error())
		}
	}
	for _, f := range []struct {
		name, what string
		into       any
	}{{"speed.json", "inference speeds", &s.speed}, {"steps.json", "interleaved step times", &s.steps}} {
		p := filepath.Join(dir, f.name)
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, nil, nil, err
		}
		if err := json.Unmarshal(raw, f.into); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v (no %s)", p, err, f.what))
		}
	}
	var kept []*runRecord
	for _, r := range records {
		if r.metrics.Preset != s.study.Preset {
			problems = append(problems, fmt.Sprintf("%s is a run of the %s preset, not %s", r.path, r.metrics.Preset, s.study.Preset))
			continue
		}
		r.source = dir
		if s.speed != nil {
			if rates, ok := s.speed.Rates[filepath.Base(filepath.Dir(r.path))]; ok {
				if backendKind(s.speed.Backend) == backendKind(r.metrics.Backend) {
					r.speed, r.speedSrc = rates, dir
				} else {
					problems = append(problems, fmt.Sprintf("%s: inference speed measured on %s, the run trained on %s: not used",
						r.path, backendKind(s.speed.Backend), backendKind(r.metrics.Backend)))
				}
			}
		}
		kept = append(kept, r)
	}
	return s, kept, problems, nil
}

// loadReproduction reads every published study in or under roots and groups their runs into
// sections; reportPath is the report to be written (its plots go beside it, in
// reproduction/<section>).
func loadReproduction(roots []string, reportPath string) (*reproduction, error) {
	dirs, err := findStudyFolders(roots)
	if err != nil {
		return nil, err
	}
	rp := &reproduction{roots: roots, reportDir: filepath.Dir(reportPath)}
	byKey := map[string]*studyData{}
	var keys []string
	records := map[*studySource][]*runRecord{}
	for _, dir := range dirs {
		s, recs, problems, err := loadSource(dir)
		if err != nil {
			return nil, err
		}
		rp.sources = append(rp.sources, s)
		records[s] = recs
		var sections []*studyData
		for _, r := range recs {
			key := r.metrics.Preset + "|" + backendKind(r.metrics.Backend) + "|" + canonicalJSON(r.metrics.Config, nil)
			d := byKey[key]
			if d == nil {
				d = &studyData{preset: r.metrics.Preset, kind: backendKind(r.metrics.Backend), byRun: map[int]map[int64]*runRecord{}}
				byKey[key] = d
				keys = append(keys, key)
			}
			if !slices.Contains(sections, d) {
				sections = append(sections, d)
			}
			m := r.metrics
			if d.byRun[m.Run] == nil {
				d.byRun[m.Run] = map[int64]*runRecord{}
			}
			if old := d.byRun[m.Run][m.Seed]; old != nil {
				d.problems = append(d.problems, fmt.Sprintf("%s repeats run %d, seed %d of %s (same preset, recipe and backend): the first is used",
					rp.rel(r.path), m.Run, m.Seed, rp.rel(old.path)))
				continue
			}
			d.byRun[m.Run][m.Seed] = r
			d.records = append(d.records, r)
		}
		if len(sections) == 0 { // no usable run: the folder still counts for its grid
			kind := "unknown"
			if n := len(s.study.Invocations); n > 0 {
				kind = backendKind(s.study.Invocations[n-1].Backend)
			}
			for _, key := range keys {
				if d := byKey[key]; d.preset == s.study.Preset && d.kind == kind {
					sections = append(sections, d)
				}
			}
			if len(sections) == 0 {
				rp.problems = append(rp.problems, fmt.Sprintf("%s (the %s preset on %s) holds no usable run yet", rp.rel(dir), s.study.Preset, kind))
			}
		}
		for _, d := range sections {
			d.sources = append(d.sources, s)
			for _, p := range problems {
				d.problems = appendNew(d.problems, p)
			}
		}
		if len(sections) == 0 {
			rp.problems = append(rp.problems, problems...)
		}
	}
	for _, key := range keys {
		rp.sections = append(rp.sections, byKey[key])
	}
	for _, d := range rp.sections {
		d.finish(rp)
	}
	// Section order and names: by preset, then the most runs first; a preset's first section
	// is named after it, the others after it and their backend.
	sort.SliceStable(rp.sections, func(i, j int) bool {
		a, b := rp.sections[i], rp.sections[j]
		if presetRank(a.preset) != presetRank(b.preset) {
			return presetRank(a.preset) < presetRank(b.preset)
		}
		if a.preset != b.preset {
			return a.preset < b.preset
		}
		return len(a.records) > len(b.records)
	})
	used := map[string]bool{}
	for _, d := range rp.sections {
		slug := d.preset
		if used[slug] {
			slug = d.preset + "-" + d.kind
		}
		for k := 2; used[slug]; k++ {
			slug = fmt.Sprintf("%s-%s-%d", d.preset, d.kind, k)
		}
		used[slug] = true
		d.slug = slug
		d.plotDir = filepath.Join(rp.reportDir, "reproduction", slug)
		d.plotLink = "reproduction/" + slug
	}
	if len(rp.sections) == 0 {
		return nil, fmt.Errorf("no usable run in %s", strings.Join(dirs, ", "))
	}
	return rp, nil
}

// finish sets the section's grid, its step-time files and the grid points it lacks.
func (d *studyData) finish(rp *reproduction) {
	runSet := map[int]bool{}
	for _, s := range d.sources {
		for _, seed := range s.study.Seeds {
			if !slices.Contains(d.seeds, seed) {
				d.seeds = append(d.seeds, seed)
			}
		}
		for _, run := range s.study.Runs {
			runSet[run] = true
		}
		if s.steps != nil && backendKind(s.steps.Backend) == d.kind {
			d.stepFiles = append(d.stepFiles, stepSource{s.dir, s.steps})
		}
	}
	for _, r := range d.records {
		runSet[r.metrics.Run] = true
		if !slices.Contains(d.seeds, r.metrics.Seed) {
			d.seeds = append(d.seeds, r.metrics.Seed)
		}
	}
	for run := range runSet {
		d.runs = append(d.runs, run)
	}
	slices.Sort(d.runs)
	for _, f := range d.stepFiles {
		if d.steps == nil || len(f.file.Seconds) > len(d.steps.Seconds) ||
			len(f.file.Seconds) == len(d.steps.Seconds) && f.file.Rounds > d.steps.Rounds {
			d.steps = f.file
		}
	}
	for _, s := range d.sources {
		for _, run := range s.study.Runs {
			for _, seed := range s.study.Seeds {
				if d.byRun[run][seed] == nil {
					d.problems = appendNew(d.problems, fmt.Sprintf("run %d, seed %d (%s): no usable metrics.json (not trained yet, or skipped above)", run, seed, rp.rel(s.dir)))
				}
			}
		}
	}
}

// rel names a path relative to the report's folder.
func (rp *reproduction) rel(path string) string {
	base, err1 := filepath.Abs(rp.reportDir)
	abs, err2 := filepath.Abs(path)
	if err1 == nil && err2 == nil {
		if r, err := filepath.Rel(base, abs); err == nil {
			return filepath.ToSlash(r)
		}
	}
	return filepath.ToSlash(path)
}

// measure is one figure of a run; ok is false when the run lacks it.
type measure struct {
	name, unit   string
	higherBetter bool
	get          func(r *runRecord) (float64, bool)
	// stepTime: the measure is steps.json's interleaved step times, paired by round, not a
	// figure of each run (runs trained one after another see different machine load).
	stepTime bool
	// source, when set, names the measurement a run's value comes from: two runs pair only
	// when it is the same (speeds measured in one process, interleaved).
	source func(r *runRecord) string
}

// claim is one of the paper's quantitative claims: configuration run against run 0 on m.
type claim struct {
	text     string
	paper    string  // the paper's figure, as it states it
	paperPct float64 // the paper's change from run 0, in percent (sign: direction; never 0)
	run      int
	m        measure
	note     string // what the measure is here, where it departs from the paper's
	caveat   string // for the verdict, where our measure is not the paper's quantity
}

func analysisMeasure(name string, higher bool, f func(*results.Analysis) float64) measure {
	return measure{name: name, higherBetter: higher, get: func(r *runRecord) (float64, bool) {
		if r.analysis == nil {
			return 0, false
		}
		return f(r.analysis), true
	}}
}

var (
	measureVal   = measure{name: "final validation loss", get: func(r *runRecord) (float64, bool) { return r.metrics.FinalValLoss, true }}
	measureBest  = measure{name: "best validation loss", get: func(r *runRecord) (float64, bool) { return r.metrics.BestValLoss, true }}
	measureTrain = measure{name: "final training loss", get: func(r *runRecord) (float64, bool) { return r.metrics.FinalTrainLoss, true }}
	measureVar   = measure{name: "training-loss variance, final 20% of iterations", get: func(r *runRecord) (float64, bool) { return float64(r.metrics.FinalLossVariance), true }}
	measureSpeed = measure{name: "inference tokens/s", higherBetter: true, get: func(r *runRecord) (float64, bool) {
		if len(r.speed) == 0 {
			return 0, false
		}
		return stat.Mean(r.speed, nil), true
	}, source: func(r *runRecord) string { return r.speedSrc }}
)

// convergenceThreshold is the training-loss threshold of the convergence claim: the paper's 1.0
// when every run's smoothed loss reaches it, else the lowest of results.DefaultThresholds that every run
// reaches (ok false when none is).
func (d *studyData) convergenceThreshold() (float64, bool) {
	ths, _ := results.ParseThresholds(results.DefaultThresholds)
	slices.Sort(ths)
	for _, th := range ths {
		all := true
		for _, r := range d.records {
			all = all && results.ItersToThresholds(r.metrics.IterLoss, []float64{th})[0].Iter != nil
		}
		if all {
			return th, true
		}
	}
	return 0, false
}

func itersMeasure(th float64) measure {
	return measure{name: fmt.Sprintf("iterations to smoothed training loss < %g", th), get: func(r *runRecord) (float64, bool) {
		it := results.ItersToThresholds(r.metrics.IterLoss, []float64{th})[0].Iter
		if it == nil {
			return 0, false
		}
		return float64(*it), true
	}}
}

// overheadClaim is the training-time claim: on the interleaved step times when the section has
// them, else on each run's own training time.
func (d *studyData) overheadClaim() claim {
	c := claim{text: "Training-time overhead of SMI", paper: "about 4.5%", paperPct: 4.5, run: 5}
	if d.steps != nil {
		c.m = measure{name: "seconds per training step", stepTime: true, get: func(*runRecord) (float64, bool) { return 0, false }}
		c.note = fmt.Sprintf("every configuration's training step (forward, backward, clipping, SMI, AdamW) timed in one process, %d interleaved rounds of %d steps in rotating order, paired by round (n below counts rounds); %s",
			d.steps.Rounds, d.steps.StepsPerRound, "the runs' own training times, measured one run after another, are in the table of losses")
		return c
	}
	c.m = measure{name: "training time (s)", get: func(r *runRecord) (float64, bool) { return r.metrics.TrainSeconds, true }}
	c.note = "seconds of training steps, excluding evaluation and checkpoints, as each run measured them; runs did not run side by side, so machine load between runs adds to the spread"
	return c
}

// stepsFor returns the step-time file that measured run and run 0 in one process: the
// section's main one when it did, else the one with the most rounds; nil when none did.
func (d *studyData) stepsFor(run int) *stepFile {
	has := func(f *stepFile) bool {
		return len(f.Seconds[fmt.Sprintf("run%d", run)]) > 0 && len(f.Seconds["run0"]) > 0
	}
	if d.steps != nil && has(d.steps) {
		return d.steps
	}
	var best *stepFile
	for _, f := range d.stepFiles {
		if has(f.file) && (best == nil || f.file.Rounds > best.Rounds) {
			best = f.file
		}
	}
	return best
}

// compareClaim compares the claim's measure of configuration run with run 0.
func (d *studyData) compareClaim(c claim, run int) comparison {
	if c.m.stepTime {
		f := d.stepsFor(run)
		if f == nil {
			cmp := pairedComparison(run, nil, nil, nil, nil)
			cmp.pairs = "interleaved rounds"
			return cmp
		}
		x, b := f.Seconds[fmt.Sprintf("run%d", run)], f.Seconds["run0"]
		n := min(len(x), len(b))
		cmp := pairedComparison(run, x, b, x[:n], b[:n])
		cmp.pairs = "interleaved rounds"
		return cmp
	}
	return d.compare(run, c.m)
}

func (d *studyData) claims() []claim {
	th, reached := d.convergenceThreshold()
	conv := itersMeasure(th)
	convNote := fmt.Sprintf("the paper's threshold is 1.0; this preset's smoothed training loss does not reach it in every run, so the lowest of %s that every run reaches is used", results.DefaultThresholds)
	if th == 1 {
		convNote = "the paper's threshold"
	}
	if !reached {
		conv = measure{name: "iterations to a training-loss threshold", get: func(*runRecord) (float64, bool) { return 0, false }}
		convNote = fmt.Sprintf("no threshold of %s is reached by every run", results.DefaultThresholds)
	}
	convergence := claim{text: "Faster convergence", paper: "8% fewer iterations to train loss < 1.0 (run 4)", paperPct: -8, run: 4, m: conv, note: convNote}
	if reached && th != 1 {
		convergence.caveat = fmt.Sprintf("Measured to a smoothed training loss below %g, not the paper's 1.0, which this preset does not reach in every run.", th)
	}
	return []claim{
		{text: "Inference speed-up of SMI models", paper: "12-15% (run 5: 15%)", paperPct: 15, run: 5, m: measureSpeed,
			note: "characters generated per second by the final model, all models interleaved in one process with one compiled program"},
		d.overheadClaim(),
		convergence,
		{text: "Lower loss variance in the final iterations", paper: "43.5% lower (run 5)", paperPct: -43.5, run: 5, m: measureVar,
			note: "sample variance of the per-iteration training loss over the final 20% of iterations (the paper: its final 1,000 of 5,000)"},
		{text: "Higher activation sparsity", paper: "33.3% higher", paperPct: 33.3, run: 5, m: analysisMeasure("MLP activation sparsity", true, func(a *results.Analysis) float64 { return a.MLPSparsity }),
			note: "the paper names no run; run 5, its recommended configuration, is used here and below"},
		{text: "Higher attention sparsity", paper: "34.8% higher", paperPct: 34.8, run: 5, m: analysisMeasure("attention sparsity", true, func(a *results.Analysis) float64 { return a.AttentionSparsity })},
		{text: "Lower variance of spectral norms across layers", paper: "28.9% lower", paperPct: -28.9, run: 5,
			m: analysisMeasure("spectral-norm variance across layers", false, func(a *results.Analysis) float64 { return a.SpectralNormVarianceAcrossLayers })},
		{text: "Lower condition numbers", paper: "18.1% lower", paperPct: -18.1, run: 5,
			m: analysisMeasure("condition number (geometric mean)", false, func(a *results.Analysis) float64 { return a.ConditionNumberGeoMean })},
		{text: "Lower variance of parameter magnitudes", paper: "8.8% lower", paperPct: -8.8, run: 5,
			m: analysisMeasure("variance of parameter magnitudes", false, func(a *results.Analysis) float64 { return a.ParamMagnitudeVariance })},
		{text: "Fewer effectively active parameters", paper: "6.4% fewer", paperPct: -6.4, run: 5,
			m: analysisMeasure("effectively active parameters", false, func(a *results.Analysis) float64 { return a.ActiveFraction })},
	}
}

// comparison is configuration run against run 0 on one measure, seed by seed.
type comparison struct {
	run                  int
	pairs                string // what pairs: "seeds", or "rounds" of the step timing
	n                    int    // seeds with both values
	x, base              []float64
	mean, lo, hi         float64 // configuration run, all its seeds
	baseMean             float64 // run 0, all its seeds
	diff, diffLo, diffHi float64 // paired differences
	pct, pctLo, pctHi    float64 // diff as % of run 0's mean over the same seeds
	pT, pW, pWelch, dz   float64
	mde, mdePct          float64 // smallest difference detectable with 80% power (paired t, 5%)
}

func (d *studyData) values(run int, m measure) (map[int64]float64, []float64) {
	byseed := map[int64]float64{}
	var all []float64
	for _, seed := range d.seeds {
		if r := d.byRun[run][seed]; r != nil {
			if v, ok := m.get(r); ok && !math.IsNaN(v) {
				byseed[seed] = v
				all = append(all, v)
			}
		}
	}
	return byseed, all
}

// allValues is every value of configuration run on m: one per seed, or per round of the step
// timing for the step-time measure.
func (d *studyData) allValues(run int, m measure) []float64 {
	if m.stepTime {
		if d.steps == nil {
			return nil
		}
		return d.steps.Seconds[fmt.Sprintf("run%d", run)]
	}
	_, xs := d.values(run, m)
	return xs
}

// hasValues reports whether some configuration has a value of m (and so an interval plot).
func (d *studyData) hasValues(m measure) bool {
	for _, run := range d.runs {
		if len(d.allValues(run, m)) > 0 {
			return true
		}
	}
	return false
}

// pairable reports whether runs a and b of one seed may be compared on m: trained on the same
// kind of backend (a CPU and a GPU run of a seed start alike but do not train alike, see
// docs/SHAKESPEARE.md), and measured in the same process for measures that name their source.
func pairable(a, b *runRecord, m measure) bool {
	if backendKind(a.metrics.Backend) != backendKind(b.metrics.Backend) {
		return false
	}
	return m.source == nil || m.source(a) == m.source(b)
}

func (d *studyData) compare(run int, m measure) comparison {
	_, xall := d.values(run, m)
	_, ball := d.values(0, m)
	var xp, bp []float64
	for _, seed := range d.seeds {
		xr, br := d.byRun[run][seed], d.byRun[0][seed]
		if xr == nil || br == nil || !pairable(xr, br, m) {
			continue
		}
		x, okx := m.get(xr)
		b, okb := m.get(br)
		if okx && okb && !math.IsNaN(x) && !math.IsNaN(b) {
			xp, bp = append(xp, x), append(bp, b)
		}
	}
	return pairedComparison(run, xall, ball, xp, bp)
}

// pairedComparison compares configuration run (all its values xall) with run 0 (ball), and
// pair by pair (xp[i] with bp[i]).
func pairedComparison(run int, xall, ball, xp, bp []float64) comparison {
	c := comparison{run: run, x: xp, base: bp, n: len(xp), pairs: "seeds"}
	diffs := make([]float64, len(xp))
	for i := range xp {
		diffs[i] = xp[i] - bp[i]
	}
	c.mean, c.lo, c.hi = stats.MeanCI95(xall)
	if len(xall) == 0 {
		c.mean = math.NaN()
	}
	c.baseMean = math.NaN()
	if len(ball) > 0 {
		c.baseMean = stat.Mean(ball, nil)
	}
	c.pWelch = stats.Welch(xall, ball)
	if c.n == 0 {
		c.diff, c.diffLo, c.diffHi, c.pct, c.pctLo, c.pctHi = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		c.pT, c.pW, c.dz, c.mde, c.mdePct = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return c
	}
	c.diff, c.diffLo, c.diffHi = stats.MeanCI95(diffs)
	pairedBase := math.Abs(stat.Mean(bp, nil))
	c.pct, c.pctLo, c.pctHi = 100*c.diff/pairedBase, 100*c.diffLo/pairedBase, 100*c.diffHi/pairedBase
	c.pT, c.pW = stats.PairedT(diffs), stats.WilcoxonSignedRank(diffs)
	c.dz, c.mde, c.mdePct = math.NaN(), math.NaN(), math.NaN()
	if c.n >= 2 {
		sd := stat.StdDev(diffs, nil)
		c.dz = c.diff / sd
		c.mde = stats.MinDetectable(c.n, sd)
		c.mdePct = 100 * c.mde / pairedBase
	}
	return c
}

const (
	verdictReproduced  = "reproduced"
	verdictDirection   = "direction only"
	verdictNotDetected = "not detected"
	verdictOpposite    = "opposite"
	verdictScale       = "not measurable here"
)

// classify is the verdict on a claim with a number: our 95% interval [lo, hi] of the paired
// change against the paper's value (both in percent of run 0; the paper's sign is the claim's
// direction).
//
//   - reproduced: the paper's value lies inside our interval (a bound counts as inside), and
//     the interval excludes 0 on the paper's side;
//   - direction only: the interval excludes 0 on the paper's side, and the paper's value too;
//   - not detected: the interval contains 0 (a bound at 0 counts as containing it);
//   - opposite: the interval excludes 0 on the other side;
//   - not measurable: no interval (fewer than two pairs), or a claim without a direction.
func classify(lo, hi, paperPct float64) string {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsNaN(paperPct) || paperPct == 0 {
		return verdictScale
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	switch {
	case lo <= 0 && 0 <= hi:
		return verdictNotDetected
	case (lo > 0) != (paperPct > 0):
		return verdictOpposite
	case lo <= paperPct && paperPct <= hi:
		return verdictReproduced
	default:
		return verdictDirection
	}
}

// verdict judges a comparison against the paper's value (see classify), with a sentence of why.
func verdict(c comparison, paperPct float64, m measure, inStudy bool) (string, string) {
	if !inStudy {
		return verdictScale, fmt.Sprintf("Run %d is not part of this study.", c.run)
	}
	if c.n < 2 || math.IsNaN(c.pctLo) {
		if c.n == 0 {
			return verdictScale, fmt.Sprintf("No seed has both run %d and run 0 measured on %s.", c.run, m.name)
		}
		return verdictScale, fmt.Sprintf("Both runs are measured for only %d of the %s: no interval is possible.", c.n, c.pairs)
	}
	v := classify(c.pctLo, c.pctHi, paperPct)
	both := fmt.Sprintf("Ours %s%%, paper %s%%", fmtPct(c.pct), fmtPct(paperPct))
	n := fmt.Sprintf("%d %s", c.n, c.pairs)
	switch v {
	case verdictReproduced:
		return v, fmt.Sprintf("%s: the paper's value lies inside our interval, which excludes 0 (paired p = %s, %s).", both, stats.Format(c.pT), n)
	case verdictDirection:
		size := "smaller"
		if math.Abs(c.pct) > math.Abs(paperPct) {
			size = "larger"
		}
		return v, fmt.Sprintf("%s: the same direction and clearly not 0 (paired p = %s, %s), but the paper's value lies outside our interval: the change here is %s than the paper's.",
			both, stats.Format(c.pT), n, size)
	case verdictNotDetected:
		paper := "the paper's value lies inside it too, so neither is ruled out"
		if paperPct < math.Min(c.pctLo, c.pctHi) || paperPct > math.Max(c.pctLo, c.pctHi) {
			paper = "it excludes the paper's value, so a change as large as the paper's is ruled out at this scale"
		}
		return v, fmt.Sprintf("%s: our interval contains 0 (paired p = %s); %s. With %s a change of %.1f%% would have been detected with 80%% power.",
			both, stats.Format(c.pT), paper, n, c.mdePct)
	default: // opposite
		return v, fmt.Sprintf("%s: our interval excludes 0 on the other side (paired p = %s, %s).", both, stats.Format(c.pT), n)
	}
}

// fmtPctCI formats a percentage and, when lo is a number, its interval: "+1.2% (-0.3 to +2.7)".
func fmtPctCI(x, lo, hi float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	if math.IsNaN(lo) {
		return fmtPct(x) + "%"
	}
	return fmt.Sprintf("%s%% (%s to %s)", fmtPct(x), fmtPct(lo), fmtPct(hi))
}

func fmtPct(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f", x)
}

// qualitative is a ranking claim: run is the best configuration on m (or, for run 1, worse
// than run 0).
type qualitative struct {
	text string
	run  int
	m    measure
}

var qualitativeClaims = []qualitative{
	{"Run 1 (alpha to 0.9) trains worse", 1, measureVal},
	{"Run 4 has the best losses", 4, measureVal},
	{"Run 5 has the best inference speed", 5, measureSpeed},
}

// ranking orders the configurations by their mean on m (best first) over the seeds that have
// every configuration (all pairable with run 0's), and gives each one's bootstrap probability
// of being the best.
func (d *studyData) ranking(m measure) (order []int, means map[int]float64, pBest map[int]float64, n int) {
	means, pBest = map[int]float64{}, map[int]float64{}
	var rows [][]float64
	for _, seed := range d.seeds {
		row := make([]float64, len(d.runs))
		ok := true
		first := d.byRun[d.runs[0]][seed]
		for j, run := range d.runs {
			r := d.byRun[run][seed]
			if r == nil || first == nil || !pairable(r, first, m) {
				ok = false
				break
			}
			v, has := m.get(r)
			ok = ok && has && !math.IsNaN(v)
			row[j] = v
		}
		if ok {
			rows = append(rows, row)
		}
	}
	if len(rows) == 0 {
		return nil, means, pBest, 0
	}
	for j, run := range d.runs {
		sum := 0.0
		for _, row := range rows {
			sum += row[j]
		}
		means[run] = sum / float64(len(rows))
		order = append(order, run)
	}
	sort.SliceStable(order, func(a, b int) bool {
		if m.higherBetter {
			return means[order[a]] > means[order[b]]
		}
		return means[order[a]] < means[order[b]]
	})
	for j, p := range stats.BootstrapRanks(rows, 10000, m.higherBetter) {
		pBest[d.runs[j]] = p
	}
	return order, means, pBest, len(rows)
}

// judgeQualitative judges a ranking claim; the rule is the one stated in the report: run 1 is
// worse than run 0 by a paired t-test at 5%; the best configuration in at least 95% of
// bootstrap resamples of the seeds; opposite when another configuration beats the claimed one
// by a paired t-test at 5%.
func (d *studyData) judgeQualitative(q qualitative) (string, string, string) {
	if !slices.Contains(d.runs, q.run) {
		return "n/a", verdictScale, fmt.Sprintf("Run %d is not part of this study.", q.run)
	}
	order, means, pBest, n := d.ranking(q.m)
	if n < 2 {
		return "n/a", verdictScale, fmt.Sprintf("Fewer than two seeds have every configuration measured on %s.", q.m.name)
	}
	var rank []string
	for i, run := range order {
		rank = append(rank, fmt.Sprintf("%d. run %d (%s, P(best) %.2f)", i+1, run, stats.Format(means[run]), pBest[run]))
	}
	ranking := strings.Join(rank, "; ")
	if q.run == 1 { // worse than run 0, seed by seed
		c := d.compare(1, q.m)
		worse := c.diff > 0 != q.m.higherBetter
		switch {
		case math.IsNaN(c.pT):
			return ranking, verdictScale, "Too few seeds for a paired test."
		case c.pT < 0.05 && worse:
			return ranking, verdictReproduced, fmt.Sprintf("Run 1's %s is worse than run 0's by %s (%s%%), paired p = %s.", q.m.name, stats.Format(math.Abs(c.diff)), fmtPct(c.pct), stats.Format(c.pT))
		case c.pT < 0.05:
			return ranking, verdictOpposite, fmt.Sprintf("Run 1's %s is better than run 0's by %s%%, paired p = %s.", q.m.name, fmtPct(c.pct), stats.Format(c.pT))
		default:
			return ranking, verdictNotDetected, fmt.Sprintf("Run 1 against run 0: %s%% on %s, paired p = %s (detectable with 80%% power: %.1f%%).", fmtPct(c.pct), q.m.name, stats.Format(c.pT), c.mdePct)
		}
	}
	best := order[0]
	if best == q.run && pBest[q.run] >= 0.95 {
		return ranking, verdictReproduced, fmt.Sprintf("Run %d is the best on %s in %.0f%% of bootstrap resamples of the seeds.", q.run, q.m.name, 100*pBest[q.run])
	}
	// Is some configuration better than the claimed one, seed by seed?
	for _, other := range order {
		if other == q.run {
			break
		}
		d2 := d.pairedBetween(other, q.run, q.m)
		if d2.n >= 2 && d2.p < 0.05 {
			return ranking, verdictOpposite, fmt.Sprintf("Run %d is better than run %d on %s, paired p = %s.", other, q.run, q.m.name, stats.Format(d2.p))
		}
	}
	return ranking, verdictNotDetected, fmt.Sprintf("Run %d ranks %d of %d and is the best in %.0f%% of bootstrap resamples; no configuration differs from it detectably.",
		q.run, slices.Index(order, q.run)+1, len(order), 100*pBest[q.run])
}

type pairResult struct {
	n int
	p float64
}

// pairedBetween tests configurations a and b against each other, seed by seed.
func (d *studyData) pairedBetween(a, b int, m measure) pairResult {
	var diffs []float64
	for _, seed := range d.seeds {
		ra, rb := d.byRun[a][seed], d.byRun[b][seed]
		if ra == nil || rb == nil || !pairable(ra, rb, m) {
			continue
		}
		x, okx := m.get(ra)
		y, oky := m.get(rb)
		if okx && oky {
			diffs = append(diffs, x-y)
		}
	}
	return pairResult{len(diffs), stats.PairedT(diffs)}
}

// writeReproduction writes the report at path, from the published studies in or under roots,
// and each section's plots in reproduction/<section> beside it.
func writeReproduction(roots []string, path string) error {
	rp, err := loadReproduction(roots, path)
	if err != nil {
		return err
	}
	md := rp.markdown()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := results.WriteFileAtomic(path, []byte(md)); err != nil {
		return err
	}
	for _, d := range rp.sections {
		if err := os.MkdirAll(d.plotDir, 0o755); err != nil {
			return err
		}
		if err := reproductionPlots(d, d.plotDir); err != nil {
			return fmt.Errorf("plotting: %w", err)
		}
		for _, p := range d.problems {
			fmt.Fprintf(os.Stderr, "note (%s): %s\n", d.slug, p)
		}
	}
	for _, p := range rp.problems {
		fmt.Fprintf(os.Stderr, "note: %s\n", p)
	}
	return nil
}

// plotNames are the report's plots, written in each section's plot folder.
const (
	plotTrainCurves = "loss_train.png"
	plotTrainDiff   = "loss_train_minus_run0.png"
	plotValCurves   = "loss_val.png"
	plotClaims      = "claims.png"
)

func plotFile(m measure) string {
	return "interval_" + strings.NewReplacer(" ", "_", "/", "_", "%", "pct", ",", "", "(", "", ")", "", "<", "lt", ".", "_").Replace(m.name) + ".png"
}

// nanoGPTBestVal is nanoGPT's best validation loss for the paper's model and recipe (its
// README: one A100, about 3 minutes).
const nanoGPTBestVal = 1.4697

// scale names a section's scale for the claims table: preset, model size, backend.
func (d *studyData) scale() string {
	s := fmt.Sprintf("`%s` (%s params, %s)", d.preset, fmtParams(d.records[0].metrics.Params), d.kindShort())
	return s
}

func (d *studyData) kindShort() string {
	switch d.kind {
	case "cpu", "go":
		return "CPU"
	case "cuda", "rocm":
		return "GPU"
	}
	return d.kind
}

func fmtParams(n int) string {
	if n >= 1e6 {
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0fk", float64(n)/1e3)
}

// title is the section's heading.
func (d *studyData) title() string {
	return fmt.Sprintf("The `%s` preset on %s", d.preset, kindName(d.kind))
}

func (d *studyData) qualitativeTitle() string {
	return fmt.Sprintf("The qualitative claims (`%s`)", d.slug)
}

// anchor is GitHub's link target for a heading.
func anchor(title string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			sb.WriteRune(r)
		case r == ' ':
			sb.WriteRune('-')
		}
	}
	return sb.String()
}

func (rp *reproduction) hasPaper() bool {
	for _, d := range rp.sections {
		if d.preset == "paper" {
			return true
		}
	}
	return false
}

// pieceRecipe is how the paper preset's study is run in pieces on a GPU machine.
const pieceRecipe = "```sh\n" +
	"# on the GPU machine (any subset of runs x seeds; each piece gets its own folder):\n" +
	"make study PRESET=paper DEVICE=cuda RUNS=0,5 SEEDS=1337\n" +
	"#   -> docs/reproduction/paper/cuda-runs0_5-seeds1337/ (study.json, speed.json, steps.json,\n" +
	"#      runs/<name>/metrics.json and analysis.json: a few hundred kB, no checkpoints)\n" +
	"# bring that folder back into docs/reproduction/paper/ here, then, without training:\n" +
	"make study REPORT_ONLY=1\n" +
	"```\n"

func (rp *reproduction) markdown() string {
	var sb strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	var roots []string
	for _, r := range rp.roots {
		roots = append(roots, "`"+rp.rel(r)+"/`")
	}
	w("# Reproducing the paper's experiment\n\n")
	w("Generated by `shakespeare study` from the published result files in %s (each run's `metrics.json` and `analysis.json`, and each study folder's `study.json`, `speed.json` and `steps.json`); ", strings.Join(roots, ", "))
	w("`make study REPORT_ONLY=1`, or `shakespeare report -from FOLDER,FOLDER...`, regenerates it without training, merging every study folder found there. Do not edit by hand.\n\n")
	w("The paper (Huang, Chen and Zheng, 2025) trains nanoGPT's character-level GPT on tiny Shakespeare with AdamW alone (run 0) and with SMI in five configurations (runs 1-5; see [ALGORITHM.md](ALGORITHM.md) and [SHAKESPEARE.md](SHAKESPEARE.md)): ")
	w("the `paper` preset, 6 layers, 6 heads, 384-dim embeddings, context 256, batch 64, dropout 0.2, 5,000 iterations, about 10.7 million parameters, 2 seeds per configuration, no intervals. Measured here:\n\n")
	for _, d := range rp.sections {
		cfg := d.records[0].metrics.Config
		w("- [%s](#%s): %d layers, %d heads, %d-dim embeddings, context %d, batch %d, %d iterations, %d parameters; runs %s x seeds %s.\n",
			d.title(), anchor(d.title()), cfg.NLayer, cfg.NHead, cfg.NEmbd, cfg.BlockSize, cfg.BatchSize, cfg.MaxIters, d.records[0].metrics.Params, joinInts(d.runs), joinInts(d.seeds))
	}
	if !rp.hasPaper() {
		w("- [The `paper` preset](#the-paper-preset): still to be measured on a GPU.\n")
	}
	w("\n")

	// The claims table.
	w("## The claims\n\n")
	w("Ours: the paired change of the SMI run the paper names from run 0, as a percentage of run 0's mean, with its 95%% confidence interval (Student's t over the pairs); p: two-sided paired t-test. Scale: the preset it was measured at, its parameter count and the hardware it trained on. Details, the distribution-free test and the unpaired figures follow below.\n\n")
	w("**The rule.** A claim with a number is judged by where the paper's value and 0 lie against our interval: ")
	w("*%s*: the paper's value lies inside our interval, and the interval excludes 0 on the paper's side; ", verdictReproduced)
	w("*%s*: the interval excludes 0 on the paper's side but also the paper's value (a real effect of another size: \"ours +18.9%%, paper +4.5%%\"); ", verdictDirection)
	w("*%s*: the interval contains 0; ", verdictNotDetected)
	w("*%s*: the interval excludes 0 on the other side; ", verdictOpposite)
	w("*%s*: fewer than two pairs, or the run is not in the study. ", verdictScale)
	w("A value exactly on a bound counts as inside the interval, so an interval that ends at 0 contains 0 (p = 0.05 exactly) and a paper's value on a bound is reproduced. A claim's direction is the sign of the paper's value: \"43.5%% lower\" is -43.5%%. For the range \"12-15%%\" the paper's figure for the run compared (15%%) is used. ")
	w("The qualitative claims keep their own rule: run 1 is worse than run 0 by a paired t-test at 5%% (*%s*; better: *%s*); the best configuration in at least 95%% of bootstrap resamples of the seeds (*%s*), beaten by another configuration by a paired t-test at 5%% (*%s*), else *%s*.\n\n",
		verdictReproduced, verdictOpposite, verdictReproduced, verdictOpposite, verdictNotDetected)
	w("| claim | scale | run | ours (paired, 95%% CI) | paper | p | verdict | why |\n|---|---|---|---|---|---|---|---|\n")
	claimsBy := map[*studyData][]claim{}
	for _, d := range rp.sections {
		claimsBy[d] = d.claims()
	}
	for i := range claimsBy[rp.sections[0]] {
		for _, d := range rp.sections {
			c := claimsBy[d][i]
			cmp := d.compareClaim(c, c.run)
			v, why := verdict(cmp, c.paperPct, c.m, slices.Contains(d.runs, c.run))
			if c.caveat != "" && v != verdictScale {
				why += " " + c.caveat
			}
			w("| %s | %s | %d | %s | %s | %s | **%s** | %s |\n", c.text, d.scale(), c.run, fmtPctCI(cmp.pct, cmp.pctLo, cmp.pctHi), c.paper, stats.Format(cmp.pT), v, why)
		}
	}
	for _, q := range qualitativeClaims {
		for _, d := range rp.sections {
			_, v, why := d.judgeQualitative(q)
			w("| %s | %s | %d | see [the ranking](#%s) | qualitative | | **%s** | %s |\n", q.text, d.scale(), q.run, anchor(d.qualitativeTitle()), v, why)
		}
	}
	if !rp.hasPaper() {
		w("| every claim | `paper` (10.7M params, GPU) | | | | | **still to be measured on a GPU** | See [the `paper` preset](#the-paper-preset). |\n")
	}
	for _, d := range rp.sections {
		w("\n![Paired changes from run 0, %s](%s/%s)\n", d.slug, d.plotLink, plotClaims)
	}
	w("\n")

	// Method.
	w("## How the comparison is made\n\n")
	w("- **Seeds pair.** A seed fixes the initial weights, the dropout stream and every batch, whatever the configuration, so configuration k and run 0 are compared seed by seed through the differences d = x_k - x_0. ")
	w("Runs pair only within a section: the same preset and recipe, trained on the same kind of backend. A CPU and a GPU run of one seed see the same batches and start from the same weights (to float32 rounding), but their arithmetic differs from the first step on, so their difference is the hardware's as much as SMI's; the report never pairs them (why, in [SHAKESPEARE.md](SHAKESPEARE.md#same-seed-pairs-across-machines)). ")
	w("Speeds pair only when measured in one process, step times only within one interleaved measurement.")
	if across := rp.acrossBackends(); across != "" {
		w(" Checked across backends: %s.", across)
	}
	w("\n")
	w("- **Tests.** Two-sided paired t-test of mean(d) = 0; Wilcoxon's signed-rank test (exact, distribution-free; with n pairs its smallest possible p is 2^(1-n): 0.0625 for 5 seeds, 0.5 for 2, so it can only corroborate); Welch's unpaired t-test for comparison. Effect size: d_z = mean(d)/sd(d). Level 5%%, no correction for the number of claims. The 95%% interval and the paired t-test agree: the interval excludes 0 exactly when p < 0.05.\n")
	w("- **Smallest detectable difference.** For a claim without a detectable difference: the true mean difference the paired t-test would detect with 80%% power at 5%%, taking the observed sd(d) as the truth, from the noncentral t distribution (power integrated numerically, solved by bisection).\n")
	w("- **Convergence.** Iterations until the smoothed training loss (%s) first falls below the paper's threshold, 1.0, where every run of the section reaches it; else the lowest of the thresholds %s that every run reaches.\n", results.SmoothingDoc, results.DefaultThresholds)
	w("- Nothing was tuned on these seeds: every setting is the paper's or the preset's. Definitions of every figure: [SHAKESPEARE.md](SHAKESPEARE.md).\n\n")

	for _, d := range rp.sections {
		d.sectionMarkdown(rp, w)
	}
	if !rp.hasPaper() {
		w("## The `paper` preset\n\n")
		w("Still to be measured on a GPU. The paper's own scale (about 10.7 million parameters, 5,000 iterations on batches of 64 x 256, dropout 0.2) takes minutes per run on a GPU and days on 2 CPU cores. ")
		w("The study runs in pieces, any subset of runs x seeds per machine, each piece publishing a small self-contained folder; this report merges every piece found under the folders it is made from, and this section then compares the final and best validation losses with nanoGPT's %.4f, counts the iterations to the paper's training-loss threshold 1.0, and measures the training-time overhead and the loss variance, saying what 2 seeds cannot decide.\n\n", nanoGPTBestVal)
		w("%s\nOn a machine without Go or network, carry the built command: see [SHAKESPEARE.md](SHAKESPEARE.md#the-study-study-make-study).\n\n", pieceRecipe)
	}

	// Provenance.
	w("## Provenance\n\n")
	w("Where each run trained, with what code and backend (from each result file's own record; \"not recorded\" for files published before runs carried it):\n\n")
	w("| section | runs | machine | accelerator | backend | code revision | trained (UTC) | folder |\n|---|---|---|---|---|---|---|---|\n")
	for _, d := range rp.sections {
		for _, g := range d.provenanceGroups() {
			w("| %s | %s | %s | %s | %s | %s | %s | `%s/` |\n", d.slug, g.runs, g.machine, g.accel, g.backend, g.revision, g.when, rp.rel(g.folder))
		}
	}
	w("\n")
	for _, s := range rp.sources {
		total := 0.0
		revs, commands := []string{}, []string{}
		for _, inv := range s.study.Invocations {
			total += inv.Seconds
			revs = appendNew(revs, inv.Revision)
			commands = appendNew(commands, "`"+inv.Command+"`")
		}
		w("- `%s/` (the `%s` preset, runs %s x seeds %s): %d invocations (a study resumes where it stopped), wall time %.1f hours in all",
			rp.rel(s.dir), s.study.Preset, joinInts(s.study.Runs), joinInts(s.study.Seeds), len(s.study.Invocations), total/3600)
		if n := len(s.study.Invocations); n > 0 {
			w(", from %s to %s", s.study.Invocations[0].Started, s.study.Invocations[n-1].Updated)
		}
		w("; code revisions %s; commands %s.", strings.Join(revs, ", "), strings.Join(commands, ", "))
		if s.steps != nil {
			w(" Training-step time: %d interleaved rounds of %d steps per configuration, measured %s on %s (%s).", s.steps.Rounds, s.steps.StepsPerRound, s.steps.Date, describeMachine(s.steps.Machine, ""), s.steps.Backend)
		}
		if s.speed != nil {
			w(" Inference speed: %d interleaved repetitions of %d characters per model, measured %s on %s.", s.speed.Reps, s.speed.Tokens, s.speed.Date, describeMachine(s.speed.Machine, ""))
		} else {
			w(" Inference speed: not measured (no speed.json).")
		}
		w("\n")
	}
	var problems []string
	for _, d := range rp.sections {
		for _, p := range d.problems {
			problems = append(problems, fmt.Sprintf("%s: %s", d.slug, p))
		}
	}
	problems = append(problems, rp.problems...)
	if len(problems) > 0 {
		w("\nNot counted:\n\n")
		for _, p := range problems {
			w("- %s\n", p)
		}
	}
	return sb.String()
}

// sectionMarkdown writes a section: its claims in detail, the qualitative claims, the losses.
func (d *studyData) sectionMarkdown(rp *reproduction, w func(string, ...any)) {
	cfg := d.records[0].metrics.Config
	var folders []string
	for _, s := range d.sources {
		folders = append(folders, "`"+rp.rel(s.dir)+"/`")
	}
	w("## %s\n\n", d.title())
	w("%d layers, %d heads, %d-dim embeddings, context %d, batch %d, dropout %g, %d iterations, %d parameters; runs %s x seeds %s; %d runs with usable metrics, from %s. Plots: `%s/`.\n\n",
		cfg.NLayer, cfg.NHead, cfg.NEmbd, cfg.BlockSize, cfg.BatchSize, cfg.Dropout, cfg.MaxIters, d.records[0].metrics.Params,
		joinInts(d.runs), joinInts(d.seeds), len(d.records), strings.Join(folders, ", "), d.plotLink)
	w("%s ", d.pairingCheck())
	th, reached := d.convergenceThreshold()
	switch {
	case reached && th == 1:
		w("Convergence: every run's smoothed training loss reaches the paper's threshold 1.0.\n\n")
	case reached:
		more := ""
		if d.preset != "paper" {
			more = "; lower losses need the `paper` preset"
		}
		w("Convergence: the paper's threshold, 1.0, is not reached by every run of this preset, so the lowest threshold every run reaches, %g, is used%s.\n\n", th, more)
	default:
		w("Convergence: no threshold of %s is reached by every run's smoothed training loss.\n\n", results.DefaultThresholds)
	}
	if d.preset == "paper" {
		d.paperSummary(w)
	}
	if n := len(d.seeds); n <= 3 {
		w("**With %d seeds, what cannot be concluded.** %s\n\n", n, fewSeeds(n))
	}

	// Claims in detail.
	claims := d.claims()
	w("### Claims in detail (`%s`)\n\nEvery SMI configuration against run 0; the row of the run the paper names is in bold. Mean and 95%% CI over all seeds of the configuration; paired figures over the seeds that have both.\n\n", d.slug)
	for _, c := range claims {
		w("#### %s (paper: %s)\n\n", c.text, c.paper)
		w("Measure: %s", c.m.name)
		if c.note != "" {
			w("; %s", c.note)
		}
		w(".\n\n| run | n | mean | 95%% CI | run 0 | paired diff (95%% CI) | change | p (paired t) | p (Wilcoxon) | d_z | p (Welch) | detectable (80%%) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, run := range d.runs {
			if run == 0 {
				continue
			}
			cmp := d.compareClaim(c, run)
			b := ""
			if run == c.run {
				b = "**"
			}
			w("| %s%d%s | %d | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s (%s) |\n", b, run, b, cmp.n, stats.Format(cmp.mean), fmtCI(cmp.lo, cmp.hi),
				stats.Format(cmp.baseMean), stats.Format(cmp.diff), fmtCI(cmp.diffLo, cmp.diffHi), fmtPctCI(cmp.pct, math.NaN(), math.NaN()), stats.Format(cmp.pT), stats.Format(cmp.pW), stats.Format(cmp.dz), stats.Format(cmp.pWelch),
				stats.Format(cmp.mde), fmtPctCI(cmp.mdePct, math.NaN(), math.NaN()))
		}
		if d.hasValues(c.m) {
			w("\n![%s](%s/%s)\n\n", c.m.name, d.plotLink, plotFile(c.m))
		} else {
			w("\n")
		}
	}

	// Qualitative claims.
	w("### %s\n\nConfigurations ranked by their mean over the seeds that have all of them; P(best): the fraction of 10,000 bootstrap resamples of those seeds (all configurations of a seed resampled together) in which the configuration has the best mean.\n\n", d.qualitativeTitle())
	w("| claim | measure | ranking (best first) | verdict |\n|---|---|---|---|\n")
	for _, q := range qualitativeClaims {
		ranking, v, why := d.judgeQualitative(q)
		w("| %s | %s | %s | **%s**: %s |\n", q.text, q.m.name, ranking, v, why)
	}
	w("\nThe losses of every configuration, and its runs' own training time (one run after another, so machine load differs between them):\n\n| run | name | n | final validation loss (95%% CI) | final training loss (95%% CI) | best validation loss | training time, s (95%% CI) |\n|---|---|---|---|---|---|---|\n")
	for _, run := range d.runs {
		_, vals := d.values(run, measureVal)
		_, trains := d.values(run, measureTrain)
		_, bests := d.values(run, measureBest)
		r, _ := results.LookupRun(run)
		_, secs := d.values(run, measure{get: func(r *runRecord) (float64, bool) { return r.metrics.TrainSeconds, true }})
		vm, vlo, vhi := stats.MeanCI95(vals)
		tm, tlo, thi := stats.MeanCI95(trains)
		sm, slo, shi := stats.MeanCI95(secs)
		w("| %d | %s | %d | %s (%s) | %s (%s) | %s | %s (%s) |\n", run, r.Name, len(vals), stats.Format(vm), fmtCI(vlo, vhi), stats.Format(tm), fmtCI(tlo, thi),
			stats.Format(stat.Mean(bests, nil)), stats.Format(sm), fmtCI(slo, shi))
	}
	w("\n![Training loss](%s/%s)\n\n![Validation loss](%s/%s)\n\n", d.plotLink, plotTrainCurves, d.plotLink, plotValCurves)
	w("The paired comparison drawn: each SMI configuration's smoothed training loss minus run 0's for the same seed.\n\n![Training loss minus run 0's](%s/%s)\n\n", d.plotLink, plotTrainDiff)

	if d.preset != "paper" {
		w("### What may depend on scale (`%s`)\n\n", d.slug)
		w("This preset trains a model of %d parameters for %d iterations on batches of %d x %d characters; the paper's trains about 10.7 million for 5,000 iterations on batches of 64 x 256, with dropout 0.2. ",
			d.records[0].metrics.Params, cfg.MaxIters, cfg.BatchSize, cfg.BlockSize)
		w("SMI's mask is a quantile over each weight matrix's spectrum, so matrices 3x narrower have fewer, coarser frequencies, and a run 2.5x shorter spends a larger share of it early in the alpha schedule. ")
		w("Every finding here may therefore depend on scale: the loss and convergence findings most, since SMI's effect on optimisation grows with its blend and history; the parameter analysis (sparsity, spectral norms, condition numbers) describes weights trained for fewer steps; the inference and training-time findings depend on the machine rather than on scale (a dense model's forward pass does the same arithmetic whatever its weights). ")
		w("The same command studies the `paper` preset unchanged, in pieces on GPU machines (see [the `paper` preset](#the-paper-preset)).\n\n")
	}
}

// fewSeeds says what a study with n seeds per configuration cannot decide.
func fewSeeds(n int) string {
	if n < 2 {
		return "With one seed per configuration there are no paired differences to test: every figure below is a single run, and no claim can be judged."
	}
	t := quantileT975(n - 1)
	return fmt.Sprintf("A 95%% interval over %d seeds is the mean ± %.1f standard errors (Student's t with %d degree%s of freedom), so an interval over seeds excludes 0 only for a change many times the seed-to-seed spread: "+
		"the paired t-test detects with 80%% power only a true change of %.1f standard deviations of the pair differences, and Wilcoxon's test cannot go below p = %s. "+
		"So a difference between configurations smaller than several times the seed-to-seed spread can be neither confirmed nor ruled out from these seeds, a verdict of *not detected* says little, and the ranking claims (run 4 best, run 5 fastest) cannot be decided. "+
		"What can be read: each run's losses against nanoGPT's, whether and when the paper's threshold is reached, and the training-step overhead, which is paired over interleaved timing rounds, not seeds.",
		n, t, n-1, plural(n-1), stats.MinDetectable(n, 1), stats.Format(math.Pow(2, 1-float64(n))))
}

func quantileT975(df int) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(df)}.Quantile(0.975)
}

// paperSummary is the paper preset's own table: each configuration's losses against nanoGPT's,
// the iterations to the paper's threshold, the loss variance and the step-time overhead.
func (d *studyData) paperSummary(w func(string, ...any)) {
	w("### Against nanoGPT and the paper (`%s`)\n\n", d.slug)
	w("Each seed's value, in the order of the seeds (%s); nanoGPT's best validation loss for this model and recipe is %.4f (PyTorch, one A100). Iterations: to a smoothed training loss below the paper's 1.0 (\"never\" when the run does not reach it). Step time: the interleaved measurement, paired by round.\n\n", joinInts(d.seeds), nanoGPTBestVal)
	w("| run | name | final validation loss | best validation loss | best minus nanoGPT's | iterations to < 1.0 | loss variance, final 20%% | step time vs run 0 (95%% CI) |\n|---|---|---|---|---|---|---|---|\n")
	over := d.overheadClaim()
	for _, run := range d.runs {
		var finals, bests, gaps, iters, vars []string
		for _, seed := range d.seeds {
			r := d.byRun[run][seed]
			if r == nil {
				continue
			}
			m := r.metrics
			finals = append(finals, stats.Format(m.FinalValLoss))
			bests = append(bests, stats.Format(m.BestValLoss))
			gaps = append(gaps, fmt.Sprintf("%+.4f", m.BestValLoss-nanoGPTBestVal))
			it := "never"
			if th := results.ItersToThresholds(m.IterLoss, []float64{1})[0].Iter; th != nil {
				it = fmt.Sprint(*th)
			}
			iters = append(iters, it)
			vars = append(vars, stats.Format(float64(m.FinalLossVariance)))
		}
		step := "(run 0)"
		if run != 0 {
			cmp := d.compareClaim(over, run)
			step = fmtPctCI(cmp.pct, cmp.pctLo, cmp.pctHi)
			if cmp.n > 0 && over.m.stepTime {
				step += fmt.Sprintf(", %d rounds", cmp.n)
			} else if cmp.n > 0 {
				step += fmt.Sprintf(", %d seeds", cmp.n)
			}
		}
		r, _ := results.LookupRun(run)
		j := func(xs []string) string {
			if len(xs) == 0 {
				return "n/a"
			}
			return strings.Join(xs, ", ")
		}
		w("| %d | %s | %s | %s | %s | %s | %s | %s |\n", run, r.Name, j(finals), j(bests), j(gaps), j(iters), j(vars), step)
	}
	w("\n")
}

// provGroup is runs of a section that share where, how and with what code they trained.
type provGroup struct {
	runs, machine, accel, backend, revision, when, folder string
}

func describeMachine(m results.Machine, accel string) string {
	s := fmt.Sprintf("%s, %d CPUs (%s, %s/%s)", m.Host, m.CPUs, m.CPU, m.OS, m.Arch)
	if accel != "" {
		s += ", " + accel
	}
	return s
}

// provenanceGroups groups the section's runs by folder, machine, accelerator, backend and code
// revision, in the order of the folders and seeds.
func (d *studyData) provenanceGroups() []provGroup {
	type key struct{ folder, machine, accel, backend, revision string }
	var keys []key
	names := map[key][]*runRecord{}
	for _, r := range d.records {
		k := key{folder: r.source, machine: describeMachine(r.metrics.Machine, ""), backend: r.metrics.Backend, revision: "not recorded", accel: "none"}
		if r.prov != nil {
			k.revision = r.prov.Revision
			if r.prov.Accelerator != "" {
				k.accel = r.prov.Accelerator
			}
		}
		if _, ok := names[k]; !ok {
			keys = append(keys, k)
		}
		names[k] = append(names[k], r)
	}
	var out []provGroup
	for _, k := range keys {
		rs := names[k]
		var runs []int
		var seeds []int64
		first, last := "", ""
		for _, r := range rs {
			if !slices.Contains(runs, r.metrics.Run) {
				runs = append(runs, r.metrics.Run)
			}
			if !slices.Contains(seeds, r.metrics.Seed) {
				seeds = append(seeds, r.metrics.Seed)
			}
			if f := r.metrics.FinishedUTC; first == "" || f < first {
				first = f
			}
			if f := r.metrics.FinishedUTC; f > last {
				last = f
			}
		}
		slices.Sort(runs)
		slices.SortStableFunc(seeds, func(a, b int64) int { return slices.Index(d.seeds, a) - slices.Index(d.seeds, b) })
		desc := fmt.Sprintf("runs %s x seeds %s", joinInts(runs), joinInts(seeds))
		if len(runs)*len(seeds) != len(rs) {
			var ns []string
			for _, r := range rs {
				ns = append(ns, fmt.Sprintf("run %d seed %d", r.metrics.Run, r.metrics.Seed))
			}
			desc = strings.Join(ns, ", ")
		}
		when := first
		if last != first {
			when = first + " to " + last
		}
		out = append(out, provGroup{runs: desc, machine: k.machine, accel: k.accel, backend: k.backend, revision: k.revision, when: when, folder: k.folder})
	}
	return out
}

// acrossBackends compares the first iteration's loss of runs of the same preset, recipe, run
// and seed trained on different kinds of backend: it depends only on the initial weights and the
// first batch, so it shows whether a seed starts alike on both. Empty when no run was trained on
// two kinds of backend.
func (rp *reproduction) acrossBackends() string {
	var lines []string
	for i, a := range rp.sections {
		for _, b := range rp.sections[i+1:] {
			if a.preset != b.preset || a.kind == b.kind || canonicalJSON(a.records[0].metrics.Config, nil) != canonicalJSON(b.records[0].metrics.Config, nil) {
				continue
			}
			n, equal, worst := 0, 0, 0.0
			for _, ra := range a.records {
				rb := b.byRun[ra.metrics.Run][ra.metrics.Seed]
				if rb == nil || len(ra.metrics.IterLoss) == 0 || len(rb.metrics.IterLoss) == 0 {
					continue
				}
				n++
				x, y := ra.metrics.IterLoss[0], rb.metrics.IterLoss[0]
				if x == y {
					equal++
				}
				worst = math.Max(worst, math.Abs(x-y)/math.Abs(x))
			}
			if n > 0 {
				lines = append(lines, fmt.Sprintf("the `%s` preset's first-iteration loss on %s and on %s, same run and seed: %d of %d identical, largest relative difference %.2g",
					a.preset, a.kind, b.kind, equal, n, worst))
			}
		}
	}
	return strings.Join(lines, "; ")
}

// pairingCheck says whether the first iteration's loss, which depends only on the seed's
// initial weights and first batch, is the same in every configuration of each seed.
func (d *studyData) pairingCheck() string {
	var bad []string
	checked := 0
	for _, seed := range d.seeds {
		first := math.NaN()
		for _, run := range d.runs {
			r := d.byRun[run][seed]
			if r == nil || len(r.metrics.IterLoss) == 0 {
				continue
			}
			checked++
			if math.IsNaN(first) {
				first = r.metrics.IterLoss[0]
			} else if r.metrics.IterLoss[0] != first {
				bad = append(bad, fmt.Sprintf("seed %d run %d", seed, run))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Sprintf("Check: the first iteration's loss differs within a seed for %s, so those pairs do not share their start.", strings.Join(bad, ", "))
	}
	return fmt.Sprintf("Checked in the data: the first iteration's loss is identical across the configurations of each seed (%d runs).", checked)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func fmtCI(lo, hi float64) string {
	if math.IsNaN(lo) {
		return "n/a"
	}
	return stats.Format(lo) + " to " + stats.Format(hi)
}

func joinInts[T int | int64](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}
