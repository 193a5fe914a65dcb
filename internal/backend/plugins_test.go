package backend

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCPUPlugins(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SMI_PJRT_DIR", dir)
	official, err := FindCPUPlugin(OfficialPlugin)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, PluginFileName), official.Path(), "the default stays where make setup always put it")
	assert.Equal(t, SetupCommand, official.SetupCommand())
	assert.Empty(t, official.XLAFlags)

	lammps, err := FindCPUPlugin("lammps-jax-pjrt-cpu")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "lammps-jax-pjrt-cpu", PluginFileName), lammps.Path())
	assert.Equal(t, "make setup PLUGIN=lammps-jax-pjrt-cpu", lammps.SetupCommand())
	assert.Contains(t, lammps.XLAFlags, "--xla_cpu_multi_thread_eigen=false")

	_, err = FindCPUPlugin("jaxlib")
	require.ErrorContains(t, err, `unknown XLA CPU plugin "jaxlib": want one of xla-cpu-pjrt, lammps-jax-pjrt-cpu, fastatomstruct-xla-cpu`)

	for _, p := range CPUPlugins {
		assert.Equal(t, PluginFileName, filepath.Base(p.Path()), "go-xla calls a plugin of this file name \"cpu\"")
		found, ok := cpuPluginForPath(p.Path())
		assert.True(t, ok, p.Name)
		assert.Equal(t, p.Name, found.Name)
	}
	_, ok := cpuPluginForPath(filepath.Join(dir, "elsewhere", PluginFileName))
	assert.False(t, ok)
}

func TestChosenCPUPlugin(t *testing.T) {
	t.Setenv(PluginEnv, "")
	p, err := chosenCPUPlugin()
	require.NoError(t, err)
	assert.Equal(t, OfficialPlugin, p.Name)
	t.Setenv(PluginEnv, " fastatomstruct-xla-cpu ")
	p, err = chosenCPUPlugin()
	require.NoError(t, err)
	assert.Equal(t, "fastatomstruct-xla-cpu", p.Name)
	t.Setenv(PluginEnv, "nope")
	_, err = chosenCPUPlugin()
	require.ErrorContains(t, err, "$SMI_PJRT_PLUGIN: unknown XLA CPU plugin \"nope\"")
}

// A plugin asked for by name and not installed is an error that says how to install it, never a
// silent fall back to another plugin.
func TestNewCPUMissingPlugin(t *testing.T) {
	t.Setenv("SMI_PJRT_DIR", t.TempDir())
	t.Setenv(PluginEnv, "lammps-jax-pjrt-cpu")
	_, err := newCPU()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoPlugin))
	assert.Contains(t, err.Error(), `"make setup PLUGIN=lammps-jax-pjrt-cpu"`)
	assert.Contains(t, err.Error(), "unset SMI_PJRT_PLUGIN")
}

func TestPrepareCPUPlugin(t *testing.T) {
	lammps, err := FindCPUPlugin("lammps-jax-pjrt-cpu")
	require.NoError(t, err)
	for _, tc := range []struct{ before, want string }{
		{"", "--xla_cpu_multi_thread_eigen=false"},
		{"--xla_cpu_max_isa=AVX2", "--xla_cpu_max_isa=AVX2 --xla_cpu_multi_thread_eigen=false"},
		{"--xla_cpu_multi_thread_eigen=true", "--xla_cpu_multi_thread_eigen=true"}, // the user's choice stands
	} {
		t.Setenv(XLAFlagsEnv, tc.before)
		prepareCPUPlugin(lammps)
		assert.Equal(t, tc.want, os.Getenv(XLAFlagsEnv), tc.before)
	}
	official, err := FindCPUPlugin(OfficialPlugin)
	require.NoError(t, err)
	t.Setenv(XLAFlagsEnv, "")
	prepareCPUPlugin(official)
	assert.Equal(t, "", os.Getenv(XLAFlagsEnv))
}
