package hostmem

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

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
// and reused from the heap after it.
func TestRetain(t *testing.T) {
	for _, name := range []string{"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"} {
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
}
