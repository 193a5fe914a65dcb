package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PluginEnv names the XLA CPU plugin the "cpu" device loads: one of CPUPlugins' names, installed by
// `make setup PLUGIN=<name>`. Unset (or the official name) is the default, OpenXLA's xla-cpu-pjrt.
const PluginEnv = "SMI_PJRT_PLUGIN"

// OfficialPlugin is the default XLA CPU plugin: OpenXLA's wheel, installed by plain `make setup`.
const OfficialPlugin = "xla-cpu-pjrt"

// CPUPlugin is an XLA CPU PJRT plugin from PyPI that the project can install and load. Which
// wheel, which file in it and its pinned sha256 are scripts/install-xla-cpu.sh's; this is what
// loading it needs. docs/SETUP.md has each one's provenance and measurements.
type CPUPlugin struct {
	// Name is the PyPI project, as `make setup PLUGIN=<Name>` and $SMI_PJRT_PLUGIN spell it.
	Name string
	// XLAFlags are set in XLA_FLAGS before the plugin loads, each unless the user's XLA_FLAGS
	// already sets that flag (the user's choice stands).
	XLAFlags []string
	// Why says what XLAFlags are for.
	Why string
}

// CPUPlugins are the plugins scripts/install-xla-cpu.sh knows, the default first.
var CPUPlugins = []CPUPlugin{
	{Name: OfficialPlugin},
	{
		// XLA of jaxlib 0.11.2: its FFT thunk hands DUCC the intra-op thread pool it runs on, and
		// when every worker of the pool runs an FFT that waits for the pool's other workers, none
		// is left to do the work (SMI's independent FFTs of a training step: a hang at 0% CPU, all
		// threads in futex waits). One pool thread avoids it. See docs/SETUP.md.
		Name:     "lammps-jax-pjrt-cpu",
		XLAFlags: []string{"--xla_cpu_multi_thread_eigen=false"},
		Why:      "this XLA's FFT deadlocks its multi-threaded intra-op pool",
	},
	{Name: "fastatomstruct-xla-cpu"},
}

// FindCPUPlugin returns the named plugin of CPUPlugins.
func FindCPUPlugin(name string) (CPUPlugin, error) {
	for _, p := range CPUPlugins {
		if p.Name == name {
			return p, nil
		}
	}
	var names []string
	for _, p := range CPUPlugins {
		names = append(names, p.Name)
	}
	return CPUPlugin{}, fmt.Errorf("unknown XLA CPU plugin %q: want one of %s", name, strings.Join(names, ", "))
}

// Path is where `make setup PLUGIN=<name>` installs the plugin: the official one as
// PluginDir()/pjrt_c_api_cpu_plugin.so (as plain `make setup` always has), the others in a folder
// of their name beside it, under the same file name (go-xla then calls each one "cpu").
func (p CPUPlugin) Path() string {
	if p.Name == OfficialPlugin {
		return filepath.Join(PluginDir(), PluginFileName)
	}
	return filepath.Join(PluginDir(), p.Name, PluginFileName)
}

// SetupCommand is what installs the plugin.
func (p CPUPlugin) SetupCommand() string {
	if p.Name == OfficialPlugin {
		return SetupCommand
	}
	return SetupCommand + " PLUGIN=" + p.Name
}

// chosenCPUPlugin is the plugin $SMI_PJRT_PLUGIN names, the official one when it is unset.
func chosenCPUPlugin() (CPUPlugin, error) {
	name := strings.TrimSpace(os.Getenv(PluginEnv))
	if name == "" {
		name = OfficialPlugin
	}
	p, err := FindCPUPlugin(name)
	if err != nil {
		return p, fmt.Errorf("$%s: %w", PluginEnv, err)
	}
	return p, nil
}
