package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// TestDamagedCheckpointMetadata: a checkpoint whose metadata no longer describes its binary file
// (a negative, huge or changed dimension, a wrong dtype, length or position, a binary file cut
// short or grown) is reported by readCheckpoint as an error, never a panic or an allocation of what
// the damage says, and newest goes on to the checkpoint before it, naming the damaged one.
func TestDamagedCheckpointMetadata(t *testing.T) {
	store, newestDir := twoCheckpoints(t)
	// Without its digests, as an older version saved it: the layout check alone must catch each
	// damage (with them, TestCheckpointDigests checks that the digests do).
	if err := os.Remove(filepath.Join(newestDir, digestFile)); err != nil {
		t.Fatal(err)
	}
	jsons, _ := filepath.Glob(filepath.Join(newestDir, "checkpoint-*.json"))
	if len(jsons) != 1 {
		t.Fatalf("%s: %v", newestDir, jsons)
	}
	jsonPath := jsons[0]
	binPath := strings.TrimSuffix(jsonPath, ".json") + ".bin"
	origJSON, _ := os.ReadFile(jsonPath)
	origBin, _ := os.ReadFile(binPath)
	if _, _, err := readCheckpoint(newestDir); err != nil {
		t.Fatalf("the intact checkpoint: %v", err)
	}

	// editVar changes the recorded variable model/w (its JSON object) with edit.
	editVar := func(edit func(v map[string]any)) func() {
		return func() {
			var meta map[string]any
			if err := json.Unmarshal(origJSON, &meta); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, v := range meta["Variables"].([]any) {
				if v := v.(map[string]any); v["ParameterName"] == "var:/model/w" {
					edit(v)
					found = true
				}
			}
			if !found {
				t.Fatalf("no variable var:/model/w in %s", origJSON)
			}
			raw, _ := json.Marshal(meta)
			if err := os.WriteFile(jsonPath, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		damage func()
	}{
		{"negative dimension", editVar(func(v map[string]any) { v["Dimensions"] = []int{-2, 3} })},
		{"huge dimension", editVar(func(v map[string]any) { v["Dimensions"] = []int{1 << 40, 1 << 20} })},
		// 32 GiB: more than a test machine holds, so reading it would crash the process.
		{"large dimension", editVar(func(v map[string]any) { v["Dimensions"] = []int{1 << 17, 1 << 16} })},
		{"changed dimension", editVar(func(v map[string]any) { v["Dimensions"] = []int{3, 3} })},
		{"other dtype", editVar(func(v map[string]any) { v["DType"] = "Float64" })},
		{"unknown dtype", editVar(func(v map[string]any) { v["DType"] = "Float33" })},
		{"length", editVar(func(v map[string]any) { v["Length"] = 1 << 40 })},
		{"position", editVar(func(v map[string]any) { v["Pos"] = 4 })},
		{"metadata cut short", func() { _ = os.WriteFile(jsonPath, origJSON[:len(origJSON)/2], 0o644) }},
		{"binary cut short", func() { _ = os.WriteFile(binPath, origBin[:len(origBin)-4], 0o644) }},
		{"binary grown", func() { _ = os.WriteFile(binPath, append(origBin, 0, 0, 0, 0), 0o644) }},
	}
	for _, tc := range cases {
		tc.damage()
		checkFallsBack(t, store, newestDir, tc.name)
		_ = os.WriteFile(jsonPath, origJSON, 0o644)
		_ = os.WriteFile(binPath, origBin, 0o644)
	}
}

// twoCheckpoints saves two checkpoints of a small context (steps 1 and 2, each with its history)
// and returns their store and the newer one's directory.
func twoCheckpoints(t *testing.T) (store ckptStore, newestDir string) {
	t.Helper()
	store = runStore(t.TempDir())
	ctx := context.New()
	w := ctx.In("model").VariableWithValue("w", tensors.FromValue([][]float32{{1, 2, 3}, {4, 5, 6}}))
	ctx.In("model").VariableWithValue("b", tensors.FromValue([]float32{7, 8, 9}))
	for step := 1; step <= 2; step++ {
		gomlxopt.GetGlobalStepVar(ctx).MustSetValue(tensors.FromValue(int64(step)))
		w.MustSetValue(tensors.FromValue([][]float32{{float32(step), 2, 3}, {4, 5, 6}}))
		hist := &history{IterLoss: make([]float64, step)}
		snap, err := takeSnapshot(ctx, nil, hist)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.prepareStaging(); err != nil {
			t.Fatal(err)
		}
		if err := store.save(snap); err != nil {
			t.Fatal(err)
		}
	}
	return store, store.stepDir(2)
}

// checkFallsBack checks that readCheckpoint refuses the newest checkpoint, dir, and that newest goes
// on to the one before it (step 1), naming dir; it returns the line newest gave for dir.
func checkFallsBack(t *testing.T, store ckptStore, dir, name string) string {
	t.Helper()
	if _, _, err := readCheckpoint(dir); err == nil {
		t.Errorf("%s: the damaged checkpoint reads back", name)
	}
	c, saved, _, skipped, found, err := store.newest()
	if err != nil || !found || c.step != 1 || len(skipped) != 1 || !strings.Contains(skipped[0], dir) {
		t.Errorf("%s: newest is %+v (found %v, skipped %q): %v", name, c, found, skipped, err)
		return ""
	}
	if got := gomlxopt.GetGlobalStep(saved); got != 1 {
		t.Errorf("%s: the older checkpoint holds step %d", name, got)
	}
	t.Logf("%s: %s", name, skipped[0])
	return skipped[0]
}

// TestSaveReplacesWhatDoesNotReadBack: saving an iteration whose step directory exists keeps it
// when it reads back as that iteration (a run resumed there and stopped at once), and replaces
// anything else by that name (a damaged checkpoint that the resume skipped, an empty folder, a
// file), which would otherwise hide the save from every later resume.
func TestSaveReplacesWhatDoesNotReadBack(t *testing.T) {
	store, newestDir := twoCheckpoints(t)
	saved, hist, err := readCheckpoint(newestDir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := takeSnapshot(saved, nil, hist)
	if err != nil {
		t.Fatal(err)
	}
	resave := func(name string) {
		t.Helper()
		if err := store.save(snap); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, _, err := readCheckpoint(newestDir); err != nil {
			t.Errorf("%s: after the save, %s does not read back: %v", name, newestDir, err)
		}
		if c, _, _, skipped, _, err := store.newest(); err != nil || c.step != 2 || len(skipped) != 0 {
			t.Errorf("%s: newest is step %d (skipped %q, %v), want 2", name, c.step, skipped, err)
		}
		if trash, _ := filepath.Glob(filepath.Join(store.dir, trashPrefix+"*")); len(trash) != 0 {
			t.Errorf("%s: left %v", name, trash)
		}
	}

	before, err := os.Stat(newestDir)
	if err != nil {
		t.Fatal(err)
	}
	resave("intact")
	if after, err := os.Stat(newestDir); err != nil || !os.SameFile(before, after) {
		t.Errorf("the intact checkpoint was rewritten (%v)", err)
	}

	flipBit(t, newestDir)
	checkFallsBack(t, store, newestDir, "bit flipped")
	resave("bit flipped")

	for _, tc := range []struct {
		name  string
		stray func() error
	}{
		{"empty folder", func() error { return os.Mkdir(newestDir, 0o755) }},
		{"file", func() error { return os.WriteFile(newestDir, []byte("not a checkpoint"), 0o644) }},
	} {
		if err := os.RemoveAll(newestDir); err != nil {
			t.Fatal(err)
		}
		if err := tc.stray(); err != nil {
			t.Fatal(err)
		}
		resave(tc.name)
	}
}

// TestSpaceNeeded: after a save failed for want of space, the message gives what the run needs to
// go on: a checkpoint's size (the last one's, or the state's before any exists) for each save
// until the newest keepCheckpoints exist, and one more while the next is written; and a file
// system out of inodes is named as such, not as short of bytes.
func TestSpaceNeeded(t *testing.T) {
	store := runStore(t.TempDir())
	const size = 3 << 20
	var all []savedCheckpoint
	for k := 0; k <= keepCheckpoints; k++ {
		want := fmt.Sprintf("needs about %s (%s)", humanBytes(size), map[bool]string{true: "estimated from the state being saved", false: "the last checkpoint"}[k == 0])
		wantMore := fmt.Sprintf("with %d there now it needs up to about %s free to go on", k, humanBytes(int64(keepCheckpoints+1-k)*size))
		got := store.spaceNeeded(all, size)
		if !strings.Contains(got, want) || !strings.Contains(got, wantMore) || !strings.Contains(got, "is free there") {
			t.Errorf("%d checkpoints: %q, want %q and %q", k, got, want, wantMore)
		}
		dir := store.stepDir(10 * (k + 1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		all, _ = store.list()
	}

	small := t.TempDir()
	if exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=8", "tmpfs", small).Run() != nil {
		t.Log("cannot mount a tmpfs here: the inode case is not checked")
		return
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	if err := os.Mkdir(runStore(small).dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if os.WriteFile(filepath.Join(small, fmt.Sprint(i)), nil, 0o644) != nil {
			break
		}
	}
	err := runStore(small).describeFailure(20, size, fmt.Errorf("open: %w", syscall.ENOSPC))
	if !strings.Contains(err.Error(), "out of inodes") || strings.Contains(err.Error(), "The disk is full") {
		t.Errorf("inodes exhausted: %v", err)
	}
}

// TestCheckpointDirInTheWay: a file or a symbolic link to nothing where a run keeps its checkpoint
// directory is named as such, by list (which a resume reads first) and by prepareStaging (before
// a new run's first save); they said "not a directory" beside advice to use -restart, and "mkdir:
// file exists".
func TestCheckpointDirInTheWay(t *testing.T) {
	for name, put := range map[string]func(string) error{
		"is a file":                          func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) },
		"is a symbolic link to /nonexistent": func(p string) error { return os.Symlink("/nonexistent", p) },
	} {
		store := runStore(t.TempDir())
		if err := put(store.dir); err != nil {
			t.Fatal(err)
		}
		if _, err := store.list(); err == nil || !strings.Contains(err.Error(), store.dir+" "+name) {
			t.Errorf("list: %v, want %q", err, name)
		}
		if err := store.prepareStaging(); err == nil || name != "is a file" && !strings.Contains(err.Error(), name) {
			t.Errorf("prepareStaging: %v, want %q", err, name)
		}
	}
}

// TestSpaceWarning: at its first step a run warns when the disk cannot hold the checkpoints it
// has left to save (each save adds one until the newest 3 exist, and one more is written beside
// them), and only then.
func TestSpaceWarning(t *testing.T) {
	for _, tc := range []struct{ k, saves, want int }{
		{0, -1, 4}, {0, 2, 2}, {1, -1, 3}, {3, -1, 1}, {5, -1, 1}, {3, 0, 0},
	} {
		if got := spaceToGoOn(tc.k, 10, tc.saves); got != int64(10*tc.want) {
			t.Errorf("%d checkpoints, %d saves left: %d, want %d", tc.k, tc.saves, got, 10*tc.want)
		}
	}
	small := t.TempDir()
	if exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).Run() != nil {
		t.Log("cannot mount a tmpfs here: the warning itself is not checked")
		return
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	store := runStore(small)
	if err := os.Mkdir(store.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if w := store.spaceWarning(300<<10, 5); !strings.Contains(w, "a save will fail for want of space") || !strings.Contains(w, "need about 1.2 MiB more") {
		t.Errorf("4 checkpoints of 300 KiB on a 1 MiB disk: %q", w)
	}
	if w := store.spaceWarning(300<<10, 2); w != "" {
		t.Errorf("2 checkpoints of 300 KiB left to save on a 1 MiB disk: %q", w)
	}
	if w := store.spaceWarning(100<<10, -1); w != "" {
		t.Errorf("checkpoints of 100 KiB on a 1 MiB disk: %q", w)
	}
}

// flipBit flips a bit in the middle of the weights of the checkpoint in dir.
func flipBit(t *testing.T, dir string) {
	t.Helper()
	bins, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*.bin"))
	if len(bins) != 1 {
		t.Fatalf("%s: %v", dir, bins)
	}
	raw, err := os.ReadFile(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x10
	if err := os.WriteFile(bins[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
