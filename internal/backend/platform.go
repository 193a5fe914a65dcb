package backend

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"

	"github.com/smi-gomlx/smi/internal/platform"
)

// The devices a program can ask for (SetDevice, $SMI_DEVICE, a program's -device flag).
const (
	DeviceCPU  = "cpu"  // XLA on the CPU, through the plugin of make setup (the default)
	DeviceCUDA = "cuda" // XLA on an NVIDIA GPU, through a CUDA PJRT plugin (see FindCUDAPlugin)
	DeviceAuto = "auto" // cuda when an NVIDIA GPU and a CUDA plugin are found, else cpu
)

// DeviceEnv chooses the device when no program sets it (test binaries, benchmarks).
const DeviceEnv = "SMI_DEVICE"

// DeviceUsage is the help text of a program's -device flag.
const DeviceUsage = `device to run on: "cpu" (XLA CPU), "cuda" (an NVIDIA GPU; see make setup-cuda) or "auto" ` +
	`(cuda when a GPU and a CUDA plugin are found, else cpu); default $SMI_DEVICE, else cpu. GOMLX_BACKEND, when set, overrides it`

var (
	deviceMu     sync.Mutex
	chosenDevice string // set by SetDevice; "" for $SMI_DEVICE or cpu
)

// ParseDevice checks a device name: "cpu", "cuda" ("gpu" is taken for it) or "auto", in any
// case; "" stays "" (the default).
func ParseDevice(name string) (string, error) {
	switch d := strings.ToLower(strings.TrimSpace(name)); d {
	case "", DeviceCPU, DeviceCUDA, DeviceAuto:
		return d, nil
	case "gpu":
		return DeviceCUDA, nil
	}
	return "", fmt.Errorf("unknown device %q: want %q, %q or %q", name, DeviceCPU, DeviceCUDA, DeviceAuto)
}

// SetDevice chooses the device New creates the backend on: "cpu" (the default), "cuda" or "auto";
// "" keeps the default ($SMI_DEVICE, else cpu). It must be called before the first New; later, it
// only accepts the platform already in use. GOMLX_BACKEND, when set, takes precedence.
func SetDevice(name string) error {
	d, err := ParseDevice(name)
	if err != nil {
		return err
	}
	deviceMu.Lock()
	defer deviceMu.Unlock()
	if shared != nil || sharedErr != nil {
		if d == "" || d == DeviceAuto || (shared != nil && PlatformOf(shared) == d) {
			return nil
		}
		return fmt.Errorf("device %q asked for after the backend was created (%s): set it before backend.New", d, describe(shared))
	}
	chosenDevice = d
	return nil
}

// deviceChoice returns the device New should use, and where the choice came from.
func deviceChoice() (device, source string, err error) {
	deviceMu.Lock()
	d := chosenDevice
	deviceMu.Unlock()
	if d != "" {
		return d, "-device " + d, nil
	}
	if env := os.Getenv(DeviceEnv); env != "" {
		d, err := ParseDevice(env)
		if err != nil {
			return "", "", fmt.Errorf("$%s: %w", DeviceEnv, err)
		}
		if d != "" {
			return d, DeviceEnv + "=" + d, nil
		}
	}
	return DeviceCPU, "default", nil
}

// Platform returns what the process-wide backend (New) computes on: "cpu" or "cuda" for XLA's
// CPU and CUDA plugins, the plugin's name for another XLA plugin, the backend's name for other
// backends ("go"), or "" when New fails. Tests use it to say which arithmetic they check.
func Platform() string {
	b, err := New()
	if err != nil {
		return ""
	}
	return PlatformOf(b)
}

// PlatformOf is Platform for any backend.
func PlatformOf(b backends.Backend) string {
	if b == nil {
		return ""
	}
	return platformFromDescription(b.Name(), b.Description())
}

// platformFromDescription reads the platform from a backend's name and description: for XLA, the
// platform its plugin names (platform.Name, the reading behind every choice made per platform),
// else the plugin's name without pjrt_c_api_ and _plugin.so.
func platformFromDescription(name, description string) string {
	if name != xla.BackendName {
		return name
	}
	if p := platform.Name(description); p != "" {
		return p
	}
	plugin := strings.TrimPrefix(platform.Plugin(description), "pjrt_c_api_")
	plugin = strings.TrimSuffix(plugin, ".so")
	return strings.TrimSuffix(plugin, "_plugin")
}

func describe(b backends.Backend) string {
	if b == nil {
		return "it failed"
	}
	return b.Description()
}

// cudaConfig reports whether a GOMLX_BACKEND value names GoMLX's "cuda" plugin of the XLA backend
// ("xla:cuda", "xla:cuda,tf32", also through the backend's aliases), and returns its options.
func cudaConfig(config string) (options string, ok bool) {
	name, plugin, found := strings.Cut(config, ":")
	if !found {
		return "", false
	}
	switch name {
	case xla.BackendName, "stablehlo", "hlo", "shlo":
	default:
		return "", false
	}
	plugin, options, _ = strings.Cut(plugin, ",")
	if plugin != DeviceCUDA {
		return "", false
	}
	if options != "" {
		options = "," + options
	}
	return options, true
}

// pluginPathOfConfig returns the plugin path of a GOMLX_BACKEND value "xla:/abs/path[,options]".
func pluginPathOfConfig(config string) string {
	name, plugin, found := strings.Cut(config, ":")
	if !found || (name != xla.BackendName && name != "stablehlo" && name != "hlo" && name != "shlo") {
		return ""
	}
	plugin, _, _ = strings.Cut(plugin, ",")
	if !filepath.IsAbs(plugin) {
		return ""
	}
	return plugin
}

// FindCUDAPlugin finds the CUDA PJRT plugin New would load for the device "cuda", without
// loading it: the first of $SMI_CUDA_SITE_PACKAGES (alone, when set); python3's site-packages
// (JAX's jax-cuda13-pjrt or jax-cuda12-pjrt); the project's install (make setup-cuda,
// $SMI_PJRT_DIR/cuda13 or cuda12); go-xla's installer's directories. Within a directory, cuda13
// comes before cuda12, and a plugin for a newer CUDA than the driver's is passed over.
func FindCUDAPlugin(gpu GPUInfo) (CUDAPlugin, error) {
	roots := cudaRoots()
	p, ok, skipped := findCUDAPlugin(roots, gpu.CUDAMajor)
	if ok {
		return p, nil
	}
	var where []string
	for _, root := range roots {
		where = append(where, root.Dir)
	}
	msg := fmt.Sprintf(" (it installs jax-cuda13-pjrt or jax-cuda12-pjrt and the NVIDIA libraries from PyPI); "+
		"looked for jax_plugins/xla_cuda13/xla_cuda_plugin.so and jax_plugins/xla_cuda12/xla_cuda_plugin.so in %s. "+
		"Set %s to a site-packages directory that holds one to use it",
		strings.Join(where, ", "), CUDASitePackagesEnv)
	if len(skipped) > 0 {
		msg += fmt.Sprintf(". Passed over %s (%s): this driver supports CUDA %d.%d only",
			skipped[0].Path, skipped[0].Flavor, gpu.CUDAMajor, gpu.CUDAMinor)
	}
	return CUDAPlugin{}, fmt.Errorf("%w%s", ErrNoCUDAPlugin, msg)
}

// NvidiaGPU reports whether this machine has an NVIDIA GPU (/dev/nvidia0, or nvidia-smi), and
// the CUDA version of its driver when nvidia-smi gives it.
func NvidiaGPU() GPUInfo { return nvidiaGPU() }

// newCUDA creates the XLA backend on the CUDA plugin found by FindCUDAPlugin, after
// cudaEnvironment, and logs one line to stderr: the plugin, XLA's data dir, the preloaded libraries.
func newCUDA(options, why string) (backends.Backend, error) {
	gpu := nvidiaGPU()
	if !gpu.Found {
		instead := "choose -device cpu"
		switch {
		case strings.HasPrefix(why, backends.ConfigEnvVar):
			instead = "unset " + backends.ConfigEnvVar + " for the CPU"
		case strings.HasPrefix(why, DeviceEnv):
			instead = "set " + DeviceEnv + "=cpu"
		}
		return nil, fmt.Errorf("%w (%s), but %s asks for the GPU: run on a machine with an NVIDIA GPU and its driver, or %s",
			ErrNoGPU, gpu.Detail, why, instead)
	}
	p, err := FindCUDAPlugin(gpu)
	if err != nil {
		return nil, err
	}
	return loadCUDA(p, options)
}

// loadCUDA prepares the environment for the plugin and loads it.
func loadCUDA(p CUDAPlugin, options string) (backends.Backend, error) {
	setup := cudaEnvironment(p)
	noteCUDAFlags()
	fmt.Fprintln(os.Stderr, setup.String())
	b, err := xla.New(p.Path + options)
	if err != nil {
		return nil, fmt.Errorf("the CUDA PJRT plugin %s failed to start: %v\n"+
			"(its NVIDIA libraries are taken from %s/nvidia; %s=0 turns their preloading off, "+
			"and %s=--%s=<CUDA dir> chooses where ptxas and libdevice are)",
			p.Path, firstLine(err), p.Root, CUDAPreloadEnv, XLAFlagsEnv, cudaDataDirFlag)
	}
	return b, nil
}

// CUDAReport describes, in a few lines and without loading anything, what the device "cuda"
// would use here: the GPU, the plugin, XLA's data dir and the NVIDIA libraries to preload, with
// the home directory written as ~ (HomeAsTilde: the report goes into published logs).
func CUDAReport() string { return HomeAsTilde(cudaReport()) }

func cudaReport() string {
	var b strings.Builder
	gpu := nvidiaGPU()
	fmt.Fprintf(&b, "GPU: found=%v (%s)\n", gpu.Found, gpu.Detail)
	if python, dirs := pythonSitePackages(); python != "" {
		fmt.Fprintf(&b, "python3: %s, site-packages %s\n", python, strings.Join(dirs, ", "))
	} else {
		b.WriteString("python3: not on PATH\n")
	}
	p, err := FindCUDAPlugin(gpu)
	if err != nil {
		fmt.Fprintf(&b, "plugin: %v\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, "plugin: %s (%s, from %s)\n", p.Path, p.Flavor, p.Source)
	if flags := os.Getenv(XLAFlagsEnv); hasXLAFlag(flags, cudaDataDirFlag) {
		fmt.Fprintf(&b, "XLA data dir: yours, in %s=%q\n", XLAFlagsEnv, flags)
	} else {
		ptxas := ""
		if path, err := exec.LookPath("ptxas"); err == nil {
			ptxas = path
		}
		dir, source := cudaDataDir(p.Root, p.Flavor, []string{"/usr/local/cuda"}, ptxas)
		merged, _ := mergeXLAFlags(flags, dir)
		fmt.Fprintf(&b, "XLA data dir: %q (%s); %s would be %q\n", dir, source, XLAFlagsEnv, merged)
	}
	switch on, err := deterministicChoice(); {
	case err != nil:
		fmt.Fprintf(&b, "determinism: %v\n", err)
	case on && hasXLAFlag(os.Getenv(XLAFlagsEnv), deterministicOpsFlag):
		fmt.Fprintf(&b, "determinism: asked for; your %s sets --%s\n", XLAFlagsEnv, deterministicOpsFlag)
	case on:
		fmt.Fprintf(&b, "determinism: asked for; --%s=true is appended to %s too\n", deterministicOpsFlag, XLAFlagsEnv)
	}
	libs := nvidiaLibraries(p.Root, p.Flavor)
	fmt.Fprintf(&b, "NVIDIA libraries to preload: %d under %s\n", len(libs), filepath.Join(p.Root, "nvidia"))
	return b.String()
}
