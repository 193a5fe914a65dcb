package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// Run runs the study o (command is how it was invoked, as study.json records it): it trains
// what is missing of the grid with t, analyses and measures the final models, publishes the
// result files and writes the report; with o.ReportOnly, only the report.
func Run(o *Options, t Trainer, command string) error {
	began := time.Now()
	o.defaults()
	if err := cli.CheckWritable("-report", o.Report); err != nil {
		return err
	}
	if o.ReportOnly {
		o.reportSources()
		if err := writeReproduction(o.From, o.Report); err != nil {
			return err
		}
		fmt.Printf("Report (from %s, nothing trained): %s\n", strings.Join(o.From, ", "), o.Report)
		return nil
	}
	corpus, recipe, err := o.check(t)
	if err != nil {
		return err
	}
	lock, err := results.LockDir(o.Dir, "-dir") // one study per folder (each run also locks its own directory)
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := backend.SetDevice(o.Device); err != nil {
		return err
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	if o.Publish == "" {
		o.Publish = o.defaultPublish(backend.PlatformOf(b))
	}
	if err := o.checkPublish(recipe); err != nil {
		return err
	}
	o.reportSources()
	s := &session{o: o, t: t, b: b, corpus: corpus, began: began}
	if s.sf, s.inv, err = o.openStudyFile(command, b, began); err != nil {
		return err
	}
	s.inv.Config = recipe
	if err := s.save(); err != nil {
		return err
	}
	if err := s.train(); err != nil { // 1. training, one run at a time
		return err
	}
	if err := s.analyse(); err != nil { // 2. the parameter analysis of every final model
		return err
	}
	// 3. The inference speed of every final model and the training-step time of every
	// configuration, each interleaved in this one process.
	if !o.NoSpeed {
		// Every finished run published in the publish folder, not only this invocation's: an
		// invocation that extends a study (more seeds, more runs) measures them all again in one
		// process, and the folder's speed.json and steps.json cover the runs it holds.
		grid, err := s.publishedGrid()
		if err != nil {
			return err
		}
		if err := o.measureSpeed(t, b, corpus, grid); err != nil {
			return err
		}
		var runs []int
		for _, p := range grid {
			if !slices.Contains(runs, p.run) {
				runs = append(runs, p.run)
			}
		}
		slices.Sort(runs)
		if err := o.measureSteps(t, b, corpus, runs); err != nil {
			return err
		}
	}
	if err := s.save(); err != nil {
		return err
	}
	// 4. The report, from the published files only: this study's and every other found.
	reportErr := writeReproduction(o.From, o.Report)
	var runs []string
	grid := o.grid()
	for _, d := range s.sf.Diverged {
		if slices.Contains(grid, gridPoint{run: d.Run, seed: d.Seed}) {
			runs = append(runs, d.String())
		}
	}
	if n := len(runs); n > 0 {
		report := fmt.Sprintf("the report, %s, names them", o.Report)
		if reportErr != nil {
			first, _, _ := strings.Cut(reportErr.Error(), "\n") // the rest lists the diverged runs again
			report = "no report was written: " + strings.TrimSuffix(first, ":")
		}
		return fmt.Errorf("the study is complete but for %d run%s that diverged, which have no results (%s): %s. "+
			"Running the study again retries them from their checkpoints, and with the same settings and backend they would most likely diverge again",
			n, plural(n), report, strings.Join(runs, "; "))
	}
	if reportErr != nil {
		return reportErr
	}
	fmt.Printf("\nStudy complete (%s in this invocation). Report: %s\n", time.Since(began).Round(time.Second), o.Report)
	return nil
}

// finishedGrid is this invocation's grid without the runs that diverged: those with a final model.
func (s *session) finishedGrid() []gridPoint {
	return slices.DeleteFunc(s.o.grid(), s.sf.diverged)
}

// publishedGrid is every run of the study folder (its study.json's runs x seeds, which every
// invocation extends) that has a final model (finished, not diverged) and is this invocation's
// or already published in its publish folder; seed by seed, as grid. (Pieces of one study folder
// published in folders of their own each measure their own runs, so that each folder is whole.)
func (s *session) publishedGrid() ([]gridPoint, error) {
	var g []gridPoint
	in := s.inPublish()
	for _, seed := range s.sf.Seeds {
		for _, r := range s.sf.Runs {
			p := gridPoint{r, seed}
			if s.sf.diverged(p) || !in[s.o.name(p)] {
				continue
			}
			done, err := s.o.finished(s.t, s.corpus, p)
			if err != nil {
				return nil, err
			}
			if done {
				g = append(g, p)
			}
		}
	}
	return g, nil
}

// check loads the study's text and checks every run's settings with t before anything trains;
// it returns the text and the runs' recipe (their model and training settings), nil when they
// differ among the runs.
func (o *Options) check(t Trainer) (*data.Corpus, *gpt.Config, error) {
	// What needs no data is checked before the data is read (or downloaded), so that a mistyped
	// flag is not hidden behind a missing file.
	if _, err := gpt.Preset(o.Preset); err != nil {
		return nil, nil, cli.Usagef("-preset: %v", err)
	}
	for _, r := range o.Runs {
		if _, err := results.LookupRun(r); err != nil {
			return nil, nil, cli.Usagef("-runs: %v", err)
		}
	}
	if err := CheckDevice(o.Device); err != nil {
		return nil, nil, err
	}
	// The measurements' sizes, by the standalone commands' rules (speed -tokens -reps, analyze
	// -batches), whether or not -no_speed skips the measurements.
	if err := CheckAnalyzeBatches("-analyze_batches", o.AnalyzeBatches); err != nil {
		return nil, nil, err
	}
	if err := CheckSpeedSize("-speed_tokens", o.SpeedTokens, "-speed_reps", o.SpeedReps); err != nil {
		return nil, nil, err
	}
	if err := checkStepSize("-step_steps", o.StepSteps, "-step_rounds", o.StepRounds); err != nil {
		return nil, nil, err
	}
	// Every run's settings (-preset, -runs, -seeds and -set), by the preset's vocabulary, and
	// the folders the study writes.
	for _, p := range o.grid() {
		if _, _, err := t.Settings(nil, o.spec(p)); err != nil {
			return nil, nil, cli.Usagef("run %d, seed %d: %v", p.run, p.seed, err)
		}
	}
	if err := cli.CheckFolder("-dir", o.Dir); err != nil {
		return nil, nil, err
	}
	if o.Publish != "" {
		if err := cli.CheckFolder("-publish", o.Publish); err != nil {
			return nil, nil, err
		}
	}
	corpus, err := data.Open(o.Data)
	if err != nil {
		return nil, nil, err
	}
	if err := corpus.CheckTinyShakespeare(); err != nil { // the paper's runs are on its data
		return nil, nil, fmt.Errorf("-data %s: the study reproduces the paper's runs, on tiny Shakespeare: %v (train takes any text)", o.Data, err)
	}
	var recipe *gpt.Config
	for k, p := range o.grid() {
		cfg, _, err := t.Settings(corpus, o.spec(p))
		if err != nil {
			// every setting comes from the command line: -preset, -runs, -seeds and -set
			return nil, nil, cli.Usagef("run %d, seed %d: %v", p.run, p.seed, err)
		}
		if k == 0 {
			recipe = &cfg
		} else if recipe != nil && canonicalJSON(cfg, nil) != canonicalJSON(*recipe, nil) {
			recipe = nil
		}
	}
	if recipe != nil {
		if err := o.checkRecipe(*recipe); err != nil {
			return nil, nil, err
		}
	}
	return corpus, recipe, nil
}

// session is one invocation of a study, from its check to its report.
type session struct {
	o      *Options
	t      Trainer
	b      backends.Backend
	corpus *data.Corpus
	began  time.Time
	sf     *studyFile
	inv    *invocation // this invocation's record in sf
}

// save writes the study folder's study.json, and publishes the part of it that describes the
// publish folder (publishedStudy).
func (s *session) save() error {
	s.inv.Updated, s.inv.Seconds = results.NowUTC(), time.Since(s.began).Seconds()
	if err := results.WriteJSON(filepath.Join(s.o.Dir, "study.json"), s.sf); err != nil {
		return err
	}
	raw, err := json.Marshal(s.publishedStudy())
	if err != nil {
		return err
	}
	out, err := publishedForm(raw, nil, nil)
	if err != nil {
		return err
	}
	return writePublished(filepath.Join(s.o.Publish, "study.json"), out)
}

// inPublish names the runs the publish folder describes: this invocation's, and those
// published there before.
func (s *session) inPublish() map[string]bool {
	in := map[string]bool{}
	for _, p := range s.o.grid() {
		in[s.o.name(p)] = true
	}
	if entries, err := os.ReadDir(filepath.Join(s.o.Publish, "runs")); err == nil {
		for _, e := range entries {
			in[e.Name()] = true
		}
	}
	return in
}

// publishedStudy is the study file as the publish folder's: its grid, invocations and diverged
// runs restricted to the runs of this invocation and those already published there. Pieces of
// one study folder, each published in a folder of its own (make study RUNS=... SEEDS=...),
// otherwise each claimed the whole study, and a report merging them counted every invocation
// once per piece.
func (s *session) publishedStudy() *studyFile {
	in := s.inPublish()
	out := *s.sf
	out.Runs, out.Seeds, out.Invocations, out.Diverged = nil, nil, nil, nil
	for _, seed := range s.sf.Seeds {
		for _, r := range s.sf.Runs {
			if in[s.o.name(gridPoint{r, seed})] {
				out.Runs, out.Seeds = appendNew(out.Runs, r), appendNew(out.Seeds, seed)
			}
		}
	}
	touches := func(names []string) bool { return slices.ContainsFunc(names, func(n string) bool { return in[n] }) }
	for i := range s.sf.Invocations {
		if inv := &s.sf.Invocations[i]; inv == s.inv || touches(inv.Trained) || touches(inv.Analysed) {
			out.Invocations = append(out.Invocations, *inv)
		}
	}
	for _, d := range s.sf.Diverged {
		if in[s.o.name(gridPoint{d.Run, d.Seed})] {
			out.Diverged = append(out.Diverged, d)
		}
	}
	return &out
}

// train trains the runs of the grid that are not finished, one at a time, publishing each as
// it finishes (and every finished one that it skips).
func (s *session) train() error {
	o, grid := s.o, s.o.grid()
	var pending []gridPoint
	for _, p := range grid {
		done, err := o.finished(s.t, s.corpus, p)
		if err != nil {
			return err
		}
		if !done {
			pending = append(pending, p)
			continue
		}
		s.sf.setDiverged(p, nil)
		if err := o.publishRun(s.sf, p, "metrics.json"); err != nil {
			return err
		}
	}
	fmt.Printf("Study %s: %d runs x %d seeds = %d; %d finished, %d to train, one at a time; publishing in %s.\n",
		o.Dir, len(o.Runs), len(o.Seeds), len(grid), len(grid)-len(pending), len(pending), o.Publish)
	trainStart := time.Now()
	for k, p := range pending {
		eta := "after the first run"
		if k > 0 {
			per := time.Since(trainStart) / time.Duration(k)
			eta = fmt.Sprintf("%s (%.0f s per run)", (per * time.Duration(len(pending)-k)).Round(time.Second), per.Seconds())
		}
		pos := slices.Index(grid, p) + 1
		fmt.Printf("\n[%d/%d] run %d, seed %d: training (%d of %d left to train; ETA %s)\n",
			pos, len(grid), p.run, p.seed, len(pending)-k, len(pending), eta)
		// Recorded before it trains: the provenance of its files names the last invocation that
		// trained it, whatever stops this one later (a publish that fails, a kill before the save).
		s.inv.Trained = appendNew(s.inv.Trained, o.name(p))
		if err := s.save(); err != nil {
			return err
		}
		spec := o.spec(p)
		m, err := s.t.Train(s.b, s.corpus, spec)
		var div *results.Diverged
		if errors.As(err, &div) {
			// A result too: recorded, reported, and the other runs go on.
			cfg, _, err := s.t.Settings(s.corpus, spec)
			if err != nil {
				return err
			}
			d := divergedRun{Run: p.run, Seed: p.seed, Iter: div.Iter, MaxIters: div.MaxIters, Loss: div.LossText(), InEval: div.InEvaluation,
				Backend: backend.Description(s.b), Config: cfg, Date: results.NowUTC()}
			s.sf.setDiverged(p, &d)
			fmt.Printf("[%d/%d] %s: no results; going on with the other runs\n", pos, len(grid), d)
			if err := s.save(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("run %d, seed %d (%s): %w", p.run, p.seed, spec.Out, err)
		}
		s.sf.setDiverged(p, nil)
		fmt.Printf("[%d/%d] run %d, seed %d: val loss %.4f, %.0f s training\n", pos, len(grid), p.run, p.seed, m.FinalValLoss, m.TrainSeconds)
		if err := s.save(); err != nil {
			return err
		}
		if err := o.publishRun(s.sf, p, "metrics.json"); err != nil {
			return err
		}
	}
	return nil
}

// analyse analyses every final model of the grid not analysed yet, and publishes every analysis.
func (s *session) analyse() error {
	for _, p := range s.finishedGrid() {
		dir := filepath.Join(s.o.Dir, "runs", s.o.name(p))
		if _, err := os.Stat(filepath.Join(dir, "analysis.json")); err != nil {
			fmt.Printf("Analysing %s...\n", dir)
			s.inv.Analysed = appendNew(s.inv.Analysed, s.o.name(p)) // recorded first, as in train
			if err := s.save(); err != nil {
				return err
			}
			if err := s.t.Analyze(s.b, s.corpus, dir, s.o.AnalyzeBatches); err != nil {
				return fmt.Errorf("analysing %s: %w", dir, err)
			}
		}
		if err := s.o.publishRun(s.sf, p, "analysis.json"); err != nil {
			return err
		}
	}
	return nil
}

// openStudyFile reads DIR/study.json (or starts one), checks that it is the same preset,
// merges the grid and appends this invocation.
func (o *Options) openStudyFile(command string, b backends.Backend, began time.Time) (*studyFile, *invocation, error) {
	path := filepath.Join(o.Dir, "study.json")
	sf := &studyFile{Preset: o.Preset}
	if raw, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(raw, sf); err != nil {
			return nil, nil, fmt.Errorf("%s: %v", path, err)
		}
		if sf.Preset != o.Preset {
			return nil, nil, fmt.Errorf("%s is a study of the %s preset, not %s: use another -dir", o.Dir, sf.Preset, o.Preset)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	for _, r := range o.Runs {
		if !slices.Contains(sf.Runs, r) {
			sf.Runs = append(sf.Runs, r)
		}
	}
	for _, s := range o.Seeds {
		if !slices.Contains(sf.Seeds, s) {
			sf.Seeds = append(sf.Seeds, s)
		}
	}
	sf.Invocations = append(sf.Invocations, invocation{Command: command, Revision: gitRevision(),
		Machine: results.ThisMachine(), Accelerator: accelerator(b), Backend: backend.Description(b), Started: began.UTC().Format(time.RFC3339)})
	return sf, &sf.Invocations[len(sf.Invocations)-1], nil
}

// finished reports whether p's run directory holds complete metrics of the same settings.
func (o *Options) finished(t Trainer, corpus *data.Corpus, p gridPoint) (bool, error) {
	spec := o.spec(p)
	path := filepath.Join(spec.Out, "metrics.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var m results.Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		fmt.Printf("%s does not parse (%v): the run will be completed again from its checkpoint.\n", path, err)
		return false, nil
	}
	cfg, smi, err := t.Settings(corpus, spec)
	if err != nil {
		return false, err
	}
	want := canonicalJSON(cfg, smi)
	got := canonicalJSON(m.Config, m.SMI)
	if got != want {
		return false, fmt.Errorf("%s holds a run with other settings than this study's: use another -dir", spec.Out)
	}
	return len(m.IterLoss) == cfg.MaxIters, nil
}

// canonicalJSON encodes a run's model settings and SMI settings so that equal settings give
// equal strings whatever their Go types (through JSON and back, maps in key order).
func canonicalJSON(cfg, smi any) string {
	raw, _ := json.Marshal([]any{cfg, smi})
	var v any
	_ = json.Unmarshal(raw, &v)
	raw, _ = json.Marshal(v)
	return string(raw)
}

// checkRecipe refuses a study folder that already holds runs of another recipe than this
// study's (recipe): a study folder holds one recipe (-set changes it), so that its study.json,
// its measurements and what it publishes describe one.
func (o *Options) checkRecipe(recipe gpt.Config) error { return checkRecipeIn(o.Dir, "-dir", recipe) }

// checkPublish refuses a publish folder that is the study folder (the published form leaves out
// what the study folder keeps, such as the SMI telemetry) or that holds a published study of
// another recipe (recipe; nil when the runs' recipes differ): publishing there would replace
// that study's files with this one's, as a study with -set and no -publish did to the committed
// study of its preset.
func (o *Options) checkPublish(recipe *gpt.Config) error {
	if sameFolder(o.Publish, o.Dir) {
		return cli.Usagef("-publish %s is the study folder (-dir): give the published files a folder of their own", o.Publish)
	}
	if recipe == nil {
		return nil
	}
	return checkRecipeIn(o.Publish, "-publish", *recipe)
}

// sameFolder reports whether paths a and b name one folder.
func sameFolder(a, b string) bool {
	abs := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if r, err := filepath.Abs(p); err == nil {
			p = r
		}
		return filepath.Clean(p)
	}
	return abs(a) == abs(b)
}

// checkRecipeIn refuses dir (the folder flagName names: a study folder or a publish folder) when
// it holds runs of another recipe than recipe. The runs' metrics.json and the recipes that
// study.json's invocations recorded are compared; a folder without them passes.
func checkRecipeIn(dir, flagName string, recipe gpt.Config) error {
	refuse := func(where string, other gpt.Config) error {
		return cli.Usagef("%s holds runs of another recipe (%s) than this study's (%s): a study folder, and a folder it publishes in, hold one recipe, so give this one another %s",
			where, strings.Join(recipeDiff(other, recipe), ", "), strings.Join(recipeDiff(recipe, other), ", "), flagName)
	}
	want := canonicalJSON(recipe, nil)
	paths, _ := filepath.Glob(filepath.Join(dir, "runs", "*", "metrics.json"))
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var m results.Metrics
		if json.Unmarshal(raw, &m) != nil { // finished() reports it when the run is in the grid
			continue
		}
		if canonicalJSON(m.Config, nil) != want {
			return refuse(filepath.Dir(path), m.Config)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "study.json"))
	if err != nil {
		return nil
	}
	var sf studyFile
	if json.Unmarshal(raw, &sf) != nil {
		return nil // openStudyFile reports it
	}
	for _, inv := range sf.Invocations {
		if inv.Config != nil && canonicalJSON(*inv.Config, nil) != want {
			return refuse(dir, *inv.Config)
		}
	}
	return nil
}

// recipeDiff lists the settings of recipe a that differ from b's, by their -set names, as
// "max_iters=3".
func recipeDiff(a, b gpt.Config) []string {
	ca, cb := context.New(), context.New()
	a.SetParams(ca)
	b.SetParams(cb)
	var out []string
	for _, name := range gpt.ParamNames() {
		x, _ := ca.GetParam(name)
		if y, _ := cb.GetParam(name); x != y {
			out = append(out, fmt.Sprintf("%s=%v", name, x))
		}
	}
	return out
}
