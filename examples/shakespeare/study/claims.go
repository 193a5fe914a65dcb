package study

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/stats"
)

// The paper's claims, the measures they are judged on, the paired comparisons with run 0 and
// the verdicts.

// measure is one figure of a run; ok is false when the run lacks it.
type measure struct {
	name         string
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
		c.note = fmt.Sprintf("every configuration's training step (forward, backward, clipping, SMI, AdamW) timed in one process, %d interleaved rounds of %d steps %s, paired by round (n below counts rounds); %s",
			d.steps.Rounds, d.steps.StepsPerRound, orderText(d.steps.Order), "the runs' own training times, measured one run after another, are in the table of losses")
		if len(d.stepFiles) > 1 {
			c.note += "; " + d.stepsChoice()
		}
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

// stepsUse lists the configurations whose step time is compared with run 0's from f.
func (d *studyData) stepsUse(f *stepFile) []int {
	var runs []int
	for _, run := range d.runs {
		if run != 0 && d.stepsFor(run) == f {
			runs = append(runs, run)
		}
	}
	return runs
}

// stepsChoice says, for a section with several steps.json files, which one its step times come
// from and why, and that the others are not pooled with it: each timed its configurations in
// its own process, perhaps on another machine, and rounds pair only within one measurement.
func (d *studyData) stepsChoice() string {
	var others, fallbacks []string
	for _, f := range d.stepFiles {
		if f.file == d.steps {
			continue
		}
		others = append(others, "`"+d.stepsNames[f.file]+"`")
		if runs := d.stepsUse(f.file); len(runs) > 0 {
			fallbacks = append(fallbacks, fmt.Sprintf("run%s %s from `%s`", plural(len(runs)), joinInts(runs), d.stepsNames[f.file]))
		}
	}
	verb := "are"
	if len(others) == 1 {
		verb = "is"
	}
	t := fmt.Sprintf("the step times are those of `%s`, of the section's %d steps.json files the one that times the most configurations (then the most rounds; the first folder on a tie); "+
		"%s %s not pooled with it, since each measurement times its configurations in its own process, perhaps on another machine, and rounds pair only within one",
		d.stepsNames[d.steps], len(d.stepFiles), strings.Join(others, ", "), verb)
	if len(fallbacks) > 0 {
		t += "; a configuration that it does not time with run 0 is compared from the file with the most rounds that does (" + strings.Join(fallbacks, "; ") + ")"
	}
	return t
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
	pct, pctLo, pctHi    float64 // diff as % of run 0's mean over the same seeds (NaN when that mean is 0)
	pairedBase           float64 // |run 0's mean| over the same seeds, the percentages' base
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
	c.pairedBase = math.Abs(stat.Mean(bp, nil))
	pct := func(x float64) float64 {
		if c.pairedBase == 0 { // no percentage of 0 (it would be ±Inf, or NaN for 0/0)
			return math.NaN()
		}
		return 100 * x / c.pairedBase
	}
	c.pct, c.pctLo, c.pctHi = pct(c.diff), pct(c.diffLo), pct(c.diffHi)
	c.pT, c.pW = stats.PairedT(diffs), stats.WilcoxonSignedRank(diffs)
	c.dz, c.mde, c.mdePct = math.NaN(), math.NaN(), math.NaN()
	if c.n >= 2 {
		sd := stat.StdDev(diffs, nil)
		c.dz = c.diff / sd
		c.mde = stats.MinDetectable(c.n, sd)
		c.mdePct = pct(c.mde)
	}
	return c
}

// noInterval says why a comparison of run with run 0 on m has no interval of its percentage
// change to judge ("" when it has one): no pair, one pair, run 0's mean 0 (no percentage of it),
// or a value that is not finite.
func noInterval(c comparison, m measure) string {
	switch {
	case c.n == 0:
		return fmt.Sprintf("No seed has both run %d and run 0 measured on %s.", c.run, m.name)
	case c.n < 2:
		return fmt.Sprintf("Both runs are measured for only %d of the %s: no interval is possible.", c.n, c.pairs)
	case finite(c.pctLo) && finite(c.pctHi):
		return ""
	case c.pairedBase == 0:
		return fmt.Sprintf("Run 0's mean %s over the %d %s is 0, so a change has no percentage of it: the paired difference is %s (95%% CI %s, paired p = %s), but the paper's percentage cannot be set against it.",
			m.name, c.n, c.pairs, stats.Format(c.diff), fmtCI(c.diffLo, c.diffHi), stats.Format(c.pT))
	}
	return fmt.Sprintf("A value of run %d or run 0 on %s is not finite, so the %d paired differences have no interval.", c.run, m.name, c.n)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

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
	if why := noInterval(c, m); why != "" {
		return verdictScale, why
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
