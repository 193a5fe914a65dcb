package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestCheckpointInBackground: training goes on while a checkpoint is written, the checkpoint
// holds the state of its own iteration (a run resumed from it ends as the run that wrote it),
// and training's end waits for the write in flight.
func TestCheckpointInBackground(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice")
	}
	const set = "max_iters=12;eval_interval=6;eval_iters=2" // checkpoints at 6 and 12
	const finalDelay = 300 * time.Millisecond
	progressed := make(chan struct{}) // closed when training reaches iteration 9
	var once sync.Once
	stepHook = func(iter int) {
		if iter >= 9 {
			once.Do(func() { close(progressed) })
		}
	}
	saves := 0
	var held time.Duration
	saveHook = func(stage string) error {
		switch {
		case stage == "start":
			saves++
		case stage == "verified" && saves == 1:
			// The write of iteration 6 ends only once training has reached iteration 9.
			began := time.Now()
			select {
			case <-progressed:
			case <-time.After(time.Minute):
				t.Errorf("training did not go on while the checkpoint of iteration 6 was written")
			}
			held = time.Since(began)
		case stage == "verified" && saves == 2:
			time.Sleep(finalDelay) // still writing when training ends
		}
		return nil
	}
	t.Cleanup(func() { saveHook, stepHook = nil, nil })
	dir := t.TempDir()
	m, err := tinyRunWith(t, 5, dir, set, 0, func(*trainOptions) {})
	saveHook, stepHook = nil, nil
	if err != nil {
		t.Fatal(err)
	}
	store := runStore(dir)
	all, err := store.list()
	if err != nil || len(all) != 2 || all[0].step != 12 || all[1].step != 6 {
		t.Fatalf("checkpoints after the run: %+v, %v (want 12 and 6: the end waits for the last write)", all, err)
	}
	if saves != 2 {
		t.Errorf("%d saves, want 2", saves)
	}
	t.Logf("the write of iteration 6 waited %.2f s for training to reach iteration 9; seconds: evaluating %.2f, training waited for checkpoints %.2f, writing them %.2f",
		held.Seconds(), m.EvalSeconds, m.CheckpointSeconds, m.CheckpointWriteSeconds)
	if m.EvalSeconds <= 0 || m.CheckpointWriteSeconds < finalDelay.Seconds() || m.CheckpointSeconds < finalDelay.Seconds()/2 {
		t.Errorf("metrics: eval_seconds %g, checkpoint_seconds %g, checkpoint_write_seconds %g", m.EvalSeconds, m.CheckpointSeconds, m.CheckpointWriteSeconds)
	}

	// The checkpoint of iteration 6, written while training went on to 9 and beyond, holds
	// iteration 6: resumed from it, the run ends as the run that wrote it, bit for bit.
	whole := filepath.Join(t.TempDir(), "whole")
	if err := exec.Command("cp", "-a", dir, whole).Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(all[0].dir); err != nil {
		t.Fatal(err)
	}
	if _, err := tinyRunWith(t, 5, dir, set, 0, func(*trainOptions) {}); err != nil {
		t.Fatal(err)
	}
	sameRun(t, whole, dir)
}
