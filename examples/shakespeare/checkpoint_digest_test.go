package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointDigests: a saved checkpoint lists the SHA-256 of each of its files in SHA256SUMS,
// in the format sha256sum checks. A change that leaves every file readable (a flipped bit in the
// weights, a changed loss in the history), a damaged or incomplete SHA256SUMS, or a missing file
// makes readCheckpoint refuse the checkpoint and newest go on to the one before, naming the file.
func TestCheckpointDigests(t *testing.T) {
	store, newestDir := twoCheckpoints(t)
	jsons, _ := filepath.Glob(filepath.Join(newestDir, "checkpoint-*.json"))
	if len(jsons) != 1 {
		t.Fatalf("%s: %v", newestDir, jsons)
	}
	jsonName := filepath.Base(jsons[0])
	binName := strings.TrimSuffix(jsonName, ".json") + ".bin"
	files := []string{jsonName, binName, historyFile, digestFile}
	orig := map[string][]byte{}
	for _, name := range files {
		raw, err := os.ReadFile(filepath.Join(newestDir, name))
		if err != nil {
			t.Fatal(err)
		}
		orig[name] = raw
	}
	sums := string(orig[digestFile])
	for _, name := range files[:3] {
		if !strings.Contains(sums, "  "+name+"\n") {
			t.Errorf("%s does not list %s:\n%s", digestFile, name, sums)
		}
	}
	if n := strings.Count(sums, "\n"); n != 3 {
		t.Errorf("%s lists %d files, want 3:\n%s", digestFile, n, sums)
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "--check", "--strict", digestFile)
		cmd.Dir = newestDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum --check: %v\n%s", err, out)
		}
	} else {
		t.Log("no sha256sum here: the format is checked by readCheckpoint only")
	}
	if _, _, err := readCheckpoint(newestDir); err != nil {
		t.Fatalf("the intact checkpoint: %v", err)
	}

	// change returns a damage that replaces name's content with edit's result.
	change := func(name string, edit func([]byte) []byte) func() {
		return func() {
			raw := edit(append([]byte(nil), orig[name]...))
			if err := os.WriteFile(filepath.Join(newestDir, name), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		damage func()
		want   string // in newest's line for the damaged checkpoint
	}{
		{"bit flipped in the weights", change(binName, func(b []byte) []byte {
			b[len(b)/2] ^= 0x10
			return b
		}), binName + " has changed"},
		{"loss changed in the history", change(historyFile, func(b []byte) []byte {
			// The losses of step 2 are 0 and 0: the first becomes 1, which still parses.
			i := strings.Index(string(b), `"iter_loss"`)
			j := strings.IndexByte(string(b[max(i, 0):]), '0')
			if i < 0 || j < 0 {
				t.Fatalf("no loss 0 in %s", b)
			}
			b[i+j] = '1'
			return b
		}), historyFile + " has changed"},
		// model/w recorded as 3x2 instead of 2x3: the same size, so the layout check passes it.
		{"shape changed", change(jsonName, func(b []byte) []byte {
			var meta map[string]any
			if err := json.Unmarshal(b, &meta); err != nil {
				t.Fatal(err)
			}
			for _, v := range meta["Variables"].([]any) {
				if v := v.(map[string]any); v["ParameterName"] == "var:/model/w" {
					v["Dimensions"] = []int{3, 2}
				}
			}
			raw, _ := json.Marshal(meta)
			return raw
		}), jsonName + " has changed"},
		{"digest damaged", change(digestFile, func(b []byte) []byte {
			b[3] = 'x'
			return b
		}), "is not \"SHA-256  NAME\""},
		{"history unlisted", change(digestFile, func(b []byte) []byte {
			var kept []string
			for _, line := range strings.SplitAfter(string(b), "\n") {
				if !strings.HasSuffix(line, "  "+historyFile+"\n") {
					kept = append(kept, line)
				}
			}
			return []byte(strings.Join(kept, ""))
		}), historyFile + " is not listed"},
		{"weights missing", func() {
			if err := os.Remove(filepath.Join(newestDir, binName)); err != nil {
				t.Fatal(err)
			}
		}, binName},
	}
	for _, tc := range cases {
		tc.damage()
		if line := checkFallsBack(t, store, newestDir, tc.name); line != "" && !strings.Contains(line, tc.want) {
			t.Errorf("%s: newest says %q, want it to contain %q", tc.name, line, tc.want)
		}
		for _, name := range files {
			if err := os.WriteFile(filepath.Join(newestDir, name), orig[name], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := readCheckpoint(newestDir); err != nil {
			t.Fatalf("after %s, restored: %v", tc.name, err)
		}
	}
}
