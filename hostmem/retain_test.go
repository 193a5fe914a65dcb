package hostmem

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

// freshProcessEnv marks a test binary that a test re-executed to measure in a process of its own.
const freshProcessEnv = "SMI_HOSTMEM_FRESH_PROCESS"

// inFreshProcess runs the test named name again in a new process of this test binary and reports
// its result as the test's, and returns false; in that new process it returns true, and the test
// goes on. Retain's settings last for the whole process (and Retain acts once), so a test that
// measures malloc before and after Retain must start in a process where nothing has called it:
// not the case for a second run under go test -count, or after another test that called it.
func inFreshProcess(t *testing.T, name string) bool {
	t.Helper()
	if os.Getenv(freshProcessEnv) == name {
		return true
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+name+"$", "-test.count=1", "-test.v=true")
	cmd.Env = append(os.Environ(), freshProcessEnv+"="+name)
	out, err := cmd.CombinedOutput()
	t.Logf("in a fresh process:\n%s", out)
	switch {
	case err != nil:
		t.Fatalf("%s in a fresh process: %v", name, err)
	case bytes.Contains(out, []byte("--- SKIP: "+name)):
		t.Skip("skipped in the fresh process")
	case !bytes.Contains(out, []byte("--- PASS: "+name)):
		t.Fatalf("%s in a fresh process did not report a pass", name)
	}
	return false
}

// minorFaults is the process's count of page faults served without I/O (fresh pages).
func minorFaults(t *testing.T) int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		t.Fatal(err)
	}
	return u.Minflt
}

// TestRetain: a 48 MiB block (above glibc's largest dynamic mmap threshold, as XLA's per-step
// temporaries can be) is mapped on its own and faulted in afresh at every use before Retain,
// and reused from the heap after it; on a thread of its own with 32 MiB live beside it (so the
// block needs a second 64 MiB heap in the thread's arena, which glibc deletes once empty unless
// the top pad keeps it), likewise. It measures in a process of its own (inFreshProcess), on one
// OS thread: a goroutine that moved to another thread between two uses could be served by that
// thread's malloc arena, which has not held the block yet.
func TestRetain(t *testing.T) {
	if !inFreshProcess(t, "TestRetain") {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, name := range userSettings {
		if _, set := os.LookupEnv(name); set {
			t.Skipf("%s is set: Retain leaves the user's malloc settings alone", name)
		}
	}
	const block, uses = 48 << 20, 8
	pages := int64(block / os.Getpagesize())
	if touch(block) < 0 {
		if err := Retain(); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Retain without glibc = %v, want ErrUnsupported", err)
		}
		t.Skip("not glibc with cgo")
	}
	if mapped := touch(block); mapped < block {
		t.Fatalf("before Retain: malloc mapped %d bytes for a live %d-byte block, want its own mapping", mapped, block)
	}
	start := minorFaults(t)
	for range uses {
		touch(block)
	}
	before := minorFaults(t) - start
	if before < uses*pages/2 {
		t.Fatalf("before Retain: %d page faults for %d uses of %d pages; the test cannot see the cost it checks", before, uses, pages)
	}
	const live = 32 << 20
	threadBefore := threadFaults(live, block, uses)
	if threadBefore < uses*pages/2 {
		t.Fatalf("before Retain, on a thread: %d page faults for %d uses of %d pages; the test cannot see the cost it checks", threadBefore, uses, pages)
	}

	if err := Retain(); err != nil {
		t.Fatal(err)
	}
	if err := Retain(); err != nil { // idempotent
		t.Fatal(err)
	}
	touch(block) // the first use after Retain grows the heap once
	if mapped := touch(block); mapped >= block {
		t.Fatalf("after Retain: malloc still mapped %d bytes for a %d-byte block", mapped, block)
	}
	start = minorFaults(t)
	for range uses {
		touch(block)
	}
	after := minorFaults(t) - start
	t.Logf("page faults for %d uses of a %d MiB block: %d before Retain, %d after", uses, block>>20, before, after)
	if after > pages/4 {
		t.Fatalf("after Retain: %d page faults for %d uses (%d before), want the block reused", after, uses, before)
	}
	threadAfter := threadFaults(live, block, uses)
	t.Logf("on a thread with %d MiB live: %d before Retain, %d after", live>>20, threadBefore, threadAfter)
	if threadAfter > pages/4 {
		t.Fatalf("after Retain, on a thread with %d MiB live: %d page faults for %d uses (%d before), want the block's heap kept",
			live>>20, threadAfter, uses, threadBefore)
	}
}
