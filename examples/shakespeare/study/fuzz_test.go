package study

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzReport: a published study folder with any one file replaced by arbitrary bytes gives a report
// and its plots, or an error, never a panic (a panic would reach the user as a trace, or as runCommand's bare
// message, instead of a note on what could not be counted).
func FuzzReport(f *testing.F) {
	base := filepath.Join(f.TempDir(), "study")
	fakeStudy(f, base, "cpu", fakeCPU, []int{0, 5}, []int64{1, 2}, 0.05)
	files := map[string][]byte{}
	err := filepath.WalkDir(base, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		rel, _ := filepath.Rel(base, path)
		files[rel] = raw
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(files))
	for i, n := range names {
		f.Add(uint8(i), files[n])
		f.Add(uint8(i), []byte("{}"))
		f.Add(uint8(i), []byte("null"))
	}
	f.Fuzz(func(t *testing.T, which uint8, content []byte) {
		dir := filepath.Join(t.TempDir(), "study")
		changed := names[int(which)%len(names)]
		for n, raw := range files {
			if n == changed {
				raw = content
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rp, err := loadReproduction([]string{dir}, filepath.Join(dir, "REPRODUCTION.md"))
		if err != nil {
			return
		}
		if md := rp.markdown(); !strings.HasPrefix(md, "# ") {
			t.Fatalf("%s changed: the report does not start with its title", changed)
		}
		for _, d := range rp.sections {
			if err := reproductionPlots(d, filepath.Join(dir, "plots", d.slug)); err != nil {
				t.Logf("%s changed: plotting: %v", changed, err)
			}
		}
	})
}
