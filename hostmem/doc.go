// Package hostmem keeps the host memory that XLA's CPU plugin frees for its next use, instead of
// handing it back to the operating system after every execution.
//
// # Why
//
// XLA's CPU runtime allocates the temporaries of each execution of a compiled graph (one block
// for all of them, tens of MiB for a training step of the Shakespeare GPT's `cpu` preset; XLA's
// buffer-assignment dump, XLA_FLAGS=--xla_dump_to=DIR, gives the size) with the C library's
// malloc and frees them when the execution ends. Three glibc behaviours then hand the next
// execution new pages, which the kernel zero-fills at their first touch (a page fault per 4 KiB
// page per step):
//
//   - a block larger than the mmap threshold (dynamic, at most 32 MiB) gets a fresh mmap and is
//     returned with munmap;
//   - the top of a heap is trimmed once more than the trim threshold is free;
//   - a thread's arena (XLA's threads have theirs) grows in heaps of at most 64 MiB; a block that
//     does not fit beside what is live in its heap gets a new heap, which glibc deletes as soon as
//     it is empty again, whatever the trim threshold, unless the arena's top pad is that large.
//
// Retain raises both thresholds to RetainBytes and the top pad to TopPadBytes, so the block stays
// mapped and is reused; TestRetain shows each case. Which case a process meets depends on what
// else its threads hold, so without the pad the same program faulted at every step in one run
// and not in the next.
//
// # Cost
//
// Up to RetainBytes of freed memory per malloc arena stays with the process (resident once
// touched) instead of going back to the system, blocks up to RetainBytes come from the heap
// instead of their own mapping, and each heap grows by TopPadBytes more than asked (address space,
// not memory, until touched). Results are not affected: only where buffers live changes.
//
// # Limits
//
// glibc serves a block from a thread's own arena (XLA's threads have theirs) only up to that
// arena's heap size, 64 MiB; a larger block gets its own mapping whatever the thresholds, and so
// does any block above RetainBytes. The `cpu` preset's step (tens of MiB of temporaries) is
// helped; the `paper` preset's, whose temporaries take gigabytes, still faults its pages in at
// every step. For such steps only glibc's settings at process start help, which no call can make
// afterwards (mallopt takes an int): MALLOC_ARENA_MAX=1 with MALLOC_MMAP_THRESHOLD_ and
// MALLOC_TRIM_THRESHOLD_ above the block's size, in the environment. That is not a default for
// smaller steps: one arena serialises every thread's allocations, which made the `cpu` preset's
// steps slower, not faster.
//
// # Where it works
//
// On Linux with glibc, in programs built with cgo (GoMLX's XLA backend needs cgo). Elsewhere
// Retain returns ErrUnsupported and changes nothing. A user who set glibc's own
// MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or GLIBC_TUNABLES keeps those
// settings.
package hostmem

import "errors"

// RetainBytes is the mmap and trim threshold that Retain sets: 1 GiB.
const RetainBytes = 1 << 30

// TopPadBytes is the top pad that Retain sets: 64 MiB, the size of a thread arena's heap, so
// that glibc keeps an empty heap instead of deleting it.
const TopPadBytes = 64 << 20

// userSettings are glibc's environment variables for what Retain sets; if the user set any of
// them, Retain leaves all of its settings alone.
var userSettings = []string{"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"}

// ErrUnsupported is returned by Retain where the C library is not glibc or cgo is off.
var ErrUnsupported = errors.New("hostmem: not supported here (needs Linux, glibc and cgo)")
