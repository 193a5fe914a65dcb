package backend

import (
	"os"
	"testing"
)

func TestAppendXLAFlag(t *testing.T) {
	for _, tc := range []struct{ before, want string }{
		{"", "--xla_allow_excess_precision=false"},
		{"--xla_gpu_cuda_data_dir=/usr/local/cuda", "--xla_gpu_cuda_data_dir=/usr/local/cuda --xla_allow_excess_precision=false"},
		{"--xla_allow_excess_precision=true", "--xla_allow_excess_precision=true"}, // The user's choice wins.
		{"--xla_allow_excess_precision", "--xla_allow_excess_precision"},
		{"--xla_allow_excess_precision_x=1", "--xla_allow_excess_precision_x=1 --xla_allow_excess_precision=false"},
		{"-xla_allow_excess_precision=true", "-xla_allow_excess_precision=true"}, // XLA takes one dash too.
	} {
		t.Setenv("XLA_FLAGS", tc.before)
		added := appendXLAFlag("--xla_allow_excess_precision", "false")
		if got := os.Getenv("XLA_FLAGS"); got != tc.want || added != (got != tc.before) {
			t.Errorf("XLA_FLAGS %q: got %q (added: %v), want %q", tc.before, got, added, tc.want)
		}
	}
}
