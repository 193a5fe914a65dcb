package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// The reproduction report: each of the paper's claims, the paper's figure beside ours, with
// paired tests over seeds and a verdict. It is made only from a study's published files
// (see study.go), so it regenerates without training.

// studyData is what a published study folder holds.
type studyData struct {
	dir      string
	study    studyFile
	speed    *speedFile
	steps    *stepFile
	records  []*runRecord
	problems []string // files skipped, and grid points without a usable run
	// byRun[run][seed]
	byRun map[int]map[int64]*runRecord
	seeds []int64 // the study's seeds, in its order
	runs  []int
}

func loadStudy(dir string) (*studyData, error) {
	d := &studyData{dir: dir, byRun: map[int]map[int64]*runRecord{}}
	raw, err := os.ReadFile(filepath.Join(dir, "study.json"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a published study (%v): run the study command first", dir, err)
	}
	if err := json.Unmarshal(raw, &d.study); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "study.json"), err)
	}
	records, problems, err := readRecordsChecked([]string{filepath.Join(dir, "runs")})
	if err != nil {
		return nil, err
	}
	d.problems = problems
	if raw, err := os.ReadFile(filepath.Join(dir, "speed.json")); err == nil {
		d.speed = &speedFile{}
		if err := json.Unmarshal(raw, d.speed); err != nil {
			d.problems = append(d.problems, fmt.Sprintf("%s: %v (no inference speeds)", filepath.Join(dir, "speed.json"), err))
			d.speed = nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "steps.json")); err == nil {
		d.steps = &stepFile{}
		if err := json.Unmarshal(raw, d.steps); err != nil {
			d.problems = append(d.problems, fmt.Sprintf("%s: %v (no interleaved step times)", filepath.Join(dir, "steps.json"), err))
			d.steps = nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, r := range records {
		m := r.metrics
		if m.Preset != d.study.Preset {
			d.problems = append(d.problems, fmt.Sprintf("%s is a run of the %s preset, not %s", r.path, m.Preset, d.study.Preset))
			continue
		}
		if d.byRun[m.Run] == nil {
			d.byRun[m.Run] = map[int64]*runRecord{}
		}
		if d.speed != nil {
			r.speed = d.speed.Rates[filepath.Base(filepath.Dir(r.path))]
		}
		d.byRun[m.Run][m.Seed] = r
		d.records = append(d.records, r)
	}
	d.runs, d.seeds = d.study.Runs, d.study.Seeds
	slices.Sort(d.runs)
	for _, run := range d.runs {
		for _, seed := range d.seeds {
			if d.byRun[run][seed] == nil {
				d.problems = append(d.problems, fmt.Sprintf("run %d, seed %d: no usable metrics.json (not trained yet, or skipped above)", run, seed))
			}
		}
	}
	if len(d.byRun[0]) == 0 {
		return nil, fmt.Errorf("%s holds no run 0 (AdamW alone): nothing to compare with", dir)
	}
	return d, nil
}

// measure is one figure of a run; ok is false when the run lacks it.
type measure struct {
	name, unit   string
	higherBetter bool
	get          func(r *runRecord) (float64, bool)
	// stepTime: the measure is steps.json's interleaved step times, paired by round, not a
	// figure of each run (runs trained one after another see different machine load).
	stepTime bool
}

// claim is one of the paper's quantitative claims: configuration run against run 0 on m.
type claim struct {
	text     string
	paper    string  // the paper's figure, as it states it
	paperPct float64 // the paper's change from run 0, in percent (sign: direction)
	run      int
	m        measure
	note     string // what the measure is here, where it departs from the paper's
}

func analysisMeasure(name string, higher bool, f func(*Analysis) float64) measure {
	return measure{name: name, higherBetter: higher, get: func(r *runRecord) (float64, bool) {
		if r.analysis == nil {
			return 0, false
		}
		return f(r.analysis), true
	}}
}

var (
	measureVal   = measure{name: "final validation loss", get: func(r *runRecord) (float64, bool) { return r.metrics.FinalValLoss, true }}
	measureTrain = measure{name: "final training loss", get: func(r *runRecord) (float64, bool) { return r.metrics.FinalTrainLoss, true }}
	measureSpeed = measure{name: "inference tokens/s", higherBetter: true, get: func(r *runRecord) (float64, bool) {
		if len(r.speed) == 0 {
			return 0, false
		}
		return stat.Mean(r.speed, nil), true
	}}
)

// convergenceThreshold is the training-loss threshold of the convergence claim: the paper's 1.0
// when every run's smoothed loss reaches it, else the lowest of defaultThresholds that every run
// reaches (ok false when none is).
func (d *studyData) convergenceThreshold() (float64, bool) {
	ths, _ := parseThresholds(defaultThresholds)
	slices.Sort(ths)
	for _, th := range ths {
		all := true
		for _, r := range d.records {
			all = all && itersToThresholds(r.metrics.IterLoss, []float64{th})[0].Iter != nil
		}
		if all {
			return th, true
		}
	}
	return 0, false
}

func itersMeasure(th float64) measure {
	return measure{name: fmt.Sprintf("iterations to smoothed training loss < %g", th), get: func(r *runRecord) (float64, bool) {
		it := itersToThresholds(r.metrics.IterLoss, []float64{th})[0].Iter
		if it == nil {
			return 0, false
		}
		return float64(*it), true
	}}
}

// overheadClaim is the training-time claim: on the interleaved step times when the study has
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

// compareClaim compares the claim's measure of configuration run with run 0.
func (d *studyData) compareClaim(c claim, run int) comparison {
	if c.m.stepTime && d.steps != nil {
		x, b := d.steps.Seconds[fmt.Sprintf("run%d", run)], d.steps.Seconds["run0"]
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
	convNote := fmt.Sprintf("the paper's threshold is 1.0; this preset's smoothed training loss does not reach it in every run, so the lowest of %s that every run reaches is used", defaultThresholds)
	if th == 1 {
		convNote = "the paper's threshold"
	}
	if !reached {
		conv = measure{name: "iterations to a training-loss threshold", get: func(*runRecord) (float64, bool) { return 0, false }}
		convNote = fmt.Sprintf("no threshold of %s is reached by every run", defaultThresholds)
	}
	return []claim{
		{"Inference speed-up of SMI models", "12-15% (run 5: 15%)", 15, 5, measureSpeed,
			"characters generated per second by the final model, all models interleaved in one process with one compiled program"},
		d.overheadClaim(),
		{"Faster convergence", "8% fewer iterations to train loss < 1.0 (run 4)", -8, 4, conv, convNote},
		{"Lower loss variance in the final iterations", "43.5% lower (run 5)", -43.5, 5,
			measure{name: "training-loss variance, final 20% of iterations", get: func(r *runRecord) (float64, bool) { return r.metrics.FinalLossVariance, true }},
			"sample variance of the per-iteration training loss over the final 20% of iterations (the paper: its final 1,000 of 5,000)"},
		{"Higher activation sparsity", "33.3% higher", 33.3, 5, analysisMeasure("MLP activation sparsity", true, func(a *Analysis) float64 { return a.MLPSparsity }),
			"the paper names no run; run 5, its recommended configuration, is used here and below"},
		{"Higher attention sparsity", "34.8% higher", 34.8, 5, analysisMeasure("attention sparsity", true, func(a *Analysis) float64 { return a.AttentionSparsity }), ""},
		{"Lower variance of spectral norms across layers", "28.9% lower", -28.9, 5,
			analysisMeasure("spectral-norm variance across layers", false, func(a *Analysis) float64 { return a.SpectralNormVarianceAcrossLayers }), ""},
		{"Lower condition numbers", "18.1% lower", -18.1, 5,
			analysisMeasure("condition number (geometric mean)", false, func(a *Analysis) float64 { return a.ConditionNumberGeoMean }), ""},
		{"Lower variance of parameter magnitudes", "8.8% lower", -8.8, 5,
			analysisMeasure("variance of parameter magnitudes", false, func(a *Analysis) float64 { return a.ParamMagnitudeVariance }), ""},
		{"Fewer effectively active parameters", "6.4% fewer", -6.4, 5,
			analysisMeasure("effectively active parameters", false, func(a *Analysis) float64 { return a.ActiveFraction }), ""},
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

func (d *studyData) compare(run int, m measure) comparison {
	xs, xall := d.values(run, m)
	bs, ball := d.values(0, m)
	var xp, bp []float64
	for _, seed := range d.seeds {
		x, okx := xs[seed]
		b, okb := bs[seed]
		if okx && okb {
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
	c.mean, c.lo, c.hi = meanCI95(xall)
	if len(xall) == 0 {
		c.mean = math.NaN()
	}
	c.baseMean = math.NaN()
	if len(ball) > 0 {
		c.baseMean = stat.Mean(ball, nil)
	}
	c.pWelch = welch(xall, ball)
	if c.n == 0 {
		c.diff, c.diffLo, c.diffHi, c.pct, c.pctLo, c.pctHi = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		c.pT, c.pW, c.dz, c.mde, c.mdePct = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return c
	}
	c.diff, c.diffLo, c.diffHi = meanCI95(diffs)
	pairedBase := stat.Mean(bp, nil)
	c.pct, c.pctLo, c.pctHi = 100*c.diff/pairedBase, 100*c.diffLo/pairedBase, 100*c.diffHi/pairedBase
	c.pT, c.pW = pairedT(diffs), wilcoxonSignedRank(diffs)
	c.dz, c.mde, c.mdePct = math.NaN(), math.NaN(), math.NaN()
	if c.n >= 2 {
		sd := stat.StdDev(diffs, nil)
		c.dz = c.diff / sd
		c.mde = minDetectable(c.n, sd)
		c.mdePct = 100 * c.mde / math.Abs(pairedBase)
	}
	return c
}

const (
	verdictReproduced = "reproduced"
	verdictNoDiff     = "not reproduced: no detectable difference"
	verdictOpposite   = "opposite direction"
	verdictScale      = "not measurable at this scale"
)

// verdict judges a comparison against the paper's direction, with a sentence of why.
func verdict(c comparison, paperPct float64, m measure, inStudy bool) (string, string) {
	if !inStudy {
		return verdictScale, fmt.Sprintf("Run %d is not part of this study.", c.run)
	}
	if c.n < 2 || math.IsNaN(c.pT) {
		if c.n == 0 {
			return verdictScale, fmt.Sprintf("No seed has both run %d and run 0 measured on %s.", c.run, m.name)
		}
		return verdictScale, fmt.Sprintf("Only %d of the %s have both runs measured: no test is possible.", c.n, c.pairs)
	}
	ours := fmt.Sprintf("%s%% (95%% CI %s to %s%%)", fmtPct(c.pct), fmtPct(c.pctLo), fmtPct(c.pctHi))
	if c.pT >= 0.05 {
		return verdictNoDiff, fmt.Sprintf("Run %d differs from run 0 by %s, paired p = %s; with %d %s a difference of %.1f%% would have been detected with 80%% power.",
			c.run, ours, fmtNum(c.pT), c.n, c.pairs, c.mdePct)
	}
	if (c.pct > 0) != (paperPct > 0) {
		return verdictOpposite, fmt.Sprintf("Run %d changes %s by %s, paired p = %s: the paper reports %s%%.",
			c.run, m.name, ours, fmtNum(c.pT), fmtPct(paperPct))
	}
	size := "the paper's figure lies within that interval"
	if paperPct < math.Min(c.pctLo, c.pctHi) || paperPct > math.Max(c.pctLo, c.pctHi) {
		size = fmt.Sprintf("the paper's %s%% lies outside it", fmtPct(paperPct))
	}
	return verdictReproduced, fmt.Sprintf("Run %d changes %s by %s, paired p = %s, in the paper's direction; %s.",
		c.run, m.name, ours, fmtNum(c.pT), size)
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
// every configuration, and gives each one's bootstrap probability of being the best.
func (d *studyData) ranking(m measure) (order []int, means map[int]float64, pBest map[int]float64, n int) {
	means, pBest = map[int]float64{}, map[int]float64{}
	var rows [][]float64
	for _, seed := range d.seeds {
		row := make([]float64, len(d.runs))
		ok := true
		for j, run := range d.runs {
			r := d.byRun[run][seed]
			if r == nil {
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
	for j, p := range bootstrapRanks(rows, 10000, m.higherBetter) {
		pBest[d.runs[j]] = p
	}
	return order, means, pBest, len(rows)
}

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
		rank = append(rank, fmt.Sprintf("%d. run %d (%s, P(best) %.2f)", i+1, run, fmtNum(means[run]), pBest[run]))
	}
	ranking := strings.Join(rank, "; ")
	if q.run == 1 { // worse than run 0, seed by seed
		c := d.compare(1, q.m)
		worse := c.diff > 0 != q.m.higherBetter
		switch {
		case math.IsNaN(c.pT):
			return ranking, verdictScale, "Too few seeds for a paired test."
		case c.pT < 0.05 && worse:
			return ranking, verdictReproduced, fmt.Sprintf("Run 1's %s is worse than run 0's by %s (%s%%), paired p = %s.", q.m.name, fmtNum(math.Abs(c.diff)), fmtPct(c.pct), fmtNum(c.pT))
		case c.pT < 0.05:
			return ranking, verdictOpposite, fmt.Sprintf("Run 1's %s is better than run 0's by %s%%, paired p = %s.", q.m.name, fmtPct(c.pct), fmtNum(c.pT))
		default:
			return ranking, verdictNoDiff, fmt.Sprintf("Run 1 against run 0: %s%% on %s, paired p = %s (detectable with 80%% power: %.1f%%).", fmtPct(c.pct), q.m.name, fmtNum(c.pT), c.mdePct)
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
			return ranking, verdictOpposite, fmt.Sprintf("Run %d is better than run %d on %s, paired p = %s.", other, q.run, q.m.name, fmtNum(d2.p))
		}
	}
	return ranking, verdictNoDiff, fmt.Sprintf("Run %d ranks %d of %d and is the best in %.0f%% of bootstrap resamples; no configuration differs from it detectably.",
		q.run, slices.Index(order, q.run)+1, len(order), 100*pBest[q.run])
}

type pairResult struct {
	n int
	p float64
}

// pairedBetween tests configurations a and b against each other, seed by seed.
func (d *studyData) pairedBetween(a, b int, m measure) pairResult {
	as, _ := d.values(a, m)
	bs, _ := d.values(b, m)
	var diffs []float64
	for _, seed := range d.seeds {
		x, okx := as[seed]
		y, oky := bs[seed]
		if okx && oky {
			diffs = append(diffs, x-y)
		}
	}
	return pairResult{len(diffs), pairedT(diffs)}
}

// writeReproduction writes the report at path and its plots next to the data, from the study
// files published in dir.
func writeReproduction(dir, path string) error {
	d, err := loadStudy(dir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(path), dir)
	if err != nil {
		rel = dir
	}
	md := reproductionMarkdown(d, filepath.ToSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(path, []byte(md)); err != nil {
		return err
	}
	if err := reproductionPlots(d, dir); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	for _, p := range d.problems {
		fmt.Fprintf(os.Stderr, "note: %s\n", p)
	}
	return nil
}

// plotNames are the report's plots, written in the data folder.
const (
	plotTrainCurves = "loss_train.png"
	plotTrainDiff   = "loss_train_minus_run0.png"
	plotValCurves   = "loss_val.png"
	plotClaims      = "claims.png"
)

func plotFile(m measure) string {
	return "interval_" + strings.NewReplacer(" ", "_", "/", "_", "%", "pct", ",", "", "(", "", ")", "", "<", "lt", ".", "_").Replace(m.name) + ".png"
}

func reproductionMarkdown(d *studyData, plots string) string {
	var sb strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	preset := d.study.Preset
	any0 := d.byRun[0][d.seeds[0]]
	for _, r := range d.records {
		if any0 == nil {
			any0 = r
		}
	}
	cfg := any0.metrics.Config
	w("# Reproducing the paper's experiment: the `%s` preset\n\n", preset)
	w("Generated by `shakespeare study` from the files in `%s/` (each run's `metrics.json` and `analysis.json`, `speed.json`, `study.json`); ", plots)
	w("rerunning the study's command, or `shakespeare report -reproduction` on that folder, regenerates it without training. Do not edit by hand.\n\n")
	w("The paper (Huang, Chen and Zheng, 2025) trains nanoGPT's character-level GPT on tiny Shakespeare with AdamW alone (run 0) and with SMI in five configurations (runs 1-5; see [ALGORITHM.md](ALGORITHM.md) and [SHAKESPEARE.md](SHAKESPEARE.md)), ")
	w("2 seeds per configuration, no intervals. Here: the `%s` preset (%d layers, %d heads, %d-dim embeddings, context %d, batch %d, %d iterations, %d parameters), ",
		preset, cfg.NLayer, cfg.NHead, cfg.NEmbd, cfg.BlockSize, cfg.BatchSize, cfg.MaxIters, any0.metrics.Params)
	w("runs %s x seeds %s.\n\n", joinInts(d.runs), joinInts(d.seeds))

	// The claims table.
	w("## The claims\n\n")
	w("Ours: the paired change of the SMI run the paper names from run 0, as a percentage of run 0's mean, with its 95%% confidence interval; p: two-sided paired t-test over seeds. Details, the distribution-free test and the unpaired figures follow below.\n\n")
	w("| claim | paper | run | ours (paired, 95%% CI) | p | verdict | why |\n|---|---|---|---|---|---|---|\n")
	claims := d.claims()
	for _, c := range claims {
		cmp := d.compareClaim(c, c.run)
		v, why := verdict(cmp, c.paperPct, c.m, slices.Contains(d.runs, c.run))
		w("| %s | %s | %d | %s | %s | **%s** | %s |\n", c.text, c.paper, c.run, fmtPctCI(cmp.pct, cmp.pctLo, cmp.pctHi), fmtNum(cmp.pT), v, why)
	}
	for _, q := range qualitativeClaims {
		_, v, why := d.judgeQualitative(q)
		w("| %s | qualitative | %d | see the ranking below | | **%s** | %s |\n", q.text, q.run, v, why)
	}
	w("\n![Paired changes from run 0](%s/%s)\n\n", plots, plotClaims)

	// Method.
	w("## How the comparison is made\n\n")
	w("- **Seeds pair.** A seed fixes the initial weights, the dropout stream and every batch, whatever the configuration, so configuration k and run 0 are compared seed by seed through the differences d = x_k - x_0. ")
	w("%s\n", d.pairingCheck())
	w("- **Tests.** Two-sided paired t-test of mean(d) = 0; Wilcoxon's signed-rank test (exact, distribution-free; with n pairs its smallest possible p is 2^(1-n), %s for these %d seeds, so it can only corroborate); Welch's unpaired t-test for comparison. Effect size: d_z = mean(d)/sd(d). Level 5%%, no correction for the number of claims.\n",
		fmtNum(math.Pow(2, 1-float64(len(d.seeds)))), len(d.seeds))
	w("- **Smallest detectable difference.** For a claim without a detectable difference: the true mean difference the paired t-test would detect with 80%% power at 5%%, taking the observed sd(d) as the truth, from the noncentral t distribution (power integrated numerically, solved by bisection).\n")
	w("- **Verdicts.** *%s*: paired p < 0.05 in the paper's direction; *%s*: paired p >= 0.05; *%s*: paired p < 0.05 against it; *%s*: the figure cannot be measured with this preset or data. Nothing was tuned on these seeds: every setting is the paper's or the preset's.\n",
		verdictReproduced, verdictNoDiff, verdictOpposite, verdictScale)
	th, reached := d.convergenceThreshold()
	if reached {
		w("- **Convergence.** Iterations until the smoothed training loss (%s) first falls below %g. ", smoothingDoc, th)
		if th != 1 {
			w("The paper's threshold, 1.0, is not reached by every run of this preset, so the lowest of the thresholds %s that every run reaches is used; lower losses need the `paper` preset.\n", defaultThresholds)
		} else {
			w("That is the paper's threshold.\n")
		}
	} else {
		w("- **Convergence.** No threshold of %s is reached by every run's smoothed training loss (%s).\n", defaultThresholds, smoothingDoc)
	}
	w("- Definitions of every figure: [SHAKESPEARE.md](SHAKESPEARE.md).\n\n")

	// Claims in detail.
	w("## Claims in detail\n\nEvery SMI configuration against run 0; the row of the run the paper names is in bold. Mean and 95%% CI over all seeds of the configuration; paired figures over the seeds that have both.\n\n")
	for _, c := range claims {
		w("### %s (paper: %s)\n\n", c.text, c.paper)
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
			w("| %s%d%s | %d | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s (%s) |\n", b, run, b, cmp.n, fmtNum(cmp.mean), fmtCI(cmp.lo, cmp.hi),
				fmtNum(cmp.baseMean), fmtNum(cmp.diff), fmtCI(cmp.diffLo, cmp.diffHi), fmtPctCI(cmp.pct, math.NaN(), math.NaN()), fmtNum(cmp.pT), fmtNum(cmp.pW), fmtNum(cmp.dz), fmtNum(cmp.pWelch),
				fmtNum(cmp.mde), fmtPctCI(cmp.mdePct, math.NaN(), math.NaN()))
		}
		if d.hasValues(c.m) {
			w("\n![%s](%s/%s)\n\n", c.m.name, plots, plotFile(c.m))
		} else {
			w("\n")
		}
	}

	// Qualitative claims.
	w("## The qualitative claims\n\nConfigurations ranked by their mean over the seeds that have all of them; P(best): the fraction of 10,000 bootstrap resamples of those seeds (all configurations of a seed resampled together) in which the configuration has the best mean.\n\n")
	w("| claim | measure | ranking (best first) | verdict |\n|---|---|---|---|\n")
	for _, q := range qualitativeClaims {
		ranking, v, why := d.judgeQualitative(q)
		w("| %s | %s | %s | **%s**: %s |\n", q.text, q.m.name, ranking, v, why)
	}
	w("\nThe losses of every configuration, and its runs' own training time (one run after another, so machine load differs between them):\n\n| run | name | n | final validation loss (95%% CI) | final training loss (95%% CI) | best validation loss | training time, s (95%% CI) |\n|---|---|---|---|---|---|---|\n")
	for _, run := range d.runs {
		_, vals := d.values(run, measureVal)
		_, trains := d.values(run, measureTrain)
		_, bests := d.values(run, measure{get: func(r *runRecord) (float64, bool) { return r.metrics.BestValLoss, true }})
		r, _ := lookupRun(run)
		_, secs := d.values(run, measure{get: func(r *runRecord) (float64, bool) { return r.metrics.TrainSeconds, true }})
		vm, vlo, vhi := meanCI95(vals)
		tm, tlo, thi := meanCI95(trains)
		sm, slo, shi := meanCI95(secs)
		w("| %d | %s | %d | %s (%s) | %s (%s) | %s | %s (%s) |\n", run, r.Name, len(vals), fmtNum(vm), fmtCI(vlo, vhi), fmtNum(tm), fmtCI(tlo, thi),
			fmtNum(stat.Mean(bests, nil)), fmtNum(sm), fmtCI(slo, shi))
	}
	w("\n![Training loss](%s/%s)\n\n![Validation loss](%s/%s)\n\n", plots, plotTrainCurves, plots, plotValCurves)
	w("The paired comparison drawn: each SMI configuration's smoothed training loss minus run 0's for the same seed.\n\n![Training loss minus run 0's](%s/%s)\n\n", plots, plotTrainDiff)

	// Scale.
	w("## What may depend on scale\n\n")
	w("This preset trains a model of %d parameters for %d iterations on batches of %d x %d characters; the paper's trains about 10.7 million for 5,000 iterations on batches of 64 x 256, with dropout 0.2. ",
		any0.metrics.Params, cfg.MaxIters, cfg.BatchSize, cfg.BlockSize)
	w("SMI's mask is a quantile over each weight matrix's spectrum, so matrices 3x narrower have fewer, coarser frequencies, and a run 2.5x shorter spends a larger share of it early in the alpha schedule. ")
	w("Every finding here may therefore depend on scale: the loss and convergence findings most, since SMI's effect on optimisation grows with its blend and history; the parameter analysis (sparsity, spectral norms, condition numbers) describes weights trained for fewer steps; the inference and training-time findings depend on the machine rather than on scale (a dense model's forward pass does the same arithmetic whatever its weights). ")
	w("The same command studies the `paper` preset unchanged (`make study PRESET=paper`), on a machine that can train it.\n\n")

	// Provenance.
	w("## Provenance\n\n")
	total := 0.0
	revs, machines, backends := []string{}, []string{}, []string{}
	for _, inv := range d.study.Invocations {
		total += inv.Seconds
		revs = appendNew(revs, inv.Revision)
		machines = appendNew(machines, fmt.Sprintf("%s, %d CPUs (%s, %s/%s)", inv.Machine.Host, inv.Machine.CPUs, inv.Machine.CPU, inv.Machine.OS, inv.Machine.Arch))
		backends = appendNew(backends, inv.Backend)
	}
	w("- Command: `%s` (the default grid: `make study`).\n", d.study.Invocations[0].Command)
	w("- Invocations: %d (the study resumes where it stopped), wall time %.1f hours in all", len(d.study.Invocations), total/3600)
	if n := len(d.study.Invocations); n > 0 {
		w(", from %s to %s", d.study.Invocations[0].Started, d.study.Invocations[n-1].Updated)
	}
	w(".\n- Code revisions: %s.\n- Machines: %s.\n- Backends: %s.\n", strings.Join(revs, ", "), strings.Join(machines, "; "), strings.Join(backends, "; "))
	w("- Seeds: %s; runs: %s; %d runs with usable metrics.\n", joinInts(d.seeds), joinInts(d.runs), len(d.records))
	if d.steps != nil {
		w("- Training-step time: %d interleaved rounds of %d steps per configuration, measured %s on %s (%d CPUs, %s).\n", d.steps.Rounds, d.steps.StepsPerRound, d.steps.Date, d.steps.Machine.Host, d.steps.Machine.CPUs, d.steps.Machine.CPU)
	}
	if d.speed != nil {
		w("- Inference speed: %d interleaved repetitions of %d characters per model, measured %s on %s (%d CPUs, %s).\n", d.speed.Reps, d.speed.Tokens, d.speed.Date, d.speed.Machine.Host, d.speed.Machine.CPUs, d.speed.Machine.CPU)
	} else {
		w("- Inference speed: not measured (no speed.json).\n")
	}
	if len(d.problems) > 0 {
		w("\nNot counted:\n\n")
		for _, p := range d.problems {
			w("- %s\n", p)
		}
	}
	return sb.String()
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

func fmtCI(lo, hi float64) string {
	if math.IsNaN(lo) {
		return "n/a"
	}
	return fmtNum(lo) + " to " + fmtNum(hi)
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
