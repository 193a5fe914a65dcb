//go:build linux && cgo

package hostmem

/*
#define _GNU_SOURCE // RUSAGE_THREAD
#include <features.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
static int smi_glibc(void) { return 1; }
static int smi_set(int bytes, int pad) {
	return mallopt(M_MMAP_THRESHOLD, bytes) == 1 && mallopt(M_TRIM_THRESHOLD, bytes) == 1 &&
		mallopt(M_TOP_PAD, pad) == 1;
}
static size_t smi_mapped(void) { return mallinfo2().hblkhd; }
#else
static int smi_glibc(void) { return 0; }
static int smi_set(int bytes, int pad) { return 0; }
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

// smi_thread_job: on a thread of its own (so in a malloc arena of its own, as XLA's threads
// are), keep live bytes allocated and use an n-byte block uses times, as smi_touch does; the
// thread's page faults from the second use on go to faults.
struct smi_thread_job { size_t live, n; int uses; long faults; };

static void *smi_thread_run(void *arg) {
	struct smi_thread_job *job = arg;
	volatile char *live = malloc(job->live);
	if (live == NULL) { job->faults = -1; return NULL; }
	for (size_t i = 0; i < job->live; i += 512) live[i] = 1;
	smi_touch(job->n);
	struct rusage u0, u1;
	getrusage(RUSAGE_THREAD, &u0);
	for (int i = 0; i < job->uses; i++) smi_touch(job->n);
	getrusage(RUSAGE_THREAD, &u1);
	job->faults = u1.ru_minflt - u0.ru_minflt;
	free((void *)live);
	return NULL;
}

static long smi_thread_faults(size_t live, size_t n, int uses) {
	struct smi_thread_job job = {live, n, uses, 0};
	pthread_t t;
	if (pthread_create(&t, NULL, smi_thread_run, &job) != 0) return -1;
	pthread_join(t, NULL);
	return job.faults;
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

// Retain sets glibc's mmap and trim thresholds to RetainBytes and its top pad to TopPadBytes for
// the whole process (idempotent; safe to call before or after the backend is created). It returns
// ErrUnsupported without glibc, and nil without changing anything when the user set glibc's
// malloc settings in the environment.
func Retain() error {
	once.Do(func() {
		if C.smi_glibc() == 0 {
			retainErr = ErrUnsupported
			return
		}
		for _, name := range userSettings {
			if _, set := os.LookupEnv(name); set {
				return
			}
		}
		if C.smi_set(C.int(RetainBytes), C.int(TopPadBytes)) == 0 {
			retainErr = fmt.Errorf("hostmem: glibc refused mallopt(M_MMAP_THRESHOLD/M_TRIM_THRESHOLD, %d) or mallopt(M_TOP_PAD, %d)",
				RetainBytes, TopPadBytes)
		}
	})
	return retainErr
}

// touch allocates, writes and frees n bytes with malloc and reports the bytes malloc had
// mapped on their own while they were live (for the tests).
func touch(n int) int { return int(C.smi_touch(C.size_t(n))) }

// threadFaults keeps live bytes allocated on a new thread and uses an n-byte block there uses
// times, and returns the thread's page faults over those uses (for the tests; -1 on failure).
func threadFaults(live, n, uses int) int64 {
	return int64(C.smi_thread_faults(C.size_t(live), C.size_t(n), C.int(uses)))
}
