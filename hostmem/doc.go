// Package hostmem keeps the host memory that XLA's CPU plugin frees for its next use, instead of
// handing it back to the operating system after every execution.
//
// # Why
//
// XLA's CPU runtime allocates the temporaries of each execution of a compiled graph (one block
// for all of them, tens of MiB for a training step of the Shakespeare GPT's `cpu` preset; XLA's
// buffer-assignment dump, XLA_FLAGS=--xla_dump_to=DIR, gives the size) with the C library's
// malloc and frees them when the execution ends. glibc serves a block larger than its
// mmap threshold (dynamic, at most 32 MiB) with a fresh mmap and returns it with munmap, and it
// trims the top of its heaps once more than its trim threshold is free. Either way the next
// execution gets new pages, and the kernel zero-fills each one at its first touch: a page fault
// per 4 KiB page per step, which TestRetain shows on a block of that kind. Retain raises both
// thresholds so the block stays mapped and is reused.
//
// # Cost
//
// Up to RetainBytes of freed memory per malloc arena stays with the process (resident once
// touched) instead of going back to the system, and blocks up to RetainBytes come from the heap
// instead of their own mapping. Results are not affected: only where buffers live changes.
//
// # Limits
//
// glibc serves a block from a thread's own arena (XLA's threads have theirs) only up to that
// arena's heap size, 64 MiB; a larger block gets its own mapping whatever the thresholds, and so
// does any block above RetainBytes. The `cpu` preset's step (tens of MiB of temporaries) is
// helped; the `paper` preset's, whose temporaries take gigabytes, still faults its pages in at
// every step. For such steps only glibc's settings at process start help, which no call can make
// afterwards (mallopt takes an int): MALLOC_ARENA_MAX=1 with MALLOC_MMAP_THRESHOLD_ and
// MALLOC_TRIM_THRESHOLD_ above the block's size, in the environment.
//
// # Where it works
//
// On Linux with glibc, in programs built with cgo (GoMLX's XLA backend needs cgo). Elsewhere
// Retain returns ErrUnsupported and changes nothing. A user who set glibc's own
// MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES keeps those settings.
package hostmem

import "errors"

// RetainBytes is the mmap and trim threshold that Retain sets: 1 GiB.
const RetainBytes = 1 << 30

// ErrUnsupported is returned by Retain where the C library is not glibc or cgo is off.
var ErrUnsupported = errors.New("hostmem: not supported here (needs Linux, glibc and cgo)")
