package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
)

// tinyRunOn is tinyRun on the given number of devices.
func tinyRunOn(t *testing.T, devices int, dir, set string, stopAt int) (*results.Metrics, error) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	if b.NumDevices() < devices {
		t.Skipf("backend %s has %d devices, the test needs %d", b.Name(), b.NumDevices(), devices)
	}
	corpus, err := data.Load(sharedData)
	if err != nil {
		t.Fatalf("the tests need tiny Shakespeare at %s (set SMI_DATA to the file, or run make data): %v", sharedData, err)
	}
	o := &trainOptions{Preset: "tiny", Run: 5, Seed: 7, Data: sharedData, Out: dir, Set: set, Quiet: true,
		Thresholds: "3.5,3.0", Devices: devices, stopAt: stopAt}
	ctx, cfg, err := o.settings(len(corpus.Chars))
	if err != nil {
		t.Fatal(err)
	}
	thresholds, _ := results.ParseThresholds(o.Thresholds)
	return trainRun(b, ctx, cfg, corpus, o, thresholds)
}

// checkpointState reads the run directory's newest checkpoint: every float variable, flattened.
func checkpointState(t *testing.T, dir string) map[string][]float64 {
	t.Helper()
	ctx := newestCheckpoint(t, dir)
	out := map[string][]float64{}
	for v := range ctx.IterVariables() {
		if strings.HasPrefix(v.ScopeAndName(), "/metrics/") { // The Trainer's, with a random id.
			continue
		}
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		value.ConstFlatData(func(flat any) {
			if f, ok := flat.([]float32); ok {
				xs := make([]float64, len(f))
				for i, x := range f {
					xs[i] = float64(x)
				}
				out[v.ScopeAndName()] = xs
			}
		})
	}
	return out
}

// Tolerances for the tiny preset with SMI(AdamW) (run 5, seed 7) on 2 or 4 devices against one,
// with the same global batches. The partitioned step sums gradients in another order, so results
// differ by rounding; and now and then an SMI mask flips a bin whose history ties with another's in
// exact arithmetic (see the optimizers package's tests), a real difference that training carries on.
// Measured worst cases on XLA CPU over 2 and 4 devices and the resumes across device counts, in the
// 24 iterations below (no flip): iteration losses 2.9e-6 (absolute; losses are about 2.5 to 4.2),
// evaluation losses 9.5e-7, kept-energy telemetry 7.7e-7, checkpoint variables (weights, AdamW
// moments, SMI histories) 3.7e-6 relative to max(1, |x|). Over 40 iterations, where a flip happened
// on 2 devices: 7.5e-5, 3.1e-4, 2.8e-4 and 9.4e-4. The tolerances admit flips, not a wrong
// gradient: 2 devices that both trained on the first half of each batch (tried once, by giving
// device 1 a copy of device 0's shard) had iteration losses 0.16 away.
const (
	devLossTol  = 1e-3
	devKeptTol  = 1e-3
	devStateTol = 1e-2
)

type runDiff struct{ loss, eval, kept, state float64 }

func compareRuns(t *testing.T, want, got *results.Metrics, wantDir, gotDir string) runDiff {
	t.Helper()
	var d runDiff
	if len(got.IterLoss) != len(want.IterLoss) || len(got.Evals) != len(want.Evals) || len(got.SMITelemetry) != len(want.SMITelemetry) {
		t.Fatalf("%d iterations, %d evaluations, %d telemetry points; want %d, %d, %d", len(got.IterLoss), len(got.Evals),
			len(got.SMITelemetry), len(want.IterLoss), len(want.Evals), len(want.SMITelemetry))
	}
	for i := range want.IterLoss {
		d.loss = math.Max(d.loss, math.Abs(want.IterLoss[i]-got.IterLoss[i]))
	}
	for i := range want.Evals {
		d.eval = math.Max(d.eval, math.Max(math.Abs(want.Evals[i].Train-got.Evals[i].Train), math.Abs(want.Evals[i].Val-got.Evals[i].Val)))
	}
	for i := range want.SMITelemetry {
		if want.SMITelemetry[i].Alpha != got.SMITelemetry[i].Alpha {
			t.Errorf("iteration %d: alpha %g, want %g", i+1, got.SMITelemetry[i].Alpha, want.SMITelemetry[i].Alpha)
		}
		d.kept = math.Max(d.kept, math.Abs(want.SMITelemetry[i].KeptEnergy-got.SMITelemetry[i].KeptEnergy))
	}
	ws, gs := checkpointState(t, wantDir), checkpointState(t, gotDir)
	histories := 0
	for name, w := range ws {
		g, ok := gs[name]
		if !ok || len(g) != len(w) {
			t.Fatalf("checkpoint variable %s: %d values, want %d", name, len(g), len(w))
		}
		if strings.HasPrefix(name, "/smi/history/") {
			histories++
		}
		for i := range w {
			d.state = math.Max(d.state, math.Abs(w[i]-g[i])/math.Max(1, math.Abs(w[i])))
		}
	}
	if len(gs) != len(ws) || histories == 0 {
		t.Fatalf("checkpoints hold %d and %d variables, %d SMI histories", len(ws), len(gs), histories)
	}
	return d
}

func (d runDiff) check(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: iteration losses within %.2g, evaluations %.2g, kept energy %.2g, checkpoint variables %.2g",
		what, d.loss, d.eval, d.kept, d.state)
	if d.loss > devLossTol || d.eval > devLossTol || d.kept > devKeptTol || d.state > devStateTol {
		t.Errorf("%s differs from one device beyond the tolerances (%g losses, %g kept energy, %g variables)",
			what, devLossTol, devKeptTol, devStateTol)
	}
}

// TestDevicesMatchOneDevice trains the tiny preset with SMI on 2 devices for 24 iterations; on 4
// for 20, then resumed on 1 for 4 more; and on 1 for 4, then resumed on 4 for 20: all match
// training on one device straight through, within the tolerances above, and their metrics record
// the device counts that trained them.
func TestDevicesMatchOneDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 6 runs")
	}
	t.Parallel()
	const set = "max_iters=24;eval_interval=12;eval_iters=2"
	oneDir := t.TempDir()
	one, err := tinyRunOn(t, 1, oneDir, set, 0)
	if err != nil {
		t.Fatal(err)
	}
	if one.Devices != 1 {
		t.Errorf("metrics record %d devices, want 1", one.Devices)
	}
	dir := t.TempDir()
	m, err := tinyRunOn(t, 2, dir, set, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Devices != 2 {
		t.Errorf("metrics record %d devices, want 2", m.Devices)
	}
	compareRuns(t, one, m, oneDir, dir).check(t, "2 devices")
	// The complete run, run again on 1 device, trains nothing: its metrics keep the count that trained.
	again, err := tinyRunOn(t, 1, dir, set, 0)
	if err != nil || again.Devices != 2 || again.DeviceCounts != nil {
		t.Errorf("the complete run rerun on 1 device: %v; metrics record %d devices (%v), want 2", err, again.Devices, again.DeviceCounts)
	}
	for _, c := range []struct{ before, stop, after int }{{4, 20, 1}, {1, 4, 4}} {
		dir := t.TempDir()
		if _, err := tinyRunOn(t, c.before, dir, set, c.stop); !errors.Is(err, errStopped) {
			t.Fatalf("stopping at iteration %d: got %v", c.stop, err)
		}
		m, err := tinyRunOn(t, c.after, dir, set, 0)
		if err != nil {
			t.Fatal(err)
		}
		if m.Devices != 0 || !slices.Equal(m.DeviceCounts, []int{c.before, c.after}) {
			t.Errorf("metrics record %d devices (%v), want 0 and the counts %d, %d", m.Devices, m.DeviceCounts, c.before, c.after)
		}
		compareRuns(t, one, m, oneDir, dir).check(t, fmt.Sprintf("%d devices for %d iterations, then %d", c.before, c.stop, c.after))
	}
}

func TestDevicesErrors(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	n := b.NumDevices()
	if n < 3 {
		t.Skipf("backend %s has %d devices, the test needs 3", b.Name(), n)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-preset", "tiny", "-devices", fmt.Sprint(n + 1)}, fmt.Sprintf("has only %d device(s)", n)},
		{[]string{"-preset", "tiny", "-devices", "-1"}, "-devices must be >= 0"},
		{[]string{"-preset", "tiny", "-devices", "3"}, "batch_size 8 does not split evenly over 3 devices"},
		{[]string{"-preset", "tiny", "-devices", "2", "-set", "batch_size=9"}, "batch_size 9 does not split evenly over 2 devices"},
	} {
		args := append(tc.args, "-data", sharedData, "-out", t.TempDir(), "-quiet")
		err := runCommand(cmdTrain, args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !cli.IsUsage(err) {
			t.Errorf("train %s: got %v, want a usage error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
