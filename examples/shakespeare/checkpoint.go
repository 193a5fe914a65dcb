package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/writable"
)

// A run's checkpoints live in RUN/checkpoint, one directory per saved iteration:
//
//	RUN/checkpoint/step-00000250/   GoMLX's checkpoint-*.json and .bin, history.json, SHA256SUMS
//	RUN/checkpoint/step-00000500/
//	RUN/checkpoint/.partial/        the checkpoint being written (never read as a checkpoint)
//
// A save writes the next checkpoint and its history into .partial, syncs every file and the
// directory, reads the checkpoint back, writes the digests of its files (SHA256SUMS) and syncs
// them, and only then renames .partial to step-NNNNNNNN and syncs the parent: a step directory is complete or absent, whatever interrupts the save (a
// kill, a full disk, a power cut). The weights and the history are in the same directory, so
// they are always in step. The newest keepCheckpoints are kept; resuming uses the newest one
// that reads back, and says so when it had to skip newer ones.
//
// Training does not wait for the files: at a checkpoint the trainer copies the state of that
// iteration (every variable, the hyperparameters and the history) to host memory, a snapshot,
// and a ckptWriter writes it in the background while training goes on. The files hold the
// variables uncompressed (GoMLX's default gzip costs seconds for the paper preset's 133 MB and
// hardly shrinks float32 weights); older gzip checkpoints still load.
const (
	stepPrefix      = "step-"
	stagingName     = ".partial"
	trashPrefix     = ".trash-"
	keepCheckpoints = 3
)

// ckptStore is the checkpoint directory of one run.
type ckptStore struct {
	dir string // RUN/checkpoint
}

// runStore is the checkpoint directory of the run in runDir.
func runStore(runDir string) ckptStore { return ckptStore{dir: filepath.Join(runDir, "checkpoint")} }

func (s ckptStore) staging() string { return filepath.Join(s.dir, stagingName) }

func (s ckptStore) stepDir(step int) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%08d", stepPrefix, step))
}

// savedCheckpoint is one complete-looking checkpoint directory.
type savedCheckpoint struct {
	dir  string
	step int
}

// list returns the step directories, newest first. A directory of the layout before step
// directories existed (checkpoint files directly in RUN/checkpoint) is listed last, as step -1.
func (s ckptStore) list() ([]savedCheckpoint, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		if broken := writable.BrokenLink(s.dir); broken != nil {
			return nil, fmt.Errorf("the checkpoint directory: %w", broken)
		}
		return nil, nil
	}
	if info, statErr := os.Stat(s.dir); statErr == nil && !info.IsDir() {
		return nil, fmt.Errorf("%s is a file, where the run keeps its checkpoint directory: move it away", s.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the checkpoint directory: %w", err)
	}
	var out []savedCheckpoint
	legacy := false
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() && strings.HasPrefix(name, stepPrefix) {
			if step, err := strconv.Atoi(strings.TrimPrefix(name, stepPrefix)); err == nil {
				out = append(out, savedCheckpoint{dir: filepath.Join(s.dir, name), step: step})
			}
		}
		if !e.IsDir() && strings.HasPrefix(name, "checkpoint-") && strings.HasSuffix(name, checkpoints.JsonNameSuffix) {
			legacy = true
		}
	}
	slices.SortFunc(out, func(a, b savedCheckpoint) int { return b.step - a.step })
	if legacy {
		out = append(out, savedCheckpoint{dir: s.dir, step: -1})
	}
	return out, nil
}

// readCheckpoint loads the checkpoint in dir into a fresh context and reads its history; it
// fails unless every file has the digest it was saved with (checkDigests), both read completely
// and they agree on the iteration. Damaged files give an error, never a panic or an allocation of
// whatever a damaged shape says (checkLayout), so that the caller can go on to an older checkpoint.
func readCheckpoint(dir string) (saved *context.Context, hist *history, err error) {
	defer func() {
		if r := recover(); r != nil {
			saved, hist, err = nil, nil, fmt.Errorf("unreadable: %v", r)
		}
	}()
	if err := checkDigests(dir); err != nil {
		return nil, nil, err
	}
	if err := checkLayout(dir); err != nil {
		return nil, nil, err
	}
	saved = context.New()
	if _, err := checkpoints.Load(saved).Dir(dir).Immediate().Done(); err != nil {
		return nil, nil, fmt.Errorf("%v", err)
	}
	migrateParams(saved)
	if hist, err = readHistory(dir); err != nil {
		return nil, nil, err
	}
	if step := gomlxopt.GetGlobalStep(saved); int64(len(hist.IterLoss)) != step {
		return nil, nil, fmt.Errorf("%s records %d iterations but the checkpoint is at %d", historyFile, len(hist.IterLoss), step)
	}
	return saved, hist, nil
}

// readHistory reads the history file of the checkpoint in dir.
func readHistory(dir string) (*history, error) {
	raw, err := os.ReadFile(filepath.Join(dir, historyFile))
	if err != nil {
		return nil, fmt.Errorf("no %s (%v)", historyFile, err)
	}
	hist := &history{}
	if err := json.Unmarshal(raw, hist); err != nil {
		return nil, fmt.Errorf("%s: %v", historyFile, err)
	}
	return hist, nil
}

// newest returns the newest checkpoint that reads back completely, and a line for each newer
// one that did not. found is false when there is no checkpoint at all; err is set when there
// are checkpoints but none reads back.
func (s ckptStore) newest() (c savedCheckpoint, saved *context.Context, hist *history, skipped []string, found bool, err error) {
	all, err := s.list()
	if err != nil {
		return c, nil, nil, nil, false, err
	}
	for _, c := range all {
		saved, hist, err := readCheckpoint(c.dir)
		if err == nil {
			return c, saved, hist, skipped, true, nil
		}
		skipped = append(skipped, fmt.Sprintf("%s: %v", c.dir, err))
	}
	if len(all) > 0 {
		return c, nil, nil, skipped, true, fmt.Errorf("no checkpoint in %s reads back:\n  %s", s.dir, strings.Join(skipped, "\n  "))
	}
	return c, nil, nil, nil, false, nil
}

// startedDeterministic reports whether the newest checkpoint whose history reads back records
// run-to-run determinism (history.Deterministic). It reads the small history file alone (the
// trainer asks before its backend exists, and restore checks the checkpoint in full later).
func (s ckptStore) startedDeterministic() bool {
	all, _ := s.list()
	for _, c := range all {
		if h, err := readHistory(c.dir); err == nil {
			return h.Deterministic
		}
	}
	return false
}

// clean removes what an interrupted save or prune left behind (the writer's lock must be held).
func (s ckptStore) clean() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if e.Name() == stagingName || strings.HasPrefix(e.Name(), trashPrefix) {
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepareStaging creates the checkpoint directory and an empty .partial, removing what an
// interrupted save left.
func (s ckptStore) prepareStaging() error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		if broken := writable.BrokenLink(s.dir); broken != nil {
			err = broken
		}
		return fmt.Errorf("cannot create the checkpoint directory: %w", err)
	}
	if err := s.clean(); err != nil {
		return err
	}
	return os.Mkdir(s.staging(), 0o755)
}

// snapshot is a checkpoint in host memory: a context holding copies of a run's hyperparameters
// and variables at one iteration, and a copy of its history up to it.
type snapshot struct {
	ctx  *context.Context
	hist *history
	step int
}

// takeSnapshot copies ctx's hyperparameters and variables, the values of loaded (the checkpoint
// the run resumed from; nil for none) that no variable of ctx has taken yet (GoMLX's Save keeps
// those too), and hist to host memory. Nothing of the snapshot shares memory with ctx, whose
// variables the next training step replaces (reusing their device buffers).
func takeSnapshot(ctx *context.Context, loaded *checkpoints.Handler, hist *history) (*snapshot, error) {
	snap := context.New().Checked(false)
	ctx.EnumerateParams(func(scope, key string, value any) {
		snap.InAbsPath(scope).SetParam(key, value)
	})
	for v := range ctx.IterVariables() {
		value, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
		}
		clone, err := value.LocalClone()
		if err != nil {
			return nil, fmt.Errorf("copying variable %s to host memory: %w", v.ScopeAndName(), err)
		}
		snap.InAbsPath(v.Scope()).VariableWithValue(v.Name(), clone)
	}
	if loaded != nil {
		for param, value := range loaded.LoadedVariables() {
			clone, err := value.LocalClone()
			if err != nil {
				return nil, err
			}
			scope, name := context.VariableScopeAndNameFromParameterName(param)
			snap.InAbsPath(scope).VariableWithValue(name, clone)
		}
	}
	h := *hist
	h.IterLoss, h.Evals, h.Telemetry = slices.Clone(hist.IterLoss), slices.Clone(hist.Evals), slices.Clone(hist.Telemetry)
	return &snapshot{ctx: snap, hist: &h, step: len(hist.IterLoss)}, nil
}

// saveHook, when set (by tests), runs between the stages of a save, to interrupt it there or
// make it fail.
var saveHook func(stage string) error

func hook(stage string) error {
	if saveHook != nil {
		return saveHook(stage)
	}
	return nil
}

// save writes the checkpoint of snap (GoMLX's checkpoint of its context, written into
// .partial) with its history, makes it visible atomically, and prunes old checkpoints. On
// failure the partial checkpoint is removed and the previous ones are untouched. It only reads
// snap, so it runs while training goes on.
func (s ckptStore) save(snap *snapshot) (err error) {
	step := snap.step
	final := s.stepDir(step)
	defer func() {
		if err != nil {
			_ = os.RemoveAll(s.staging())
			_ = os.Mkdir(s.staging(), 0o755)
			err = s.describeFailure(step, estimateCheckpoint(snap.ctx, snap.step, len(snap.hist.Evals)), err)
		}
	}()
	if _, statErr := os.Lstat(final); statErr == nil {
		// A run resumed there and stopped at once: this iteration is saved already, the same
		// state. Anything else by that name (a damaged checkpoint that the resume skipped, an
		// empty folder or a file left by another tool) would hide this save, and the next resume
		// would skip it again: it goes, through a .trash- name as in prune, and the save goes on.
		if saved, _, readErr := readCheckpoint(final); readErr == nil && gomlxopt.GetGlobalStep(saved) == int64(step) {
			return nil
		}
		if err := s.discard(final); err != nil {
			return fmt.Errorf("replacing %s, which does not read back: %w", final, err)
		}
	}
	if err := hook("start"); err != nil {
		return err
	}
	// .partial is empty here (prepareStaging and every save leave it so): the handler loads
	// nothing into snap.ctx.
	h, err := checkpoints.Build(snap.ctx).Dir(s.staging()).WithCompression(checkpoints.BinUncompressed).Done()
	if err != nil {
		return err
	}
	if err := h.Save(); err != nil {
		return err
	}
	if err := hook("weights"); err != nil {
		return err
	}
	if err := results.WriteJSON(filepath.Join(s.staging(), historyFile), snap.hist); err != nil {
		return err
	}
	if err := hook("history"); err != nil {
		return err
	}
	if err := syncDir(s.staging(), true); err != nil {
		return err
	}
	// Read it back: GoMLX v0.26's Save can miss a failed write of a variable's data. Then the
	// digests of what read back (written after, so the read does not hash the files again).
	if _, _, err := readCheckpoint(s.staging()); err != nil {
		return fmt.Errorf("the checkpoint written does not read back: %v", err)
	}
	if err := writeDigests(s.staging()); err != nil {
		return err
	}
	if err := syncFile(filepath.Join(s.staging(), digestFile)); err != nil {
		return err
	}
	if err := syncDir(s.staging(), false); err != nil {
		return err
	}
	if err := hook("verified"); err != nil {
		return err
	}
	if err := os.Rename(s.staging(), final); err != nil {
		return err
	}
	if err := syncDir(s.dir, false); err != nil {
		return err
	}
	if err := hook("renamed"); err != nil {
		return err
	}
	if err := os.Mkdir(s.staging(), 0o755); err != nil {
		return err
	}
	return s.prune()
}

// ckptWriter saves snapshots in the background, one at a time. While a write is in flight
// training goes on, and the previous checkpoint stays the newest complete one until the write's
// rename (see save): a crash meanwhile resumes from it.
type ckptWriter struct {
	store   ckptStore
	pending chan writeResult // the result of the write in flight; nil when none is
	saved   atomic.Int64     // the iteration of the newest complete checkpoint
}

type writeResult struct {
	seconds float64 // the write's wall time
	err     error
}

// start writes snap in the background. At most one write is in flight (two would compete for
// the disk, and each holds a copy of the state in memory): the caller waits for the previous one
// first (wait), and start panics if it did not.
func (w *ckptWriter) start(snap *snapshot) {
	if w.pending != nil {
		panic("internal error: a checkpoint write started while another is in flight")
	}
	done := make(chan writeResult, 1)
	w.pending = done
	go func() {
		began := time.Now()
		err := w.store.save(snap)
		if err == nil {
			w.saved.Store(int64(snap.step))
		}
		done <- writeResult{seconds: time.Since(began).Seconds(), err: err}
	}()
}

// wait waits for the write in flight, if any, and returns its result (zero when none).
func (w *ckptWriter) wait() writeResult {
	if w.pending == nil {
		return writeResult{}
	}
	r := <-w.pending
	w.pending = nil
	return r
}

// failed returns the error of a write that has ended in failure, without waiting: nil while a
// write is in flight or after one that succeeded (whose result wait still returns).
func (w *ckptWriter) failed() error {
	if w.pending == nil {
		return nil
	}
	select {
	case r := <-w.pending:
		w.pending <- r // the channel holds one result: put it back for wait
		return r.err
	default:
		return nil
	}
}

// prune removes all but the newest keepCheckpoints step directories (and the old layout's
// files once a step directory exists). Each goes to a .trash- name first, so a removal cut
// short never leaves a half-deleted checkpoint that looks like one.
func (s ckptStore) prune() error {
	all, err := s.list()
	if err != nil {
		return err
	}
	kept := 0
	for _, c := range all {
		if c.step < 0 {
			if err := removeLegacy(s.dir); err != nil {
				return err
			}
			continue
		}
		if kept++; kept <= keepCheckpoints {
			continue
		}
		if err := s.discard(c.dir); err != nil {
			return err
		}
	}
	return nil
}

// discard removes the step directory (or whatever is there) at path through a .trash- name, so
// that a removal cut short never leaves a half-deleted checkpoint that looks like one (clean
// removes what is left of it).
func (s ckptStore) discard(path string) error {
	trash := filepath.Join(s.dir, trashPrefix+filepath.Base(path))
	if err := os.RemoveAll(trash); err != nil {
		return err
	}
	if err := os.Rename(path, trash); err != nil {
		return err
	}
	return os.RemoveAll(trash)
}

// removeLegacy removes checkpoint files of the old layout (directly in RUN/checkpoint).
func removeLegacy(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && (strings.HasPrefix(e.Name(), "checkpoint-") || e.Name() == historyFile) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// estimateCheckpoint is about the size of a checkpoint of ctx whose history holds iters
// iterations and evals evaluations, from what the files hold: each variable's values, its
// metadata (under 256 bytes), the hyperparameters (under 4 KiB), and the history, indented JSON
// of under 160 bytes an iteration (its loss and SMI's telemetry) and 128 an evaluation. (The
// tiny preset with one layer, at 40 iterations: 218,196 bytes of values, 10,593 of metadata for
// its 46 variables, 5,874 of history.)
func estimateCheckpoint(ctx *context.Context, iters, evals int) int64 {
	n := int64(4096 + 160*iters + 128*evals)
	for v := range ctx.IterVariables() {
		n += 256
		if t, err := v.Value(); err == nil && t != nil {
			n += int64(t.Memory())
		}
	}
	return n
}

// describeFailure turns a failed save into an error that says what is safe and, for a full
// disk, how much space the run's checkpoints need and how much there is. snapBytes is the
// estimated size of the checkpoint being saved (estimateCheckpoint), used until one exists.
func (s ckptStore) describeFailure(step int, snapBytes int64, err error) error {
	all, _ := s.list()
	last := "No earlier checkpoint exists: the run would start over"
	if len(all) > 0 && all[0].step >= 0 {
		last = fmt.Sprintf("The checkpoint of iteration %d (%s) is intact", all[0].step, all[0].dir)
	}
	msg := fmt.Sprintf("saving the checkpoint of iteration %d in %s failed: %v", step, s.dir, err)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || strings.Contains(err.Error(), "no space left") {
		msg += ".\n" + s.spaceNeeded(all, snapBytes)
	}
	return fmt.Errorf("%s.\n%s; free space (or fix the cause) and run the same command to resume", msg, last)
}

// checkpointSize is the size of one of the run's checkpoints, with where it comes from: the newest
// in all (the checkpoints there now), else stateBytes, the size of the state to save; and k, the
// number of checkpoints there now.
func checkpointSize(all []savedCheckpoint, stateBytes int64) (size int64, from string, k int) {
	for _, c := range all {
		if c.step >= 0 {
			k++
		}
	}
	if k > 0 {
		return dirSize(all[0].dir), "the last checkpoint", k
	}
	return stateBytes, "estimated from the state being saved", 0
}

// spaceToGoOn is the free space the run's next saves need, with k checkpoints there now and
// checkpoints of size bytes: it keeps the newest keepCheckpoints and writes the next beside them
// before it removes the oldest, so until keepCheckpoints exist each save adds one, and then the
// disk holds one more than that while a save is under way. saves bounds the count by the saves
// left to the run (-1: no bound).
func spaceToGoOn(k int, size int64, saves int) int64 {
	n := keepCheckpoints + 1 - min(k, keepCheckpoints)
	if saves >= 0 {
		n = min(n, saves)
	}
	return int64(n) * size
}

// freeSpace is the space free to an unprivileged writer where dir is, and whether the file system
// is out of inodes (it holds no more files, whatever its free space); ok is false when unknown.
func freeSpace(dir string) (free int64, noInodes, ok bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false, false
	}
	return int64(st.Bavail) * int64(st.Bsize), st.Files > 0 && st.Ffree == 0, true
}

// spaceNeeded says, after a save failed for want of space, what the run's checkpoints need to go
// on (spaceToGoOn) and what is free. all: the checkpoints there now.
func (s ckptStore) spaceNeeded(all []savedCheckpoint, snapBytes int64) string {
	size, from, k := checkpointSize(all, snapBytes)
	free := "an unknown amount"
	if n, noInodes, ok := freeSpace(s.dir); ok {
		if noInodes {
			return "The file system is out of inodes: it can hold no more files, whatever its free space"
		}
		free = humanBytes(n)
	}
	return fmt.Sprintf("The disk is full: a checkpoint needs about %s (%s); the run keeps the newest %d and writes the next beside them "+
		"before removing the oldest, so with %d there now it needs up to about %s free to go on (less when fewer saves are left), and %s is free there",
		humanBytes(size), from, keepCheckpoints, k, humanBytes(spaceToGoOn(k, size, -1)), free)
}

// spaceWarning is the warning a run prints at its first step when the disk cannot hold the
// checkpoints it will save (saves of them left), or "" when it can. stateBytes: a checkpoint's
// size until one exists (estimateCheckpoint).
func (s ckptStore) spaceWarning(stateBytes int64, saves int) string {
	all, err := s.list()
	if err != nil {
		return ""
	}
	size, _, k := checkpointSize(all, stateBytes)
	need := spaceToGoOn(k, size, saves)
	free, noInodes, ok := freeSpace(s.dir)
	switch {
	case !ok || need == 0:
		return ""
	case noInodes:
		return fmt.Sprintf("Warning: the file system of %s is out of inodes: the next checkpoint will fail unless files are removed "+
			"(the run then stops, with its last checkpoint).", s.dir)
	case free >= need:
		return ""
	}
	return fmt.Sprintf("Warning: %s has %s free, and this run's checkpoints need about %s more (about %s each; the newest %d are kept "+
		"and the next is written beside them): a save will fail for want of space unless some is freed (the run then stops, with its last checkpoint).",
		s.dir, humanBytes(free), humanBytes(need), humanBytes(size), keepCheckpoints)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

// syncDir fsyncs dir and, when files is true, every regular file in it.
func syncDir(dir string, files bool) error {
	if files {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			if err := syncFile(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return syncFile(dir)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}
