package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMainChild is smidevice itself when runSmidevice starts this test binary with its
// arguments; otherwise it is skipped.
func TestMainChild(t *testing.T) {
	args, ok := os.LookupEnv("SMIDEVICE_TEST_ARGS")
	if !ok {
		t.Skip("runs only as runSmidevice's child")
	}
	os.Args = append([]string{"smidevice"}, strings.Fields(args)...)
	main()
}

// runSmidevice runs main with args in a child process and returns its exit status, stdout and
// stderr.
func runSmidevice(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainChild$")
	cmd.Env = append(os.Environ(), "SMIDEVICE_TEST_ARGS="+strings.Join(args, " "))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestUnknownDevice: an unknown -device is a usage error (status 2, one line naming it), with or
// without -check, and no discovery report is printed for it.
func TestUnknownDevice(t *testing.T) {
	for _, args := range [][]string{{"-device", "bogus"}, {"-device", "bogus", "-check"}} {
		code, stdout, stderr := runSmidevice(t, args...)
		if code != 2 || !strings.Contains(stderr, `unknown device "bogus"`) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("smidevice %s: status %d, stderr %q; want status 2 and one line naming the device", strings.Join(args, " "), code, stderr)
		}
		if stdout != "" {
			t.Errorf("smidevice %s printed %q before refusing the device", strings.Join(args, " "), stdout)
		}
	}
}

// TestKnownDevice: a known -device without -check prints the discovery report and exits 0 (the
// harness of TestUnknownDevice sees a run that succeeds).
func TestKnownDevice(t *testing.T) {
	code, stdout, stderr := runSmidevice(t, "-device", "cpu")
	if code != 0 || !strings.Contains(stdout, "GPU: ") {
		t.Errorf("smidevice -device cpu: status %d, stdout %q, stderr %q; want status 0 and the report", code, stdout, stderr)
	}
}
