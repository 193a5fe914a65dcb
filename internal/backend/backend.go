// Package backend selects the GoMLX backend for the project's programs, tests and benchmarks.
//
// The default is XLA on the CPU, through the PJRT plugin that `make setup`
// (scripts/install-xla-cpu.sh) installs from OpenXLA's `xla-cpu-pjrt` wheel on PyPI into
// $SMI_PJRT_DIR (default ~/.local/lib/smi-gomlx). No environment variable needs to be set.
//
// Order of choice:
//  1. GOMLX_BACKEND, when set, is respected as GoMLX documents it (e.g. "xla:cpu", "go",
//     "xla:/path/to/plugin.so"), except that "xla:cuda" takes the installed CUDA plugin as the
//     device "cuda" does, instead of GoMLX's download. A plugin path that names CUDA gets the
//     same preparation as the device "cuda" (see cudaEnvironment).
//  2. The device chosen by SetDevice (a program's -device flag), else $SMI_DEVICE, else "cpu":
//     "cuda" loads the CUDA PJRT plugin that FindCUDAPlugin finds (JAX's wheel in python3's
//     site-packages, or make setup-cuda's install), after setting what it needs (XLA_FLAGS'
//     --xla_gpu_cuda_data_dir, GOPJRT_CUDA_CHECKS=0, the NVIDIA libraries preloaded, and when
//     SetDeterministic or $SMI_DETERMINISTIC asks for it --xla_gpu_deterministic_ops); "auto" does
//     so when an NVIDIA GPU and a plugin are found, else falls to "cpu".
//  3. "cpu": the project's plugin in $SMI_PJRT_DIR, loaded by absolute path, so GoMLX's
//     auto-installer (which downloads from GitHub) is not triggered: OpenXLA's xla-cpu-pjrt, or
//     the one $SMI_PJRT_PLUGIN names (CPUPlugins; `make setup PLUGIN=NAME` installs it), with the
//     XLA flags it needs.
//  4. For the default plugin only: a "cpu" PJRT plugin that go-xla already finds
//     (PJRT_PLUGIN_LIBRARY_PATH, ~/.local/lib/go-xla, ...).
//
// Before loading the plugin, New calls hostmem.Retain (XLA CPU then reuses its freed memory).
//
// When none is found, New returns an error that names the command that installs the plugin.
package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // GOMLX_BACKEND=go stays available.
	"github.com/gomlx/gomlx/backends/xla"
	"github.com/smi-gomlx/smi/hostmem"
)

// PluginFileName is the file name go-xla expects for a PJRT plugin called "cpu".
const PluginFileName = "pjrt_c_api_cpu_plugin.so"

// SetupCommand is what a user runs to install the XLA CPU plugin.
const SetupCommand = "make setup"

// PluginDir is where scripts/install-xla-cpu.sh installs the plugin: $SMI_PJRT_DIR, or
// ~/.local/lib/smi-gomlx.
func PluginDir() string {
	if dir := os.Getenv("SMI_PJRT_DIR"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".local", "lib", "smi-gomlx")
	}
	return filepath.Join(home, ".local", "lib", "smi-gomlx")
}

// ErrNoPlugin is returned (wrapped) by New when no XLA CPU plugin can be found.
var ErrNoPlugin = fmt.Errorf("no XLA CPU plugin found")

var (
	once      sync.Once
	shared    backends.Backend
	sharedErr error
)

// New returns the process-wide backend, creating it on the first call (see the package doc for
// the order of choice). Backends hold a PJRT client and its thread pool, so one per process is
// the rule; callers must not Finalize it.
func New() (backends.Backend, error) {
	once.Do(func() { shared, sharedErr = create() })
	return shared, sharedErr
}

func create() (backends.Backend, error) {
	// XLA CPU frees each execution's temporaries with malloc; without this glibc returns them to
	// the system and every step faults fresh pages in (see package hostmem). Where it is not
	// supported, it changes nothing, as without it.
	_ = hostmem.Retain()
	if _, err := deterministicChoice(); err != nil {
		return nil, err
	}
	if config, ok := os.LookupEnv(backends.ConfigEnvVar); ok && config != "" {
		if options, isCUDA := cudaConfig(config); isCUDA {
			// GoMLX's "xla:cuda" would download a plugin; take the installed one instead.
			return newCUDA(options, backends.ConfigEnvVar+"="+config)
		}
		if path := pluginPathOfConfig(config); path != "" {
			if p, isCUDA := cudaPluginForPath(path); isCUDA {
				fmt.Fprintln(os.Stderr, cudaEnvironment(p).String())
				noteCUDAFlags()
			} else if p, found := cpuPluginForPath(path); found {
				prepareCPUPlugin(p)
			}
		}
		b, err := backends.NewWithConfig(config)
		if err != nil {
			return nil, fmt.Errorf("backend %s=%q failed: %v\n(unset %s to use the project's XLA CPU plugin, installed by %q)",
				backends.ConfigEnvVar, config, firstLine(err), backends.ConfigEnvVar, SetupCommand)
		}
		return b, nil
	}
	device, why, err := deviceChoice()
	if err != nil {
		return nil, err
	}
	switch device {
	case DeviceCUDA:
		return newCUDA("", why)
	case DeviceAuto:
		if gpu := nvidiaGPU(); gpu.Found {
			if p, err := FindCUDAPlugin(gpu); err == nil {
				return loadCUDA(p, "")
			}
		}
	}
	return newCPU()
}

// newCPU creates the XLA CPU backend: the project's plugin ($SMI_PJRT_PLUGIN's, else the official
// one), else, for the official one only, one go-xla finds.
func newCPU() (backends.Backend, error) {
	p, err := chosenCPUPlugin()
	if err != nil {
		return nil, err
	}
	path := p.Path()
	if _, err := os.Stat(path); err == nil {
		prepareCPUPlugin(p)
		// Loading by absolute path bypasses go-xla's GitHub auto-install; "shared_buffers" keeps
		// the zero-copy host buffers that GoMLX enables for plugins named "cpu".
		b, err := xla.New(path + ",shared_buffers")
		if err != nil {
			return nil, fmt.Errorf("the XLA CPU plugin at %s failed to load: %v\nReinstall it with: SMI_PJRT_FORCE=1 %s",
				path, firstLine(err), p.SetupCommand())
		}
		return b, nil
	}
	if p.Name != OfficialPlugin {
		// A plugin asked for by name is that one or none: no silent fall back to another.
		return nil, fmt.Errorf("%w: %s=%s asks for the XLA CPU plugin %s, which is not installed at %s.\n"+
			"Install it with %q, or unset %s for the default plugin (%s)",
			ErrNoPlugin, PluginEnv, p.Name, p.Name, path, p.SetupCommand(), PluginEnv, OfficialPlugin)
	}
	if _, found := pjrt.AvailablePlugins()["cpu"]; found {
		xla.EnableAutoInstall(false)
		b, err := xla.New("cpu")
		if err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: this project runs on XLA and expects its CPU plugin at %s.\n"+
		"Install it with %q (downloads OpenXLA's xla-cpu-pjrt wheel from PyPI with pip, about 64 MB), "+
		"or point SMI_PJRT_DIR at a directory holding %s, "+
		"or set GOMLX_BACKEND=xla:cpu to let GoMLX download its own plugin from GitHub",
		ErrNoPlugin, path, SetupCommand, PluginFileName)
}

// prepareCPUPlugin sets the XLA_FLAGS the plugin needs (CPUPlugin.XLAFlags) before it loads, each
// unless the user's XLA_FLAGS sets that flag, and says so on stderr when it sets any.
func prepareCPUPlugin(p CPUPlugin) {
	before := os.Getenv(XLAFlagsEnv)
	for _, f := range p.XLAFlags {
		name, value, _ := strings.Cut(f, "=")
		appendXLAFlag(name, value)
	}
	if after := os.Getenv(XLAFlagsEnv); after != before {
		fmt.Fprintf(os.Stderr, "backend: XLA CPU plugin %s: XLA_FLAGS=%q (%s)\n", p.Name, after, p.Why)
	}
}

// cpuPluginForPath returns the plugin of CPUPlugins installed at path, if any.
func cpuPluginForPath(path string) (CPUPlugin, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return CPUPlugin{}, false
	}
	for _, p := range CPUPlugins {
		if filepath.Clean(p.Path()) == abs {
			return p, true
		}
	}
	return CPUPlugin{}, false
}

// ForMain is New for a program's main: on error it prints the message (no stack trace) and exits
// with status 2.
func ForMain() backends.Backend {
	b, err := New()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	return b
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
