// Package scripts holds the tests of the shell scripts beside it that take arguments and settings
// (gpu-check.sh, gpu-build.sh): what they refuse before any work, and their exit statuses. The
// installers' tests are in internal/backend, beside the discovery they must agree with.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// script runs the script name with args and extra environment, in a temporary working folder,
// and returns its exit status and combined output.
func script(t *testing.T, name string, env []string, args ...string) (int, string) {
	t.Helper()
	path, err := filepath.Abs(name)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode(), string(out)
		}
		t.Fatalf("%s: %v", name, err)
	}
	return 0, string(out)
}

// TestGPUCheckRefusesBadSettings: gpu-check.sh prints its header for -h, and refuses an unknown
// option, a second argument, an unknown step, a deadline that is not whole seconds and a
// SMI_GPU_BIN that is no folder with status 2 and a message naming them, before it builds or runs
// anything (with -h and an unknown option it once wrote its report into / and ran the steps).
func TestGPUCheckRefusesBadSettings(t *testing.T) {
	bin := t.TempDir()
	code, out := script(t, "gpu-check.sh", []string{"SMI_GPU_BIN=" + bin}, "-h")
	if code != 0 || !strings.Contains(out, "Usage: scripts/gpu-check.sh [OUT_DIR]") || strings.Contains(out, "set -uo") {
		t.Errorf("-h: status %d, %q; want 0 and the header", code, out)
	}
	out1 := t.TempDir()
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"-x"}, "unknown option -x"},
		{nil, []string{out1, "extra"}, "one argument at most"},
		{[]string{"GPU_CHECK_STEPS=smoke,test"}, []string{out1}, "unknown step 'test'"},
		{[]string{"GPU_CHECK_STEPS=smok"}, []string{out1}, "choose from smoke,tests,"},
		{[]string{"GPU_CHECK_DEADLINE=10m"}, []string{out1}, "GPU_CHECK_DEADLINE must be a whole number of seconds"},
		{[]string{"GPU_CHECK_DEADLINE=-5"}, []string{out1}, "got '-5'"},
		{[]string{"SMI_GPU_BIN=" + filepath.Join(bin, "none")}, []string{out1}, "is not a folder"},
	} {
		env := append([]string{"SMI_GPU_BIN=" + bin, "GPU_CHECK_STEPS=smoke"}, c.env...)
		code, out := script(t, "gpu-check.sh", env, c.args...)
		if code != 2 || !strings.Contains(out, c.want) || strings.Contains(out, "smoke:") {
			t.Errorf("%v %q: status %d, %q; want 2 and %q before any step", c.env, c.args, code, out, c.want)
		}
	}
	if entries, _ := os.ReadDir(out1); len(entries) != 0 {
		t.Errorf("a refused check wrote %d files in its OUT_DIR", len(entries))
	}
}

// TestGPUCheckFailedStepFails: a step that fails makes the check's exit status 1, after the
// report is written (it was 0 whatever failed). The binaries are stand-ins that fail.
func TestGPUCheckFailedStepFails(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"smidevice", "backend.test"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho stand-in failing\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	code, log := script(t, "gpu-check.sh", []string{"SMI_GPU_BIN=" + bin, "SMI_DEVICE=cpu", "GPU_CHECK_STEPS=smoke, "}, out)
	if code != 1 || !strings.Contains(log, "failed (exit 3)") || !strings.Contains(log, "step(s) failed or timed out") {
		t.Errorf("status %d, %q; want 1 after the failed steps", code, log)
	}
	if _, err := os.Stat(filepath.Join(out, "gpu-report.md")); err != nil {
		t.Errorf("no report: %v", err)
	}
}

// TestGPUBuildRefusesBadArguments: gpu-build.sh prints its header for -h and refuses an unknown
// option, a second argument and an unknown set with status 2, building nothing (--help once made
// a folder named --help and started a build).
func TestGPUBuildRefusesBadArguments(t *testing.T) {
	code, out := script(t, "gpu-build.sh", nil, "--help")
	if code != 0 || !strings.Contains(out, "Usage: [GPU_BUILD_SET=check|rest] scripts/gpu-build.sh [DIR]") {
		t.Errorf("--help: status %d, %q; want 0 and the header", code, out)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"-x"}, "unknown option -x"},
		{nil, []string{dir, "extra"}, "one argument at most"},
		{[]string{"GPU_BUILD_SET=all"}, []string{dir}, "GPU_BUILD_SET=all: want check or rest"},
	} {
		code, out := script(t, "gpu-build.sh", c.env, c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v %q: status %d, %q; want 2 and %q", c.env, c.args, code, out, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused build wrote %d files in its DIR", len(entries))
	}
}
