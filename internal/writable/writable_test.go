package writable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFile: a writable path passes and leaves no trace (neither the probe nor the folders made
// for it), and an existing file is left as it was; a path under a file, on a file system where
// nothing can be made, or that is a folder, is refused. (Tests may run as root, for whom
// permission bits block nothing, hence these cases.)
func TestFile(t *testing.T) {
	dir := t.TempDir()
	if err := File(filepath.Join(dir, "a", "b", "r.md")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the check left %v in %s", entries, dir)
	}
	existing := filepath.Join(dir, "r.md")
	if err := os.WriteFile(existing, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := File(existing); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(existing); string(raw) != "kept" {
		t.Errorf("the existing file was changed: %q", raw)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the check left %v in %s", entries, dir)
	}
	for bad, want := range map[string]string{
		filepath.Join(existing, "x.md"): "not a directory",
		"/proc/smi-no-such/x.md":        "mkdir /proc/smi-no-such",
		dir:                             "it is a folder",
	} {
		if err := File(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("File(%s): %v, want an error containing %q", bad, err, want)
		}
	}
}

// TestFolder: a folder that can be made passes and is removed again, with the folders above it
// that the check made; one under a file is refused.
func TestFolder(t *testing.T) {
	dir := t.TempDir()
	if err := Folder(filepath.Join(dir, "p", "q")); err != nil {
		t.Fatal(err)
	}
	if err := Folder(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the check left %v in %s", entries, dir)
	}
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Folder(filepath.Join(blocker, "p")); err == nil {
		t.Error("a folder under a file: no error")
	}
}

// TestBrokenLink: a symbolic link to nothing or round a loop, as the folder or above it, is named
// with its target (os.MkdirAll says "file exists" for both); links that resolve are fine.
func TestBrokenLink(t *testing.T) {
	dir := t.TempDir()
	for _, l := range [][2]string{{"nowhere", "dangling"}, {"loop2", "loop1"}, {"loop1", "loop2"}, {".", "fine"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"dangling", "dangling is a symbolic link to nowhere, which does not exist"},
		{"dangling/a/b", "dangling is a symbolic link to nowhere, which does not exist"},
		{"loop1", "loop1 is a symbolic link that leads nowhere (to loop2)"},
		{"loop1/run", "loop1 is a symbolic link that leads nowhere (to loop2)"},
		{"fine/new/run", ""},
		{"new/run", ""},
	} {
		err := BrokenLink(filepath.Join(dir, tc.path))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
		// Folder says the same.
		if err := Folder(filepath.Join(dir, tc.path)); tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Folder(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
}
