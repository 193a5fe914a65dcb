package backend

// CUDA: finding a PJRT CUDA plugin, and giving it what it needs before it is loaded.
//
// A CUDA PJRT plugin comes from JAX's wheels: jax-cuda13-pjrt (or jax-cuda12-pjrt) holds
// jax_plugins/xla_cuda13/xla_cuda_plugin.so, and the NVIDIA wheels (nvidia-cublas, nvidia-cudnn-cu13,
// ...) hold the libraries it opens at run time under nvidia/<package>/lib. Both land in one
// site-packages directory; scripts/install-xla-cuda.sh (make setup-cuda) builds the same layout in
// $SMI_PJRT_DIR/cuda13 (or cuda12). Every function here that looks at files takes the root directory,
// so that tests run on fake trees.

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The CUDA flavours of JAX's plugin, the newest first.
const (
	FlavorCUDA13 = "cuda13"
	FlavorCUDA12 = "cuda12"
)

var cudaFlavors = []string{FlavorCUDA13, FlavorCUDA12}

// SetupCUDACommand is what a user runs to install a CUDA PJRT plugin and the NVIDIA libraries.
const SetupCUDACommand = "make setup-cuda"

// ErrNoGPU is returned (wrapped) when the CUDA device is asked for on a machine without an NVIDIA GPU.
var ErrNoGPU = errors.New("no NVIDIA GPU found")

// ErrNoCUDAPlugin is returned (wrapped) when the CUDA device is asked for and no CUDA PJRT plugin is installed.
var ErrNoCUDAPlugin = errors.New("no CUDA PJRT plugin found: run " + SetupCUDACommand)

// Environment variables read here.
const (
	// CUDASitePackagesEnv names a site-packages directory (or one laid out like it) to take the CUDA
	// plugin and the NVIDIA libraries from, instead of asking python3 and looking in the project's
	// install directory.
	CUDASitePackagesEnv = "SMI_CUDA_SITE_PACKAGES"
	// CUDAPreloadEnv chooses how the NVIDIA libraries are preloaded: "local" (the default,
	// RTLD_LOCAL), "global" (RTLD_GLOBAL) or "0" (not at all).
	CUDAPreloadEnv = "SMI_CUDA_PRELOAD"
	// XLAFlagsEnv is XLA's own flags variable.
	XLAFlagsEnv = "XLA_FLAGS"
	// CUDAChecksEnv is go-xla's switch for its CUDA checks (see cudaEnvironment).
	CUDAChecksEnv = "GOPJRT_CUDA_CHECKS"
)

const cudaDataDirFlag = "xla_gpu_cuda_data_dir"

// CUDAPlugin is a CUDA PJRT plugin found on disk.
type CUDAPlugin struct {
	Path   string // the plugin library
	Root   string // the directory holding nvidia/ (a site-packages directory, or laid out like one)
	Flavor string // FlavorCUDA13 or FlavorCUDA12
	Source string // where Root came from, for messages
}

// cudaRoot is a directory to look for a plugin in, and where it came from.
type cudaRoot struct {
	Dir, Source string
}

// pluginsInRoot lists the CUDA plugins under root, cuda13 before cuda12: JAX's layout
// (jax_plugins/xla_cuda13/xla_cuda_plugin.so) and go-xla's installer's layout
// (nvidia/pjrt_c_api_cuda_plugin.so, with the NVIDIA libraries in nvidia/ beside it).
func pluginsInRoot(root cudaRoot) []CUDAPlugin {
	var found []CUDAPlugin
	for _, flavor := range cudaFlavors {
		path := filepath.Join(root.Dir, "jax_plugins", "xla_"+flavor, "xla_cuda_plugin.so")
		if isFile(path) {
			found = append(found, CUDAPlugin{Path: path, Root: root.Dir, Flavor: flavor, Source: root.Source})
		}
	}
	if path := filepath.Join(root.Dir, "nvidia", "pjrt_c_api_cuda_plugin.so"); isFile(path) {
		flavor := FlavorCUDA12
		if isDir(filepath.Join(root.Dir, "nvidia", "cu13")) {
			flavor = FlavorCUDA13
		}
		found = append(found, CUDAPlugin{Path: path, Root: root.Dir, Flavor: flavor, Source: root.Source})
	}
	return found
}

// findCUDAPlugin returns the first plugin of the first root that has one (cuda13 before cuda12
// within a root). When driverMajor > 0 (the CUDA version the driver supports, from nvidia-smi),
// plugins for a newer CUDA are skipped and returned in skipped, for the error message.
func findCUDAPlugin(roots []cudaRoot, driverMajor int) (plugin CUDAPlugin, ok bool, skipped []CUDAPlugin) {
	for _, root := range roots {
		for _, p := range pluginsInRoot(root) {
			if driverMajor > 0 && flavorMajor(p.Flavor) > driverMajor {
				skipped = append(skipped, p)
				continue
			}
			return p, true, skipped
		}
	}
	return CUDAPlugin{}, false, skipped
}

// flavorMajor is the CUDA major version of a flavour ("cuda13" -> 13), 0 if unknown.
func flavorMajor(flavor string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(flavor, "cuda"))
	if err != nil {
		return 0
	}
	return n
}

// cudaRoots lists where to look for a CUDA plugin, in order: $SMI_CUDA_SITE_PACKAGES alone when
// set; else python3's site-packages, the project's install directories (make setup-cuda), and
// go-xla's installer's directories.
func cudaRoots() []cudaRoot {
	if dir := os.Getenv(CUDASitePackagesEnv); dir != "" {
		return []cudaRoot{{dir, "$" + CUDASitePackagesEnv}}
	}
	var roots []cudaRoot
	if python, dirs := pythonSitePackages(); len(dirs) > 0 {
		for _, dir := range dirs {
			roots = append(roots, cudaRoot{dir, python + " site-packages"})
		}
	}
	for _, flavor := range cudaFlavors {
		roots = append(roots, cudaRoot{filepath.Join(PluginDir(), flavor), SetupCUDACommand})
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, cudaRoot{filepath.Join(home, ".local", "lib", "go-xla"), "go-xla's installer"})
	}
	roots = append(roots, cudaRoot{"/usr/local/lib/go-xla", "go-xla's installer"})
	return roots
}

// sitePackagesScript prints the directories python3 installs packages into, one a line
// (scripts/install-xla-cuda.sh runs the same file).
//
//go:embed site_packages.py
var sitePackagesScript string

// pythonSitePackages asks python3 on PATH (10 s at most) for its site-packages directories.
func pythonSitePackages() (python string, dirs []string) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", sitePackagesScript).Output()
	if err != nil {
		return python, nil
	}
	return python, parseLines(string(out))
}

// parseLines returns the non-empty lines of s, each once, in order.
func parseLines(s string) []string {
	var lines []string
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line != "" && !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
	}
	return lines
}

// flavorNvidiaDir is the nvidia/ subdirectory whose bin/ holds ptxas in each flavour's wheels:
// CUDA 13's wheels share nvidia/cu13, CUDA 12's have one directory per package.
var flavorNvidiaDir = map[string]string{FlavorCUDA13: "cu13", FlavorCUDA12: "cuda_nvcc"}

// cuda12PackageDirs are the nvidia/ subdirectories of CUDA 12's wheels (CUDA 13's use nvidia/cu13),
// whose libraries share sonames with CUDA 13's (libcusparse.so.12, ...) and so must not be
// preloaded for a CUDA 13 plugin.
var cuda12PackageDirs = []string{
	"cublas", "cuda_cupti", "cuda_nvcc", "cuda_nvrtc", "cuda_runtime", "cufft", "cufile", "curand",
	"cusolver", "cusparse", "nvjitlink", "nvtx",
}

var reCUDAMajorDir = regexp.MustCompile(`^cu([0-9]+)$`)

// nvidiaDirFits reports whether nvidia/<name> may hold libraries for the flavour: a cuNN directory
// only for CUDA NN, CUDA 12's per-package directories only for cuda12, any other (cudnn, nccl,
// nvshmem, ...) for both.
func nvidiaDirFits(name, flavor string) bool {
	if m := reCUDAMajorDir.FindStringSubmatch(name); m != nil {
		return "cuda"+m[1] == flavor
	}
	if slices.Contains(cuda12PackageDirs, name) {
		return flavor != FlavorCUDA13
	}
	return true
}

// hasToolkit reports whether dir holds what XLA's --xla_gpu_cuda_data_dir must: bin/ptxas and nvvm/libdevice.
func hasToolkit(dir string) bool {
	return isFile(filepath.Join(dir, "bin", "ptxas")) && isDir(filepath.Join(dir, "nvvm", "libdevice"))
}

// cudaDataDir chooses XLA's CUDA data directory (ptxas and libdevice) for a plugin under root:
// the flavour's pip package directory (nvidia/cu13 or nvidia/cuda_nvcc) when it has both, else
// another directory of root/nvidia that has both, else the first of systemDirs that has both
// (/usr/local/cuda), else the parent of the directory of ptxasOnPath ("" when there is none).
// It returns "" when it finds none; source says where the directory came from.
func cudaDataDir(root, flavor string, systemDirs []string, ptxasOnPath string) (dir, source string) {
	if root != "" {
		nvidia := filepath.Join(root, "nvidia")
		if name, ok := flavorNvidiaDir[flavor]; ok && hasToolkit(filepath.Join(nvidia, name)) {
			return filepath.Join(nvidia, name), "pip package"
		}
		entries, _ := os.ReadDir(nvidia) // Sorted by name.
		for _, e := range entries {
			if dir := filepath.Join(nvidia, e.Name()); nvidiaDirFits(e.Name(), flavor) && hasToolkit(dir) {
				return dir, "pip package"
			}
		}
	}
	for _, dir := range systemDirs {
		if hasToolkit(dir) {
			return dir, "system CUDA"
		}
	}
	if ptxasOnPath != "" {
		if resolved, err := filepath.EvalSymlinks(ptxasOnPath); err == nil {
			ptxasOnPath = resolved
		}
		return filepath.Dir(filepath.Dir(ptxasOnPath)), "ptxas on PATH"
	}
	return "", ""
}

// xlaFlagName returns the name of an XLA_FLAGS entry ("--xla_foo=1" -> "xla_foo").
func xlaFlagName(field string) string {
	name := strings.TrimLeft(field, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return name
}

// hasXLAFlag reports whether XLA_FLAGS's value sets the named flag.
func hasXLAFlag(xlaFlags, name string) bool {
	for _, field := range strings.Fields(xlaFlags) {
		if strings.HasPrefix(field, "-") && xlaFlagName(field) == name {
			return true
		}
	}
	return false
}

// mergeXLAFlags appends --xla_gpu_cuda_data_dir=dataDir to XLA_FLAGS's value, unless the value sets
// that flag already (the user's choice stands) or dataDir is empty. It reports whether it changed it.
func mergeXLAFlags(xlaFlags, dataDir string) (string, bool) {
	if dataDir == "" || hasXLAFlag(xlaFlags, cudaDataDirFlag) {
		return xlaFlags, false
	}
	value := dataDir
	if strings.ContainsAny(value, " \t\n\"") {
		value = strconv.Quote(value)
	}
	flag := "--" + cudaDataDirFlag + "=" + value
	if strings.TrimSpace(xlaFlags) == "" {
		return flag, true
	}
	return strings.TrimRight(xlaFlags, " \t\n") + " " + flag, true
}

// deniedLibraries are libraries of the NVIDIA wheels that are never preloaded: drop-in
// replacements of other libraries' symbols (NVBLAS for BLAS, cuFFTW for FFTW) and alternative
// builds of a library loaded anyway (libnvrtc.alt).
func deniedLibrary(base string) bool {
	return strings.HasPrefix(base, "libnvblas") || strings.HasPrefix(base, "libcufftw") || strings.Contains(base, ".alt.")
}

var reSharedLibrary = regexp.MustCompile(`^lib.+\.so(\.[0-9]+)*$`)

// nvidiaLibraries lists the shared libraries of root/nvidia/*/lib that a plugin of the flavour may
// open: each real file once (symbolic links to the same file are dropped), sorted, without the
// directories of another CUDA version (see nvidiaDirFits) and the denied ones (see deniedLibrary).
func nvidiaLibraries(root, flavor string) []string {
	paths, _ := filepath.Glob(filepath.Join(root, "nvidia", "*", "lib", "lib*.so*"))
	slices.Sort(paths)
	var libs []string
	seen := map[string]bool{}
	for _, path := range paths {
		base := filepath.Base(path)
		pkg := filepath.Base(filepath.Dir(filepath.Dir(path)))
		if !reSharedLibrary.MatchString(base) || deniedLibrary(base) || !nvidiaDirFits(pkg, flavor) || !isFile(path) {
			continue
		}
		real := path
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			real = resolved
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		libs = append(libs, path)
	}
	return libs
}

// preloadLibraries opens each path with open, in passes: a library that fails (typically because
// a library it needs is not loaded yet and not on the loader's search path) is tried again in the
// next pass, until a pass loads nothing new. It returns how many loaded and why the others failed.
func preloadLibraries(paths []string, open func(path string) error) (loaded int, failed map[string]error) {
	pending := paths
	for len(pending) > 0 {
		failed = map[string]error{}
		var next []string
		for _, path := range pending {
			if err := open(path); err != nil {
				failed[path] = err
				next = append(next, path)
				continue
			}
			loaded++
		}
		if len(next) == len(pending) {
			break
		}
		pending = next
	}
	if len(failed) == 0 {
		failed = nil
	}
	return loaded, failed
}

// GPUInfo is what nvidiaGPU found out about the machine's NVIDIA GPU.
type GPUInfo struct {
	Found                bool
	CUDAMajor, CUDAMinor int    // the CUDA version the driver supports (0 if unknown)
	Detail               string // how it was found, or why not
}

var reDriverCUDA = regexp.MustCompile(`CUDA Version\s*:\s*([0-9]+)\.([0-9]+)`)

// parseDriverCUDAVersion reads "CUDA Version: 13.0" from nvidia-smi's output.
func parseDriverCUDAVersion(out string) (major, minor int, ok bool) {
	m := reDriverCUDA.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, true
}

// nvidiaGPU looks for an NVIDIA GPU: a /dev/nvidiaN device file, and nvidia-smi (10 s at most),
// which also gives the CUDA version of the driver.
func nvidiaGPU() GPUInfo {
	devices, _ := filepath.Glob("/dev/nvidia[0-9]*")
	info := GPUInfo{Found: len(devices) > 0}
	if info.Found {
		info.Detail = devices[0]
	}
	smi, err := exec.LookPath("nvidia-smi")
	if err != nil {
		if !info.Found {
			info.Detail = "no /dev/nvidia0 and no nvidia-smi on PATH"
		}
		return info
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, smi).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "NVIDIA-SMI") {
		if !info.Found {
			info.Detail = fmt.Sprintf("no /dev/nvidia0, and nvidia-smi found none (%s)", firstLineOf(string(out), err))
		}
		return info
	}
	info.Found = true
	if major, minor, ok := parseDriverCUDAVersion(string(out)); ok {
		info.CUDAMajor, info.CUDAMinor = major, minor
		info.Detail = fmt.Sprintf("nvidia-smi: driver for CUDA %d.%d", major, minor)
	} else if info.Detail == "" {
		info.Detail = "nvidia-smi"
	}
	return info
}

func firstLineOf(out string, err error) string {
	out = strings.TrimSpace(out)
	if i := strings.IndexByte(out, '\n'); i >= 0 {
		out = out[:i]
	}
	if out == "" && err != nil {
		return err.Error()
	}
	return out
}

// cudaSetup is what cudaEnvironment did before a CUDA plugin was loaded.
type cudaSetup struct {
	Plugin                 CUDAPlugin
	DataDir, DataDirSource string // "" when none was found or the user's XLA_FLAGS names one
	UserDataDir            bool   // XLA_FLAGS already had --xla_gpu_cuda_data_dir
	Libraries, Loaded      int
	Failed                 map[string]error
	PreloadMode            string // "local", "global" or "0" (off); see preloadMode
	// Determinism: "" when not asked for (SetDeterministic, $SMI_DETERMINISTIC); "set" when
	// --xla_gpu_deterministic_ops=true was added; "yours" when the user's XLA_FLAGS sets that flag.
	Determinism string
}

// cudaEnvironment gives the plugin what it needs, in this process, before it is loaded:
//
//   - XLA_FLAGS gets --xla_gpu_cuda_data_dir (where XLA finds ptxas and libdevice; see
//     cudaDataDir), appended to the user's flags unless they set it themselves;
//   - XLA_FLAGS gets --xla_gpu_deterministic_ops=true when run-to-run determinism is asked for
//     (SetDeterministic, $SMI_DETERMINISTIC), unless the user's XLA_FLAGS sets that flag;
//   - GOPJRT_CUDA_CHECKS=0 unless set: go-xla v0.1.4 otherwise sets that flag, for CUDA plugins,
//     to a path in its author's home directory (pkg/pjrt/cuda_linux.go) when XLA_FLAGS lacks it;
//   - the NVIDIA libraries under the plugin's root are opened by absolute path with
//     dlopen(RTLD_NOW|RTLD_LOCAL) (see preloadMode): LD_LIBRARY_PATH, read once when the process
//     starts, cannot be changed for it, and the plugin's later dlopen("libcublas.so.13") is then
//     answered by the library already loaded with that soname.
func cudaEnvironment(p CUDAPlugin) cudaSetup {
	s := cudaSetup{Plugin: p}
	flags := os.Getenv(XLAFlagsEnv)
	if hasXLAFlag(flags, cudaDataDirFlag) {
		s.UserDataDir = true
	} else {
		ptxas, _ := exec.LookPath("ptxas")
		s.DataDir, s.DataDirSource = cudaDataDir(p.Root, p.Flavor, []string{"/usr/local/cuda"}, ptxas)
		if merged, changed := mergeXLAFlags(flags, s.DataDir); changed {
			_ = os.Setenv(XLAFlagsEnv, merged)
		}
	}
	if on, _ := deterministicChoice(); on { // create has checked $SMI_DETERMINISTIC
		s.Determinism = "yours"
		if appendXLAFlag("--"+deterministicOpsFlag, "true") {
			s.Determinism = "set"
		}
	}
	if _, set := os.LookupEnv(CUDAChecksEnv); !set {
		_ = os.Setenv(CUDAChecksEnv, "0")
	}
	s.PreloadMode = preloadMode(os.Getenv(CUDAPreloadEnv))
	if s.PreloadMode == "0" || p.Root == "" {
		return s
	}
	libs := nvidiaLibraries(p.Root, p.Flavor)
	s.Libraries = len(libs)
	global := s.PreloadMode == "global"
	s.Loaded, s.Failed = preloadLibraries(libs, func(path string) error { return dlopenLibrary(path, global) })
	return s
}

// preloadMode reads SMI_CUDA_PRELOAD: "0" (or "off", "no", "false") turns preloading off, "global"
// opens the libraries with RTLD_GLOBAL, anything else (the default) with RTLD_LOCAL. Local is
// enough for the loader to answer the plugin's dlopen by soname (glibc matches the sonames of
// every loaded library), and it is what the plugin's own dlopen of them does with LD_LIBRARY_PATH
// set: no library's symbols take part in resolving the symbols of libraries loaded later (the
// plugin's weak references to CUPTI, say). Global is there in case a library needs another's
// symbols without naming it as a dependency.
func preloadMode(value string) string {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "0", "off", "no", "false":
		return "0"
	case "global":
		return "global"
	}
	return "local"
}

// String is the one line logged when a CUDA plugin is loaded.
func (s cudaSetup) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backend: CUDA PJRT plugin %s (%s, from %s)", s.Plugin.Path, s.Plugin.Flavor, s.Plugin.Source)
	switch {
	case s.UserDataDir:
		fmt.Fprintf(&b, "; XLA data dir from your %s", XLAFlagsEnv)
	case s.DataDir != "":
		fmt.Fprintf(&b, "; XLA data dir %s (%s)", s.DataDir, s.DataDirSource)
	default:
		b.WriteString("; no XLA data dir found (no ptxas)")
	}
	switch s.Determinism {
	case "set":
		fmt.Fprintf(&b, "; run-to-run deterministic (--%s=true)", deterministicOpsFlag)
	case "yours":
		fmt.Fprintf(&b, "; determinism as your %s sets --%s", XLAFlagsEnv, deterministicOpsFlag)
	}
	switch {
	case s.PreloadMode == "0":
		fmt.Fprintf(&b, "; preloading off (%s=0)", CUDAPreloadEnv)
	case s.Plugin.Root == "":
		b.WriteString("; no NVIDIA libraries preloaded (plugin not in a site-packages layout)")
	default:
		fmt.Fprintf(&b, "; preloaded %d of %d NVIDIA libraries (%s)", s.Loaded, s.Libraries, s.PreloadMode)
		if len(s.Failed) > 0 {
			paths := slices.Sorted(maps.Keys(s.Failed))
			names := make([]string, len(paths))
			for i, path := range paths {
				names[i] = filepath.Base(path)
			}
			fmt.Fprintf(&b, " (not loaded: %s; first error: %v)", strings.Join(names, ", "), s.Failed[paths[0]])
		}
	}
	return b.String()
}

// cudaPluginForPath guesses, for a plugin given by path (GOMLX_BACKEND=xla:/path/...), whether it is
// a CUDA plugin and where its NVIDIA libraries are: JAX's layout (<root>/jax_plugins/xla_cudaNN/)
// or go-xla's (<root>/nvidia/pjrt_c_api_cuda_plugin.so). Root is "" when neither fits.
func cudaPluginForPath(path string) (CUDAPlugin, bool) {
	if !strings.Contains(strings.ToLower(filepath.Base(path)), "cuda") &&
		!strings.Contains(strings.ToLower(filepath.Base(filepath.Dir(path))), "cuda") {
		return CUDAPlugin{}, false
	}
	p := CUDAPlugin{Path: path, Flavor: FlavorCUDA13, Source: "GOMLX_BACKEND"}
	dir := filepath.Dir(path)
	if name := filepath.Base(dir); strings.HasPrefix(name, "xla_cuda") && filepath.Base(filepath.Dir(dir)) == "jax_plugins" {
		p.Root = filepath.Dir(filepath.Dir(dir))
		p.Flavor = strings.TrimPrefix(name, "xla_")
		return p, true
	}
	if filepath.Base(dir) == "nvidia" {
		p.Root = filepath.Dir(dir)
		if !isDir(filepath.Join(dir, "cu13")) {
			p.Flavor = FlavorCUDA12
		}
	}
	return p, true
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}
