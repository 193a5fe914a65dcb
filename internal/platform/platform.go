// Package platform reads what a GoMLX backend computes on from the way it describes itself. It is
// the one reading behind every choice this module makes per platform: the quantile's counting
// (package spectral), the batching of same-shape variables (package optimizers), the Shakespeare
// trainer's evaluation and memory limits, and the device names of internal/backend.
package platform

import (
	"path"
	"regexp"
	"strings"
)

// Plugin returns the lowercase name a backend's description begins with, without the folders
// above it. GoMLX's XLA backend describes itself as "xla:<plugin name or path>[,options] - PJRT
// ...": Plugin is then the PJRT plugin's name or file name ("cpu", "cuda",
// "pjrt_c_api_cpu_plugin.so", "xla_cuda_plugin.so"), never a folder's (a CPU plugin under
// /home/gpu/ is a CPU plugin). Another backend's description gives what comes before its " - ".
func Plugin(description string) string {
	name, _, _ := strings.Cut(strings.ToLower(description), " - ")
	name, _, _ = strings.Cut(strings.TrimPrefix(strings.TrimSpace(name), "xla:"), ",") // options follow a comma
	if name == "" {
		return ""
	}
	return path.Base(name)
}

// Name returns the platform a word of a backend's Plugin names, without the version digits that
// may follow it: "cuda" (xla_cuda_plugin.so, "cuda13"), "rocm", "tpu", "gpu", "metal" or "cpu"
// (pjrt_c_api_cpu_plugin.so), or "" when no word names one ("go", "my_gpuish_plugin.so"). A word
// is a run of letters and digits; an accelerator's word wins over "cpu" if both appear.
func Name(description string) string {
	words := strings.FieldsFunc(Plugin(description), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
	name := ""
	for _, w := range words {
		m := platformWord.FindStringSubmatch(w)
		if m == nil {
			continue
		}
		if m[1] != cpu {
			return m[1]
		}
		name = cpu
	}
	return name
}

// Accelerator reports whether a backend with this description computes on a GPU or TPU rather
// than on the host's CPUs: whether its Name is a platform other than "cpu".
func Accelerator(description string) bool {
	name := Name(description)
	return name != "" && name != cpu
}

const cpu = "cpu"

var platformWord = regexp.MustCompile(`^(cuda|rocm|tpu|gpu|metal|cpu)[0-9]*$`)
