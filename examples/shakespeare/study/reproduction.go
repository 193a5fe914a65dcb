package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/gpt"
	"github.com/smi-gomlx/smi/internal/platform"
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
	variant            string   // its recipe's settings that differ from its preset's, or from another section's of the same preset and backend kind ("" when none)
	offPreset          []string // its recipe's settings that differ from its preset's (a run shortened by -set is not the preset's experiment)
	sources            []*studySource
	stepFiles          []stepSource
	steps              *stepFile            // the steps file with the most configurations (then rounds; the first folder on a tie)
	stepsNames         map[*stepFile]string // each steps file's path, relative to the report
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
	docsDir   string   // the repository's docs folder, which the report links to (see docLink)
	sources   []*studySource
	sections  []*studyData
	problems  []string                 // what belongs to no section
	diverged  map[string][]divergedRun // the runs that diverged, by sectionKey
}

// backendKind names the kind of machine a backend computes on, from its description: the
// platform its plugin's name names (internal/platform's rule: "cpu", "cuda", "rocm", "tpu", ...;
// never a folder above the plugin), "go" (GoMLX's pure Go backend), or the description's first part.
func backendKind(desc string) string {
	l := strings.ToLower(desc)
	if strings.HasPrefix(l, "simple go") || l == "go" {
		return "go"
	}
	if name := platform.Name(desc); name != "" {
		return name
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
	case "gpu":
		return "GPU (a PJRT plugin named gpu)"
	case "metal":
		return "Apple GPU (a Metal PJRT plugin)"
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
		walk := root
		if l, err := os.Lstat(root); err == nil && l.Mode()&os.ModeSymlink != 0 {
			walk = root + string(filepath.Separator) // WalkDir does not follow a link it is given
		}
		found := 0
		err = filepath.WalkDir(walk, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "runs" && p != walk {
				return fs.SkipDir // a study's run files, not another study
			}
			if !e.IsDir() && e.Name() == "study.json" {
				found++
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
		if found == 0 && len(roots) > 1 { // a folder given that adds nothing: say so, not drop it
			return nil, fmt.Errorf("no published study (study.json) in or under %s, one of the folders the report is made from", root)
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
	for _, d := range s.study.Diverged {
		problems = append(problems, fmt.Sprintf("%s: %s: it has no results", dir, d))
	}
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
	rp := &reproduction{roots: roots, reportDir: filepath.Dir(reportPath), docsDir: repoDocs(), diverged: map[string][]divergedRun{}}
	idx := &sectionIndex{byKey: map[string]*studyData{}}
	var loaded []loadedSource
	for _, dir := range dirs {
		s, recs, problems, err := loadSource(dir)
		if err != nil {
			return nil, err
		}
		rp.sources = append(rp.sources, s)
		loaded = append(loaded, loadedSource{s, recs, problems})
	}
	// Folders with runs first: a folder without any then joins the sections of its preset and
	// backend, whatever the folders' names.
	for _, withRuns := range []bool{true, false} {
		for _, l := range loaded {
			if (len(l.recs) > 0) == withRuns {
				rp.addSource(l, idx)
			}
		}
	}
	for _, key := range idx.keys {
		rp.sections = append(rp.sections, idx.byKey[key])
	}
	for _, d := range rp.sections {
		d.finish(rp)
	}
	rp.nameSections()
	if len(rp.sections) == 0 {
		why := ""
		if len(rp.problems) > 0 {
			why = ":\n  " + strings.Join(rp.problems, "\n  ")
		}
		return nil, fmt.Errorf("no usable run in %s%s", strings.Join(dirs, ", "), why)
	}
	return rp, nil
}

// sectionIndex is the sections found so far, by preset, kind of backend and recipe, in the
// order found.
type sectionIndex struct {
	byKey map[string]*studyData
	keys  []string
}

// sectionKey identifies a section: a preset, a kind of backend (from a backend's description) and
// a recipe.
func sectionKey(preset, backendDesc string, cfg gpt.Config) string {
	return preset + "|" + backendKind(backendDesc) + "|" + canonicalJSON(cfg, nil)
}

// section returns r's section, a new one when r is the first of its kind.
func (idx *sectionIndex) section(r *runRecord) *studyData {
	key := sectionKey(r.metrics.Preset, r.metrics.Backend, r.metrics.Config)
	d := idx.byKey[key]
	if d == nil {
		d = &studyData{preset: r.metrics.Preset, kind: backendKind(r.metrics.Backend), byRun: map[int]map[int64]*runRecord{}}
		idx.byKey[key] = d
		idx.keys = append(idx.keys, key)
	}
	return d
}

// loadedSource is a published study folder as loadSource read it.
type loadedSource struct {
	s        *studySource
	recs     []*runRecord
	problems []string
}

// addSource puts each run of the published study folder l in its section; the folder's problems
// go to the sections it feeds (or to the report's, when it feeds none).
func (rp *reproduction) addSource(l loadedSource, idx *sectionIndex) {
	s, recs, problems, dir := l.s, l.recs, l.problems, l.s.dir
	for _, d := range s.study.Diverged {
		key := sectionKey(s.study.Preset, d.Backend, d.Config)
		rp.diverged[key] = append(rp.diverged[key], d)
	}
	var sections []*studyData
	for _, r := range recs {
		d := idx.section(r)
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
		kind, recipe := "unknown", ""
		if n := len(s.study.Invocations); n > 0 {
			last := s.study.Invocations[n-1]
			kind = backendKind(last.Backend)
			if last.Config != nil {
				recipe = sectionKey(s.study.Preset, last.Backend, *last.Config)
			}
		}
		for _, key := range idx.keys {
			d := idx.byKey[key]
			// Runs that diverged name their recipe: only its section; so does a study.json that
			// records it. Otherwise (files written before it was recorded) the recipe is not
			// known: every section of the preset and backend.
			var joins bool
			switch {
			case len(s.study.Diverged) > 0:
				joins = slices.ContainsFunc(s.study.Diverged, func(x divergedRun) bool { return sectionKey(s.study.Preset, x.Backend, x.Config) == key })
			case recipe != "":
				joins = key == recipe
			default:
				joins = d.preset == s.study.Preset && d.kind == kind
			}
			if joins {
				sections = append(sections, d)
			}
		}
		if len(sections) == 0 {
			why := "yet"
			if len(s.study.Diverged) > 0 {
				why = fmt.Sprintf("(%d diverged, below)", len(s.study.Diverged))
			}
			rp.problems = append(rp.problems, fmt.Sprintf("%s (the %s preset on %s) holds no usable run %s", rp.rel(dir), s.study.Preset, kind, why))
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

// nameSections orders the sections, by preset, then the most runs first, and names them: a
// preset's first section after it, the others after it and their backend.
func (rp *reproduction) nameSections() {
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
	// A recipe other than its preset's, and sections of one preset and backend kind (which differ
	// in their recipe): their titles name the settings.
	for _, d := range rp.sections {
		d.offPreset = nil
		if p, err := gpt.Preset(d.preset); err == nil {
			d.offPreset = recipeDiff(d.records[0].metrics.Config, p)
		}
		fields := slices.Clone(d.offPreset)
		for _, e := range rp.sections {
			if e != d && e.preset == d.preset && e.kind == d.kind {
				for _, f := range recipeDiff(d.records[0].metrics.Config, e.records[0].metrics.Config) {
					fields = appendNew(fields, f)
				}
			}
		}
		d.variant = strings.Join(fields, ", ")
	}
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
			if d.stepsNames == nil {
				d.stepsNames = map[*stepFile]string{}
			}
			d.stepsNames[s.steps] = rp.rel(filepath.Join(s.dir, "steps.json"))
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
				if d.byRun[run][seed] == nil && !s.study.diverged(gridPoint{run: run, seed: seed}) { // a diverged run has its own line
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

// repoModule is the repository's Go module, whose go.mod marks the repository's root.
const repoModule = "github.com/smi-gomlx/smi"

// repoDocs is the repository's docs folder: docs/ beside the go.mod of repoModule in the working
// directory or the nearest folder above it (the command runs from the repository's root, where
// its defaults docs/reproduction and docs/REPRODUCTION.md lie; its tests run in their package's
// folder); docs/ of the working directory when there is none (a built command carried to
// another machine, run where the published folders are).
func repoDocs() string {
	dir, err := filepath.Abs(".")
	if err != nil {
		return "docs"
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == repoModule {
					return filepath.Join(dir, "docs")
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "docs"
		}
		dir = parent
	}
}

// docLink is the link from the report to a page of the repository's docs folder (name, with
// an optional #fragment): relative to the report, as its plots are, so that it resolves
// wherever -report puts it (from docs/REPRODUCTION.md: the page's name alone).
func (rp *reproduction) docLink(name string) string {
	page, fragment, _ := strings.Cut(name, "#")
	link := rp.rel(filepath.Join(rp.docsDir, page))
	if fragment != "" {
		link += "#" + fragment
	}
	return link
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
	// The plots first, the text last: a report cut short (a full disk, a kill) leaves the old
	// text, never a new one beside older plots.
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
	if err := results.WriteFileAtomic(path, []byte(md)); err != nil {
		return err
	}
	for _, p := range rp.problems {
		fmt.Fprintf(os.Stderr, "note: %s\n", p)
	}
	return nil
}

func appendNew[T comparable](xs []T, x T) []T {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}
