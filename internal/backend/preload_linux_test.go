//go:build linux && cgo

package backend

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDlopenLibrary builds shared libraries, libsmitest_a needing libsmitest_b by soname in a
// directory the loader does not search, and checks what the CUDA preloading relies on, with
// RTLD_LOCAL and with RTLD_GLOBAL: a fails until b is loaded by path, then loads, and a later
// dlopen of b's bare soname finds the loaded b.
func TestDlopenLibrary(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	build := func(name, src string, args ...string) string {
		t.Helper()
		c := filepath.Join(dir, name+".c")
		require.NoError(t, os.WriteFile(c, []byte(src), 0o644))
		out := filepath.Join(dir, name+".so")
		cmd := exec.Command(cc, append([]string{"-shared", "-fPIC", "-o", out, c, "-Wl,-soname," + name + ".so"}, args...)...)
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, string(msg))
		return out
	}
	for _, global := range []bool{false, true} {
		mode := map[bool]string{false: "local", true: "global"}[global]
		nameA, nameB := "libsmitest_"+mode+"_a", "libsmitest_"+mode+"_b"
		b := build(nameB, "int smitest_"+mode+"_b(void) { return 2; }\n")
		a := build(nameA, "int smitest_"+mode+"_b(void);\nint smitest_"+mode+"_a(void) { return smitest_"+mode+"_b() + 1; }\n",
			"-L"+dir, "-lsmitest_"+mode+"_b")

		var firstErr error
		open := func(path string) error {
			err := dlopenLibrary(path, global)
			if path == a && firstErr == nil {
				firstErr = err
			}
			return err
		}
		loaded, failed := preloadLibraries([]string{a, b}, open)
		assert.Equal(t, 2, loaded, mode)
		assert.Empty(t, failed, mode)
		assert.ErrorContains(t, firstErr, nameB+".so", "%s: a cannot load before b", mode)
		require.NoError(t, dlopenLibrary(nameB+".so", false), "%s: the loaded library answers its soname", mode)
		assert.Error(t, dlopenLibrary(filepath.Join(dir, "missing.so"), global), mode)
	}
	empty := filepath.Join(dir, "libempty.so")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	assert.Error(t, dlopenLibrary(empty, false))
}
