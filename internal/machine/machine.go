// Package machine describes the CPU a measurement ran on, for the provenance lines of the
// project's reports and result files.
//
// A CPU's model name alone does not tell machines apart: a cloud VM's often reads "AMD EPYC"
// whatever the generation, and the project's timings differ by 2x and more between an AVX2 and
// an AVX-512 part of that name. So the description adds what /proc/cpuinfo says of the part, its
// x86 family and model numbers, and the widest vector extension it reports:
//
//	AMD EPYC (family 26, model 2; AVX-512)
//
// The family and model name the generation (for AMD, family 25 is Zen 3 or Zen 4 by model, 26 is
// Zen 5); they are printed, not translated, so that no table here can be out of date.
package machine

import (
	"os"
	"runtime"
	"slices"
	"strings"
)

// CPU describes this machine's CPU as the package documentation shows; where /proc/cpuinfo is
// missing (not Linux), the architecture (runtime.GOARCH).
func CPU() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	return Describe(string(raw))
}

// Describe describes the first processor of a /proc/cpuinfo text: its model name, then in
// parentheses what of family, model and the widest vector extension (VectorFlags) it gives.
// A text without a model name gives "unknown CPU".
func Describe(cpuinfo string) string {
	fields := firstProcessor(cpuinfo)
	name := fields["model name"]
	if name == "" {
		name = "unknown CPU"
	}
	var details []string
	if f := fields["cpu family"]; f != "" {
		details = append(details, "family "+f)
	}
	if m := fields["model"]; m != "" {
		details = append(details, "model "+m)
	}
	part := strings.Join(details, ", ")
	if isa := widestVector(strings.Fields(fields["flags"])); isa != "" {
		if part != "" {
			part += "; "
		}
		part += isa
	}
	if part == "" {
		return name
	}
	return name + " (" + part + ")"
}

// vectorFlags are the x86 vector extensions VectorFlags reports, narrowest first, with the name
// a description gives the widest of them.
var vectorFlags = []struct{ flag, name string }{
	{"sse4_2", "SSE4.2"}, {"avx", "AVX"}, {"avx2", "AVX2"}, {"fma", "FMA"}, {"avx512f", "AVX-512"},
}

// VectorFlags lists the x86 vector extensions this CPU reports (/proc/cpuinfo "flags") of
// sse4_2, avx, avx2, fma and avx512f, in that order; empty elsewhere.
func VectorFlags() []string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	flags := strings.Fields(firstProcessor(string(raw))["flags"])
	var out []string
	for _, v := range vectorFlags {
		if slices.Contains(flags, v.flag) {
			out = append(out, v.flag)
		}
	}
	return out
}

// widestVector names the widest vector extension among flags (FMA does not widen AVX2), or "".
func widestVector(flags []string) string {
	widest := ""
	for _, v := range vectorFlags {
		if v.flag != "fma" && slices.Contains(flags, v.flag) {
			widest = v.name
		}
	}
	return widest
}

// firstProcessor returns the "key: value" fields of the first processor block of a
// /proc/cpuinfo text, keys and values trimmed and inner runs of spaces in values collapsed.
func firstProcessor(cpuinfo string) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(cpuinfo, "\n") {
		if strings.TrimSpace(line) == "" {
			if len(fields) > 0 {
				break // the end of the first block
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if k = strings.TrimSpace(k); fields[k] == "" {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return fields
}
