package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/backend"
)

// The fault-injection tests run the trainer as a child process: the test binary itself, which
// TestMain turns into the shakespeare command when childEnv is set.
const (
	childEnv      = "SMI_SHAKESPEARE_CHILD"
	savePauseEnv  = "SMI_SHAKESPEARE_SAVE_PAUSE"  // child: sleep this long at each stage of a save
	saveMarkerEnv = "SMI_SHAKESPEARE_SAVE_MARKER" // child: this file exists while a save is under way
	faultKillsEnv = "SMI_FAULT_KILLS"             // parent: number of kills (default 12)
	// By hand, on a larger run: SMI_FAULT_PRESET=cpu SMI_FAULT_SET="max_iters=300;eval_interval=100"
	// SMI_FAULT_EVERY=10 SMI_FAULT_KILLS=50 go test -run TestKillAnywhere -timeout 2h ./examples/shakespeare
	faultPresetEnv = "SMI_FAULT_PRESET" // default tiny
	faultSetEnv    = "SMI_FAULT_SET"    // default faultSet
	faultEveryEnv  = "SMI_FAULT_EVERY"  // -checkpoint_every, default 3
)

// TestMain also sets the environment the children inherit so that the tests hold on a GPU as on
// XLA CPU: run-to-run determinism (backend.DeterministicEnv, unless the environment sets it),
// since the tests require a resumed run, a rerun and a run of a study to repeat the uninterrupted
// run bit for bit, which a GPU does only in XLA's deterministic mode; and float32 arithmetic
// (backend.PinArithmetic: no TensorFloat-32 products), since their tolerances (a chunked
// evaluation against one batch at a time, 1e-6 relative; runs on several devices against one) are
// float32's.
func TestMain(m *testing.M) {
	if _, set := os.LookupEnv(backend.DeterministicEnv); !set {
		_ = os.Setenv(backend.DeterministicEnv, "1")
	}
	backend.PinArithmetic()
	if os.Getenv(childEnv) != "1" {
		code := m.Run()
		if reference.dir != "" {
			_ = os.RemoveAll(filepath.Dir(reference.dir))
		}
		os.Exit(code)
	}
	{
		pause, _ := time.ParseDuration(os.Getenv(savePauseEnv))
		marker := os.Getenv(saveMarkerEnv)
		saveHook = func(stage string) error {
			if stage == "start" && marker != "" {
				_ = os.WriteFile(marker, nil, 0o644)
			}
			time.Sleep(pause)
			if stage == "renamed" && marker != "" {
				_ = os.Remove(marker)
			}
			return nil
		}
		main()
		os.Exit(0)
	}
}

// faultSet is the run the fault tests train: tiny with one layer (each start compiles the step
// anew, and the faults, not the model, are what they test), SMI, with evaluations and
// checkpoints often.
const faultSet = "max_iters=40;eval_interval=20;eval_iters=2;n_layer=1"

func faultArgs(t *testing.T, dir string) []string {
	abs, err := filepath.Abs(sharedData)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"train", "-preset", envOr(faultPresetEnv, "tiny"), "-run", "5", "-seed", "7", "-quiet", "-bench_tokens", "0",
		"-data", abs, "-out", dir, "-checkpoint_every", envOr(faultEveryEnv, "3"), "-set", envOr(faultSetEnv, faultSet)}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startChild starts the trainer on dir; its output goes to out.
func startChild(t *testing.T, dir string, out *bytes.Buffer, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], faultArgs(t, dir)...)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

var reference struct {
	once          sync.Once
	dir           string
	took, startup time.Duration
	err           error
}

// referenceRun trains the fault tests' run once per test binary, uninterrupted, with saves
// slowed by savePause per stage as in the interrupted runs, and returns its directory, how long
// it took and how long until its first save began (start-up: loading and compiling).
func referenceRun(t *testing.T) (string, time.Duration, time.Duration) {
	t.Helper()
	reference.once.Do(func() {
		dir, err := os.MkdirTemp("", "fault-reference-")
		if err != nil {
			reference.err = err
			return
		}
		var out bytes.Buffer
		marker := filepath.Join(dir, "saving")
		began := time.Now()
		cmd := startChild(t, filepath.Join(dir, "run"), &out, savePauseEnv+"="+savePause.String(), saveMarkerEnv+"="+marker)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for reference.startup == 0 {
			select {
			case err := <-done:
				reference.err = fmt.Errorf("uninterrupted run: no save began (%v)\n%s", err, out.String())
				return
			case <-time.After(time.Millisecond):
				if _, err := os.Stat(marker); err == nil {
					reference.startup = time.Since(began)
				}
			}
		}
		if err := <-done; err != nil {
			reference.err = fmt.Errorf("uninterrupted run: %v\n%s", err, out.String())
		}
		reference.dir, reference.took = filepath.Join(dir, "run"), time.Since(began)
	})
	if reference.err != nil {
		t.Fatal(reference.err)
	}
	return reference.dir, reference.took, reference.startup
}

// savePause is how long each stage of a save sleeps in the fault tests: saves take about 5x it.
const savePause = 20 * time.Millisecond

func readMetrics(t *testing.T, dir string) *results.Metrics {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := &results.Metrics{}
	if err := json.Unmarshal(raw, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameRun fails unless two finished runs have the same losses, evaluations, SMI telemetry and
// final checkpoint (every variable, optimizer state and RNG state included), bit for bit.
func sameRun(t *testing.T, wantDir, gotDir string) {
	t.Helper()
	want, got := readMetrics(t, wantDir), readMetrics(t, gotDir)
	if len(got.IterLoss) != len(want.IterLoss) {
		t.Fatalf("%d iterations recorded, want %d", len(got.IterLoss), len(want.IterLoss))
	}
	for i := range want.IterLoss {
		if got.IterLoss[i] != want.IterLoss[i] {
			t.Fatalf("iteration %d: loss %v, uninterrupted %v", i+1, got.IterLoss[i], want.IterLoss[i])
		}
	}
	if fmt.Sprint(got.Evals) != fmt.Sprint(want.Evals) || fmt.Sprint(got.SMITelemetry) != fmt.Sprint(want.SMITelemetry) {
		t.Fatalf("evaluations or telemetry differ:\n%v %v\n%v %v", got.Evals, got.SMITelemetry, want.Evals, want.SMITelemetry)
	}
	wantCtx := newestCheckpoint(t, wantDir)
	gotCtx := newestCheckpoint(t, gotDir)
	// GoMLX's loop metrics (moving averages for the progress bar, under /metrics with a name
	// unique to each process) are no training state; every other variable must match.
	n, ignored := 0, 0
	for v := range wantCtx.IterVariables() {
		if strings.HasPrefix(v.Scope(), "/metrics") {
			continue
		}
		n++
		other := gotCtx.GetVariableByScopeAndName(v.Scope(), v.Name())
		if other == nil {
			t.Errorf("variable %s missing from the resumed run's checkpoint", v.ParameterName())
			continue
		}
		if !v.MustValue().Equal(other.MustValue()) {
			t.Errorf("variable %s differs from the uninterrupted run's", v.ParameterName())
		}
	}
	for v := range gotCtx.IterVariables() {
		if strings.HasPrefix(v.Scope(), "/metrics") {
			ignored++
		}
	}
	if n < 10 || n != gotCtx.NumVariables()-ignored {
		t.Errorf("checkpoints hold %d and %d training variables", n, gotCtx.NumVariables()-ignored)
	}
}

func newestCheckpoint(t *testing.T, dir string) *context.Context {
	t.Helper()
	_, saved, _, skipped, found, err := runStore(dir).newest()
	if err != nil || !found || len(skipped) > 0 {
		t.Fatalf("newest checkpoint of %s: found %v, skipped %v, %v", dir, found, skipped, err)
	}
	return saved
}

// TestKillAnywhere kills the trainer with SIGKILL at seeded random moments, half of them while a
// checkpoint is being written, resumes it after each, and expects the result of a run never
// interrupted, bit for bit. SMI_FAULT_KILLS sets the number of kills.
func TestKillAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("trains many times")
	}
	t.Parallel() // its children are processes of their own; the kills adapt to the load
	kills := 12
	if s := os.Getenv(faultKillsEnv); s != "" {
		var err error
		if kills, err = strconv.Atoi(s); err != nil {
			t.Fatalf("%s=%q", faultKillsEnv, s)
		}
	}
	const pause = savePause
	ref, whole, startup := referenceRun(t)
	var out bytes.Buffer
	began := time.Now()
	marker := filepath.Join(t.TempDir(), "saving")
	rng := rand.New(rand.NewPCG(2026, 12))
	killed, midSave, starts, campaigns := 0, 0, 0, 0
	// The kills' moments come from the reference run's timings, which other tests running at the
	// same time can stretch. Each time a run ends before its kill, the timed moments shrink by
	// half, so the kills land however the load differs between the reference run and this one.
	scale := 1.0
	// A campaign is one run killed and resumed until it finishes; when a run finishes before
	// the kills are done, another campaign starts in a fresh directory.
	for killed < kills {
		campaigns++
		dir := t.TempDir()
	run:
		for {
			starts++
			out.Reset()
			_ = os.Remove(marker)
			cmd := startChild(t, dir, &out, savePauseEnv+"="+pause.String(), saveMarkerEnv+"="+marker)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if killed >= kills {
				if err := <-done; err != nil {
					t.Fatalf("final resume after %d kills: %v\n%s", killed, err, out.String())
				}
				break
			}
			// The kill's moment, by turns: while training (after start-up, spread so that the
			// kills cover the run), during a save, during start-up (loading, compiling), during
			// a save.
			var trigger <-chan time.Time
			switch killed % 4 {
			case 0:
				trigger = time.After(time.Duration(scale * (float64(startup) + rng.Float64()*2*float64(whole-startup)/float64(kills))))
			case 2:
				trigger = time.After(time.Duration(scale * rng.Float64() * float64(startup)))
			default:
				in := time.Duration(rng.Float64() * float64(5*pause))
				ch := make(chan time.Time, 1)
				trigger = ch
				go func() {
					for {
						if _, err := os.Stat(marker); err == nil {
							time.Sleep(in)
							ch <- time.Now()
							return
						}
						select {
						case err := <-done:
							done <- err // the child ended by itself: let the outer select see it
							return
						case <-time.After(time.Millisecond):
						}
					}
				}()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("start %d (after %d kills) failed by itself: %v\n%s", starts, killed, err, out.String())
				}
				scale /= 2
				if campaigns > 3*kills {
					t.Fatalf("%d runs finished before their kill (%d kills so far): the kills cannot be timed", campaigns, killed)
				}
				break run // the run finished before the kill
			case <-trigger:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
				killed++
				if _, err := os.Stat(marker); err == nil {
					midSave++
				}
			}
		}
		sameRun(t, ref, dir)
	}
	t.Logf("%d kills (%d while a checkpoint was being written), %d starts in %d runs, %.1f s; every resume succeeded and every run's result is bit-identical to the uninterrupted run",
		killed, midSave, starts, campaigns, time.Since(began).Seconds())
	if kills >= 6 && midSave == 0 {
		t.Errorf("no kill landed during a save: the test did not test what it should")
	}
}

// TestSecondProcessRefused: while one trainer holds a run directory, a second fails at once,
// naming the directory and the holder's PID; the lock goes with the holder, even after SIGKILL.
func TestSecondProcessRefused(t *testing.T) {
	dir := t.TempDir()
	lock, err := results.LockDir(dir, "-out")
	if err != nil {
		t.Fatal(err)
	}
	_, err = results.LockDir(dir, "-dir")
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", os.Getpid())) ||
		!strings.Contains(err.Error(), "use -dir for another directory") {
		t.Fatalf("second lock: %v (want the directory, the holder's PID and the flag that picks another)", err)
	}
	lock.Release()
	if l, err := results.LockDir(dir, "-out"); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		l.Release()
	}

	// A child killed with SIGKILL while training gives the directory back.
	var out bytes.Buffer
	cmd := startChild(t, dir, &out, savePauseEnv+"=200ms")
	pid := strconv.Itoa(cmd.Process.Pid)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if raw, _ := os.ReadFile(filepath.Join(dir, results.LockFile)); strings.TrimSpace(string(raw)) == pid {
			break // the child holds the lock
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never held the lock\n%s", out.String())
		}
	}
	if _, err := results.LockDir(dir, "-out"); err == nil || !strings.Contains(err.Error(), "PID "+pid) {
		t.Fatalf("locking a directory a running trainer holds: %v", err)
	}
	// The whole command refuses too, with the holder named.
	err = runCommand(cmdTrain, faultArgs(t, dir)[1:])
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second trainer: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	l, err := results.LockDir(dir, "-out")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}

// TestSignalsStopCleanly: SIGTERM and SIGHUP stop the trainer as Ctrl-C does, after the
// current step and with a checkpoint, and the run resumes to the uninterrupted result.
func TestSignalsStopCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several times")
	}
	t.Parallel()
	ref, _, _ := referenceRun(t)
	var out bytes.Buffer
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		dir := t.TempDir()
		marker := filepath.Join(t.TempDir(), "saving")
		out.Reset()
		// Saves are slowed so the signal arrives while training, after the first checkpoint.
		cmd := startChild(t, dir, &out, savePauseEnv+"=50ms", saveMarkerEnv+"="+marker)
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint started\n%s", out.String())
			}
		}
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out.String(), "run the same command to resume") {
			t.Fatalf("%v: exit %v, output:\n%s", sig, err, out.String())
		}
		out.Reset()
		if err := startChild(t, dir, &out).Wait(); err != nil {
			t.Fatalf("resuming after %v: %v\n%s", sig, err, out.String())
		}
		if !strings.Contains(out.String(), "Resuming") {
			t.Errorf("after %v the run started over:\n%s", sig, out.String())
		}
		sameRun(t, ref, dir)
	}
}

// TestBrokenPipeStopsCleanly: a trainer whose output pipe has no reader any more (`| tee log`,
// the tee ended by the same Ctrl-C) still stops after the step with a checkpoint, as a signal
// asks, instead of dying of SIGPIPE at its next line.
func TestBrokenPipeStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "saving")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], faultArgs(t, dir)...)
	cmd.Env = append(os.Environ(), childEnv+"=1", savePauseEnv+"=50ms", saveMarkerEnv+"="+marker)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r.Close() // no reader: the child's next write fails with EPIPE
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the trainer ended before its first checkpoint: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint started")
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	err = <-done
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("interrupted with no reader of its output: %v, want exit status 1 (stopped with a checkpoint)", err)
	}
	all, err := runStore(dir).list()
	if err != nil || len(all) == 0 {
		t.Fatalf("no checkpoint after the stop: %v", err)
	}
	t.Logf("stopped at iteration %d", all[0].step)
}

// TestExitAtOnceMessage: after a second signal the trainer says where the same command resumes
// the run: from its newest checkpoint, or from the start when none was saved yet (iteration 0's
// evaluation saves none).
func TestExitAtOnceMessage(t *testing.T) {
	for saved, want := range map[int64]string{
		0:  "interrupt again: exiting without saving; no checkpoint saved yet: the same command starts the run over.",
		20: "interrupt again: exiting without saving; the run resumes from its checkpoint of iteration 20 (run the same command).",
	} {
		if got := exitAtOnceMessage(os.Interrupt, saved); got != want {
			t.Errorf("saved %d: %q, want %q", saved, got, want)
		}
	}
}

// TestSaveOnFullDisk trains into a small file system that fills up: the failed save says how
// much space a checkpoint needs and how much is free, the last good checkpoint stays usable, and
// the run, moved to a larger disk, resumes to the uninterrupted result. Where no file system can
// be mounted (not root), the full disk is an injected ENOSPC at the same point of the save.
func TestSaveOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several times")
	}
	ref, _, _ := referenceRun(t)
	var out bytes.Buffer
	ckpt := dirSize(filepath.Join(ref, "checkpoint", fmt.Sprintf("step-%08d", 40)))

	small := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	// Room for about 3.5 checkpoints: the fourth save (three kept, a fourth being written) fails.
	size := ckpt*7/2 + 64<<10
	mounted := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", small).Run() == nil
	if mounted {
		t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
		t.Logf("a %d-byte tmpfs (checkpoints of %d bytes)", size, ckpt)
	} else {
		t.Logf("cannot mount a tmpfs here: injecting ENOSPC into the fourth save instead")
	}
	dir := filepath.Join(small, "run")
	out.Reset()
	var err error
	if mounted {
		err = startChild(t, dir, &out).Wait()
	} else {
		saves := 0
		saveHook = func(stage string) error {
			if stage == "weights" {
				if saves++; saves == 4 {
					return fmt.Errorf("write: %w", syscall.ENOSPC)
				}
			}
			return nil
		}
		defer func() { saveHook = nil }()
		err = runCommand(cmdTrain, faultArgs(t, dir)[1:])
		out.WriteString(fmt.Sprint(err))
	}
	if err == nil {
		t.Fatalf("training into a full disk succeeded:\n%s", out.String())
	}
	// On a real small disk the run said at its first step that its checkpoints would not fit.
	if mounted && !strings.Contains(out.String(), "a save will fail for want of space") {
		t.Errorf("no warning at the first step that the checkpoints will not fit:\n%s", out.String())
	}
	for _, want := range []string{"disk is full", "a checkpoint needs about", "is free there", "of iteration 9", "is intact", "run the same command to resume"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the error lacks %q:\n%s", want, out.String())
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "checkpoint", stagingName))
	if len(entries) > 0 {
		t.Errorf("the failed save left %d files in %s", len(entries), stagingName)
	}
	c, _, hist, skipped, found, err := runStore(dir).newest()
	if err != nil || !found || len(skipped) > 0 || c.step != 9 || len(hist.IterLoss) != 9 {
		t.Fatalf("after the failed save: newest %+v (found %v, skipped %v): %v", c, found, skipped, err)
	}
	// Moved to a disk with room, the run resumes from that checkpoint to the same result.
	big := filepath.Join(t.TempDir(), "run")
	if err := exec.Command("cp", "-a", dir, big).Run(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := startChild(t, big, &out).Wait(); err != nil || !strings.Contains(out.String(), "Resuming") {
		t.Fatalf("resuming on a larger disk: %v\n%s", err, out.String())
	}
	sameRun(t, ref, big)
}
