package backend

import (
	"os"
	"runtime"
	"strconv"
)

// NProcEnvVar is the environment variable with which XLA's CPU plugin sizes its thread pools
// (by default the number of CPUs the process may use).
const NProcEnvVar = "PJRT_NPROC"

// PrepareDevices readies the XLA CPU plugin for programs that run on n devices at once
// (0: all of them). It takes effect only when called before New, and does nothing for n = 1.
//
// The plugin runs every device's part of a step on one shared pool of threads, as many as the
// CPUs by default, and a device waiting in a collective (the all-reduce of data-parallel
// training) holds its thread until every device has arrived. With fewer threads than devices,
// the devices still to arrive may find no thread: the step hangs and, after 40 s, the plugin
// aborts the process ("Termination timeout for `all reduce RendezvousKey...` ... Expected 4
// threads to join the rendezvous, but only 1 of them arrived on time"). On 2 CPUs this happens
// with 4 devices from the `cpu` GPT preset up (the `tiny` preset's steps are short enough to
// get through). PrepareDevices sets PJRT_NPROC, unless the user set it, to max(CPUs, 2*d) for
// d = max(n, 4) devices (4: the plugin's default count). One-device programs are left as they
// are: a larger pool could change how XLA splits a computation, and with it the rounding.
func PrepareDevices(n int) error {
	if n == 1 {
		return nil
	}
	if _, set := os.LookupEnv(NProcEnvVar); set {
		return nil
	}
	if shared != nil || sharedErr != nil {
		return nil // Too late: the pool is made; programs in tests and the tiny preset get by.
	}
	d := max(n, 4)
	return os.Setenv(NProcEnvVar, strconv.Itoa(max(runtime.NumCPU(), 2*d)))
}
