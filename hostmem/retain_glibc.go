//go:build linux && cgo

package hostmem

/*
#include <features.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static int smi_glibc(void) { return 1; }
static int smi_set(int bytes) {
	return mallopt(M_MMAP_THRESHOLD, bytes) == 1 && mallopt(M_TRIM_THRESHOLD, bytes) == 1;
}
static size_t smi_mapped(void) { return mallinfo2().hblkhd; }
#else
static int smi_glibc(void) { return 0; }
static int smi_set(int bytes) { return 0; }
static size_t smi_mapped(void) { return 0; }
#endif
// smi_touch allocates n bytes, writes them and frees them: what an execution does with its
// temporaries. It returns the bytes malloc had mapped on their own while the block was live.
static size_t smi_touch(size_t n) {
	volatile char *p = malloc(n);
	if (p == NULL) return 0;
	for (size_t i = 0; i < n; i += 512) p[i] = 1; // volatile: the stores stay
	size_t mapped = smi_mapped();
	free((void *)p);
	return mapped;
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
)

var (
	once      sync.Once
	retainErr error
)

// Retain sets glibc's mmap and trim thresholds to RetainBytes for the whole process
// (idempotent; safe to call before or after the backend is created). It returns
// ErrUnsupported without glibc, and nil without changing anything when the user set glibc's
// malloc settings in the environment.
func Retain() error {
	once.Do(func() {
		if C.smi_glibc() == 0 {
			retainErr = ErrUnsupported
			return
		}
		for _, name := range []string{"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"} {
			if _, set := os.LookupEnv(name); set {
				return
			}
		}
		if C.smi_set(C.int(RetainBytes)) == 0 {
			retainErr = fmt.Errorf("hostmem: glibc refused mallopt(M_MMAP_THRESHOLD/M_TRIM_THRESHOLD, %d)", RetainBytes)
		}
	})
	return retainErr
}

// touch allocates, writes and frees n bytes with malloc and reports the bytes malloc had
// mapped on their own while they were live (for the tests).
func touch(n int) int { return int(C.smi_touch(C.size_t(n))) }
