package backend

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeterminism: asked for by SetDeterministic or $SMI_DETERMINISTIC, a CUDA plugin's
// environment gets --xla_gpu_deterministic_ops=true, unless the user's XLA_FLAGS sets the flag;
// not asked for, XLA_FLAGS gets only the data dir; a value that is not a boolean is an error.
// smidevice's report says which.
func TestDeterminism(t *testing.T) {
	site := t.TempDir()
	tree(t, site, jax13, jax12, "nvidia/cu13/bin/ptxas", "nvidia/cu13/nvvm/libdevice/libdevice.10.bc")
	p := CUDAPlugin{Path: filepath.Join(site, jax13), Root: site, Flavor: FlavorCUDA13, Source: "test"}
	dataDir := "--xla_gpu_cuda_data_dir=" + filepath.Join(site, "nvidia/cu13")
	t.Setenv(CUDAPreloadEnv, "0")
	t.Setenv(CUDAChecksEnv, "0")
	t.Cleanup(func() { SetDeterministic(false) })

	for _, tc := range []struct {
		name, env, flags string
		set              bool
		wantFlags, want  string // want: cudaSetup.Determinism
	}{
		{name: "not asked", wantFlags: dataDir},
		{name: "env 0", env: "0", wantFlags: dataDir},
		{name: "env 1", env: "1", wantFlags: dataDir + " --xla_gpu_deterministic_ops=true", want: "set"},
		{name: "env true", env: "true", wantFlags: dataDir + " --xla_gpu_deterministic_ops=true", want: "set"},
		{name: "flag", set: true, wantFlags: dataDir + " --xla_gpu_deterministic_ops=true", want: "set"},
		{name: "flag, env 0", set: true, env: "0", wantFlags: dataDir + " --xla_gpu_deterministic_ops=true", want: "set"},
		{name: "the user's flag wins", env: "1", flags: "--xla_gpu_deterministic_ops=false",
			wantFlags: "--xla_gpu_deterministic_ops=false " + dataDir, want: "yours"},
		{name: "the user's flag, one dash", set: true, flags: "-xla_gpu_deterministic_ops",
			wantFlags: "-xla_gpu_deterministic_ops " + dataDir, want: "yours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(DeterministicEnv, tc.env)
			t.Setenv(XLAFlagsEnv, tc.flags)
			SetDeterministic(tc.set)
			// Deterministic, which the trainer records with a run, reports the choice, not the flag.
			assert.Equal(t, tc.set || tc.env == "1" || tc.env == "true", Deterministic())
			s := cudaEnvironment(p)
			assert.Equal(t, tc.wantFlags, os.Getenv(XLAFlagsEnv))
			assert.Equal(t, tc.want, s.Determinism)
			switch tc.want {
			case "set":
				assert.Contains(t, s.String(), "; run-to-run deterministic (--xla_gpu_deterministic_ops=true)")
			case "yours":
				assert.Contains(t, s.String(), "; determinism as your XLA_FLAGS sets --xla_gpu_deterministic_ops")
			default:
				assert.NotContains(t, s.String(), "determinis")
			}
		})
	}

	// smidevice's report, which loads nothing, says the same.
	t.Setenv(CUDASitePackagesEnv, site)
	SetDeterministic(false)
	for _, tc := range []struct{ env, flags, want string }{
		{"", "", ""},
		{"1", "", "determinism: asked for; --xla_gpu_deterministic_ops=true is appended to XLA_FLAGS too\n"},
		{"1", "--xla_gpu_deterministic_ops=false", "determinism: asked for; your XLA_FLAGS sets --xla_gpu_deterministic_ops\n"},
		{"maybe", "", `determinism: $SMI_DETERMINISTIC="maybe": want 1`},
	} {
		t.Setenv(DeterministicEnv, tc.env)
		t.Setenv(XLAFlagsEnv, tc.flags)
		report := cudaReport()
		assert.Contains(t, report, "plugin: "+site) // cuda13's, or cuda12's under a CUDA 12 driver
		if tc.want == "" {
			assert.NotContains(t, report, "determinism")
		} else {
			assert.Contains(t, report, tc.want, "SMI_DETERMINISTIC=%q, XLA_FLAGS=%q", tc.env, tc.flags)
		}
	}

	t.Setenv(DeterministicEnv, "maybe")
	_, err := deterministicChoice()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `$SMI_DETERMINISTIC="maybe": want 1`)
}

// TestDeterministicOnceLoaded: once a CUDA plugin is loaded, Deterministic reports what its
// XLA_FLAGS gave it (XLA reads them once per process), whatever is chosen later, and what the
// user's own flag decided over the choice.
func TestDeterministicOnceLoaded(t *testing.T) {
	for flags, want := range map[string]bool{
		"": false, "--xla_gpu_autotune_level=0": false,
		"--xla_gpu_deterministic_ops=true": true, "--xla_gpu_deterministic_ops=1": true,
		"--xla_gpu_deterministic_ops": true, "-xla_gpu_deterministic_ops": true,
		"--xla_gpu_deterministic_ops=false": false, "--xla_gpu_deterministic_ops=0": false,
		"--xla_gpu_deterministic_ops=true --xla_gpu_deterministic_ops=false": false, // the last wins
		"--xla_gpu_deterministic_ops=false -xla_gpu_deterministic_ops":       true,
		"--xla_gpu_deterministic_ops_x=true":                                 false,
		"xla_gpu_deterministic_ops=true":                                     false, // not a flag
	} {
		assert.Equal(t, want, xlaDeterministicOps(flags), "XLA_FLAGS=%q", flags)
	}

	t.Cleanup(func() {
		SetDeterministic(false)
		determinismMu.Lock()
		cudaDeterminism = nil
		determinismMu.Unlock()
	})
	// Asked for, but the user's XLA_FLAGS turns it off: the plugin computes without it.
	t.Setenv(DeterministicEnv, "1")
	t.Setenv(XLAFlagsEnv, "--xla_gpu_deterministic_ops=false")
	assert.True(t, Deterministic(), "before a plugin is loaded: the choice")
	noteCUDAFlags()
	assert.False(t, Deterministic())
	// Loaded with it: asking otherwise later changes nothing.
	t.Setenv(XLAFlagsEnv, "--xla_gpu_deterministic_ops=true")
	noteCUDAFlags()
	t.Setenv(DeterministicEnv, "0")
	t.Setenv(XLAFlagsEnv, "")
	SetDeterministic(false)
	assert.True(t, Deterministic())
}
