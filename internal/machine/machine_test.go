package machine

import (
	"strings"
	"testing"
)

// Two processor blocks as Linux prints them (abridged): only the first is described.
const zen5 = `processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 26
model		: 2
model name	: AMD EPYC
stepping	: 1
flags		: fpu sse4_2 avx fma avx2 avx512f avx512bw
bugs		: sysret_ss_attrs

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: Another CPU
flags		: sse4_2
`

func TestDescribe(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"AVX-512, first block only", zen5, "AMD EPYC (family 26, model 2; AVX-512)"},
		{"AVX2 (FMA does not count)", "cpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD  EPYC   7B13\nflags\t\t: sse4_2 avx avx2 fma\n",
			"AMD EPYC 7B13 (family 25, model 1; AVX2)"},
		{"no vector flags", "model name\t: Some CPU\ncpu family\t: 6\nmodel\t\t: 85\n", "Some CPU (family 6, model 85)"},
		{"name only (arm64)", "processor\t: 0\nmodel name\t: ARMv8 Processor\nFeatures\t: fp asimd\n", "ARMv8 Processor"},
		{"nothing", "", "unknown CPU"},
		{"model field is not model name", "model\t\t: 2\n", "unknown CPU (model 2)"},
	} {
		if got := Describe(c.in); got != c.want {
			t.Errorf("%s: Describe = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestThisMachine(t *testing.T) {
	cpu := CPU()
	if cpu == "" || strings.Contains(cpu, "\n") {
		t.Fatalf("CPU() = %q", cpu)
	}
	flags := VectorFlags()
	for _, f := range flags {
		if !strings.Contains("sse4_2 avx avx2 fma avx512f", f) {
			t.Errorf("VectorFlags reports %q", f)
		}
	}
	t.Logf("%s; vector flags %v", cpu, flags)
}
