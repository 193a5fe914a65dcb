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

// TestDlopenGlobal builds two shared libraries, libsmitest_a needing libsmitest_b by soname in a
// directory the loader does not search, and checks what the CUDA preloading relies on: a fails
// until b is loaded by path, then loads, and a later dlopen of b's bare soname finds the loaded b.
func TestDlopenGlobal(t *testing.T) {
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
	b := build("libsmitest_b", "int smitest_b(void) { return 2; }\n")
	a := build("libsmitest_a", "int smitest_b(void);\nint smitest_a(void) { return smitest_b() + 1; }\n",
		"-L"+dir, "-lsmitest_b")

	var firstErr error
	open := func(path string) error {
		err := dlopenGlobal(path)
		if path == a && firstErr == nil {
			firstErr = err
		}
		return err
	}
	loaded, failed := preloadLibraries([]string{a, b}, open)
	assert.Equal(t, 2, loaded)
	assert.Empty(t, failed)
	assert.ErrorContains(t, firstErr, "libsmitest_b.so", "a cannot load before b")
	require.NoError(t, dlopenGlobal("libsmitest_b.so"), "the loaded library answers its soname")
	assert.Error(t, dlopenGlobal(filepath.Join(dir, "missing.so")))
	empty := filepath.Join(dir, "libempty.so")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	assert.Error(t, dlopenGlobal(empty))
}
