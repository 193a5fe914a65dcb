package backend

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// DeterministicEnv, set to 1 (or true), asks a GPU backend for run-to-run determinism, as
// SetDeterministic does; programs without a -deterministic flag and tests read it.
const DeterministicEnv = "SMI_DETERMINISTIC"

// DeterministicUsage is the help text of a program's -deterministic flag.
const DeterministicUsage = "on a GPU, compute deterministically from run to run (XLA's --xla_gpu_deterministic_ops): " +
	"a rerun, or a run resumed from its checkpoint, repeats the uninterrupted run bit for bit, at some cost in speed; " +
	"XLA CPU does so without it. Default $" + DeterministicEnv

// deterministicOpsFlag is XLA's switch for run-to-run determinism on a GPU. With it, XLA adds
// scatters (the token embedding's gradient) in a fixed order instead of with atomic additions
// in the order the GPU's threads arrive, and chooses its kernels without timing them
// (autotuning), so two processes compile one program to the same kernels. jax-cuda13-pjrt 0.11.2
// has it ("Guarantees run-to-run determinism on GPU").
const deterministicOpsFlag = "xla_gpu_deterministic_ops"

var (
	determinismMu     sync.Mutex
	chosenDeterminism bool  // set by SetDeterministic
	cudaDeterminism   *bool // what the CUDA plugin this process loaded was given (noteCUDAFlags)
)

// SetDeterministic asks the backend New creates for run-to-run determinism (a program's
// -deterministic flag); false leaves the choice to $SMI_DETERMINISTIC. It takes effect only when
// called before New. On a CUDA backend it adds --xla_gpu_deterministic_ops=true to XLA_FLAGS
// unless the user's XLA_FLAGS sets that flag; XLA CPU computes a program alike on every run
// already (the trainer's fault-injection tests check that a resumed run repeats the
// uninterrupted one bit for bit), so nothing is set for it.
func SetDeterministic(on bool) {
	determinismMu.Lock()
	defer determinismMu.Unlock()
	chosenDeterminism = on
}

// Deterministic reports whether this process computes deterministically from run to run on a
// GPU. Once New has loaded a CUDA plugin: what that plugin's XLA_FLAGS set
// (--xla_gpu_deterministic_ops, added for SetDeterministic or $SMI_DETERMINISTIC, or the user's
// own), since XLA reads XLA_FLAGS once per process and later choices no longer change its
// arithmetic. Before, and on other backends: the choice, SetDeterministic, else
// $SMI_DETERMINISTIC (a value that is not a boolean counts as no; New refuses it). The trainer
// records it with a run, so that resuming can keep it.
func Deterministic() bool {
	determinismMu.Lock()
	loaded := cudaDeterminism
	determinismMu.Unlock()
	if loaded != nil {
		return *loaded
	}
	on, _ := deterministicChoice()
	return on
}

// noteCUDAFlags records, as New loads a CUDA plugin (after cudaEnvironment), the determinism
// that XLA_FLAGS gives it, for Deterministic.
func noteCUDAFlags() {
	on := xlaDeterministicOps(os.Getenv(XLAFlagsEnv))
	determinismMu.Lock()
	defer determinismMu.Unlock()
	cudaDeterminism = &on
}

// xlaDeterministicOps is the value that an XLA_FLAGS value gives --xla_gpu_deterministic_ops, as
// XLA's flag parser reads it: the last setting wins; the bare flag, "=true" and "=1" are true;
// absent, "=false", "=0" and anything else (which XLA refuses) are false.
func xlaDeterministicOps(xlaFlags string) bool {
	on := false
	for _, field := range strings.Fields(xlaFlags) {
		if !strings.HasPrefix(field, "-") || xlaFlagName(field) != deterministicOpsFlag {
			continue
		}
		_, value, hasValue := strings.Cut(field, "=")
		on = !hasValue || value == "true" || value == "1"
	}
	return on
}

// deterministicChoice is SetDeterministic's choice, else $SMI_DETERMINISTIC's (strconv.ParseBool's
// spellings; empty: false).
func deterministicChoice() (bool, error) {
	determinismMu.Lock()
	on := chosenDeterminism
	determinismMu.Unlock()
	if on {
		return true, nil
	}
	env := os.Getenv(DeterministicEnv)
	if env == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(env)
	if err != nil {
		return false, fmt.Errorf("$%s=%q: want 1 (run-to-run determinism on a GPU) or 0", DeterministicEnv, env)
	}
	return on, nil
}
