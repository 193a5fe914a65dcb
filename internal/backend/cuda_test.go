package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree makes empty files (and their directories) under root; a name ending in "/" is a directory.
func tree(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, name := range names {
		path := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			require.NoError(t, os.MkdirAll(path, 0o755))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, nil, 0o644))
	}
}

const (
	jax13 = "jax_plugins/xla_cuda13/xla_cuda_plugin.so"
	jax12 = "jax_plugins/xla_cuda12/xla_cuda_plugin.so"
)

func TestFindCUDAPlugin(t *testing.T) {
	both, only12, none, ours := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	tree(t, both, jax12, jax13)
	tree(t, only12, jax12)
	tree(t, none, "jax_plugins/xla_cpu/xla_cpu_plugin.so", "nvidia/cu13/lib/libcudart.so.13")
	tree(t, ours, jax13)

	// cuda13 comes before cuda12 within a directory, whatever the driver (0: unknown).
	p, ok, _ := findCUDAPlugin([]cudaRoot{{both, "python3"}}, 0)
	require.True(t, ok)
	assert.Equal(t, CUDAPlugin{Path: filepath.Join(both, jax13), Root: both, Flavor: FlavorCUDA13, Source: "python3"}, p)
	p, ok, _ = findCUDAPlugin([]cudaRoot{{both, "python3"}}, 13)
	require.True(t, ok)
	assert.Equal(t, FlavorCUDA13, p.Flavor)

	// A CUDA 12 driver passes the cuda13 plugin over.
	p, ok, skipped := findCUDAPlugin([]cudaRoot{{both, "python3"}}, 12)
	require.True(t, ok)
	assert.Equal(t, filepath.Join(both, jax12), p.Path)
	assert.Equal(t, FlavorCUDA12, p.Flavor)
	require.Len(t, skipped, 1)
	assert.Equal(t, filepath.Join(both, jax13), skipped[0].Path)

	// The first directory with a plugin wins: JAX's site-packages before the project's install.
	p, ok, _ = findCUDAPlugin([]cudaRoot{{none, "python3"}, {only12, "python3"}, {ours, SetupCUDACommand}}, 0)
	require.True(t, ok)
	assert.Equal(t, only12, p.Root)
	assert.Equal(t, FlavorCUDA12, p.Flavor)
	p, ok, _ = findCUDAPlugin([]cudaRoot{{none, "python3"}, {filepath.Join(none, "absent"), "x"}, {ours, SetupCUDACommand}}, 0)
	require.True(t, ok)
	assert.Equal(t, CUDAPlugin{Path: filepath.Join(ours, jax13), Root: ours, Flavor: FlavorCUDA13, Source: SetupCUDACommand}, p)

	// None: no plugin, or only one for a newer CUDA than the driver's.
	_, ok, _ = findCUDAPlugin([]cudaRoot{{none, "python3"}, {filepath.Join(none, "absent"), "x"}}, 0)
	assert.False(t, ok)
	_, ok, skipped = findCUDAPlugin([]cudaRoot{{ours, SetupCUDACommand}}, 12)
	assert.False(t, ok)
	assert.Len(t, skipped, 1)

	// A directory is not a plugin.
	dirOnly := t.TempDir()
	tree(t, dirOnly, jax13+"/")
	_, ok, _ = findCUDAPlugin([]cudaRoot{{dirOnly, "x"}}, 0)
	assert.False(t, ok)

	// go-xla's installer's layout: <root>/nvidia/pjrt_c_api_cuda_plugin.so.
	goxla := t.TempDir()
	tree(t, goxla, "nvidia/pjrt_c_api_cuda_plugin.so", "nvidia/cu13/lib/libcudart.so.13")
	p, ok, _ = findCUDAPlugin([]cudaRoot{{goxla, "go-xla"}}, 0)
	require.True(t, ok)
	assert.Equal(t, CUDAPlugin{Path: filepath.Join(goxla, "nvidia/pjrt_c_api_cuda_plugin.so"), Root: goxla, Flavor: FlavorCUDA13, Source: "go-xla"}, p)
}

func TestFindCUDAPluginEnvironment(t *testing.T) {
	site := t.TempDir()
	tree(t, site, jax13)
	t.Setenv(CUDASitePackagesEnv, site)
	p, err := FindCUDAPlugin(GPUInfo{Found: true, CUDAMajor: 13})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(site, jax13), p.Path)
	assert.Equal(t, "$"+CUDASitePackagesEnv, p.Source)

	// $SMI_CUDA_SITE_PACKAGES is the only place looked at when set: the error says to install one.
	t.Setenv(CUDASitePackagesEnv, t.TempDir())
	_, err = FindCUDAPlugin(GPUInfo{Found: true})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoCUDAPlugin))
	assert.True(t, strings.HasPrefix(err.Error(), "no CUDA PJRT plugin found: run make setup-cuda"), err.Error())

	t.Setenv(CUDASitePackagesEnv, site)
	_, err = FindCUDAPlugin(GPUInfo{Found: true, CUDAMajor: 12, CUDAMinor: 4})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "this driver supports CUDA 12.4 only")
}

func TestCUDADataDir(t *testing.T) {
	toolkit := func(dir string) []string {
		return []string{dir + "/bin/ptxas", dir + "/nvvm/libdevice/libdevice.10.bc"}
	}
	site := t.TempDir()
	tree(t, site, append(toolkit("nvidia/cu13"), toolkit("nvidia/cuda_nvcc")...)...)
	system := t.TempDir()
	tree(t, system, toolkit("cuda")...)
	systemDirs := []string{filepath.Join(system, "missing"), filepath.Join(system, "cuda")}

	// The flavour's pip package directory first.
	dir, source := cudaDataDir(site, FlavorCUDA13, systemDirs, "")
	assert.Equal(t, filepath.Join(site, "nvidia/cu13"), dir)
	assert.Equal(t, "pip package", source)
	dir, _ = cudaDataDir(site, FlavorCUDA12, systemDirs, "")
	assert.Equal(t, filepath.Join(site, "nvidia/cuda_nvcc"), dir)

	// ptxas without libdevice is not enough: the system's CUDA then.
	noNVVM := t.TempDir()
	tree(t, noNVVM, "nvidia/cu13/bin/ptxas", "nvidia/cudnn/lib/libcudnn.so.9")
	dir, source = cudaDataDir(noNVVM, FlavorCUDA13, systemDirs, "")
	assert.Equal(t, filepath.Join(system, "cuda"), dir)
	assert.Equal(t, "system CUDA", source)

	// Another nvidia/ directory with both, but not one of another CUDA version.
	other := t.TempDir()
	tree(t, other, toolkit("nvidia/cuda_nvcc")...)
	tree(t, other, toolkit("nvidia/mytoolkit")...)
	dir, _ = cudaDataDir(other, FlavorCUDA13, nil, "")
	assert.Equal(t, filepath.Join(other, "nvidia/mytoolkit"), dir)
	dir, _ = cudaDataDir(other, FlavorCUDA12, nil, "")
	assert.Equal(t, filepath.Join(other, "nvidia/cuda_nvcc"), dir)

	// Else ptxas on PATH: the parent of its directory.
	bin := t.TempDir()
	tree(t, bin, "cuda-13.0/bin/ptxas")
	dir, source = cudaDataDir(noNVVM, FlavorCUDA13, nil, filepath.Join(bin, "cuda-13.0/bin/ptxas"))
	assert.Equal(t, filepath.Join(bin, "cuda-13.0"), dir)
	assert.Equal(t, "ptxas on PATH", source)
	// ... through a symbolic link.
	require.NoError(t, os.MkdirAll(filepath.Join(bin, "usr/bin"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(bin, "cuda-13.0/bin/ptxas"), filepath.Join(bin, "usr/bin/ptxas")))
	dir, _ = cudaDataDir(noNVVM, FlavorCUDA13, nil, filepath.Join(bin, "usr/bin/ptxas"))
	assert.Equal(t, filepath.Join(bin, "cuda-13.0"), dir)

	// Nothing at all.
	dir, source = cudaDataDir(noNVVM, FlavorCUDA13, nil, "")
	assert.Equal(t, "", dir)
	assert.Equal(t, "", source)
	dir, _ = cudaDataDir("", FlavorCUDA13, systemDirs, "")
	assert.Equal(t, filepath.Join(system, "cuda"), dir)
}

func TestMergeXLAFlags(t *testing.T) {
	for _, c := range []struct {
		flags, dir, want string
		changed          bool
	}{
		{"", "/usr/local/cuda", "--xla_gpu_cuda_data_dir=/usr/local/cuda", true},
		{"  ", "/d", "--xla_gpu_cuda_data_dir=/d", true},
		{"--xla_gpu_autotune_level=0", "/d", "--xla_gpu_autotune_level=0 --xla_gpu_cuda_data_dir=/d", true},
		{"--xla_dump_to=/tmp/x ", "/d", "--xla_dump_to=/tmp/x --xla_gpu_cuda_data_dir=/d", true},
		// The user's own flag is never overridden, in any of absl's spellings.
		{"--xla_gpu_cuda_data_dir=/mine", "/d", "--xla_gpu_cuda_data_dir=/mine", false},
		{"--a=1 -xla_gpu_cuda_data_dir=/mine --b", "/d", "--a=1 -xla_gpu_cuda_data_dir=/mine --b", false},
		{"--xla_gpu_cuda_data_dir /mine", "/d", "--xla_gpu_cuda_data_dir /mine", false},
		// A flag that merely starts with the same name is another flag.
		{"--xla_gpu_cuda_data_dir_x=1", "/d", "--xla_gpu_cuda_data_dir_x=1 --xla_gpu_cuda_data_dir=/d", true},
		// No directory: nothing to add.
		{"--a=1", "", "--a=1", false},
		// Spaces in the directory are quoted.
		{"", "/my cuda", `--xla_gpu_cuda_data_dir="/my cuda"`, true},
	} {
		got, changed := mergeXLAFlags(c.flags, c.dir)
		assert.Equal(t, c.want, got, "XLA_FLAGS=%q dir %q", c.flags, c.dir)
		assert.Equal(t, c.changed, changed, "XLA_FLAGS=%q dir %q", c.flags, c.dir)
	}
}

func TestNvidiaLibraries(t *testing.T) {
	site := t.TempDir()
	tree(t, site,
		"nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13",
		"nvidia/cu13/lib/libnvblas.so.13", "nvidia/cu13/lib/libcufftw.so.12", "nvidia/cu13/lib/libcufft.so.12",
		"nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cu13/lib/libnvrtc.alt.so.13", "nvidia/cu13/lib/libcudart_static.a",
		"nvidia/cu13/lib/libcudadevrt.a", "nvidia/cudnn/lib/libcudnn.so.9", "nvidia/nccl/lib/libnccl.so.2",
		"nvidia/nccl/lib/libnccl_device.bc", "nvidia/nvshmem/lib/libnvshmem_host.so.3",
		"nvidia/nvshmem/lib/nvshmem_bootstrap_mpi.so.3", "nvidia/cu13/lib/libnvrtc-builtins.so.13.0",
		// CUDA 12's layout beside it (PyTorch's wheels, say), and a future cu14.
		"nvidia/cublas/lib/libcublas.so.12", "nvidia/cusparse/lib/libcusparse.so.12", "nvidia/cu14/lib/libcudart.so.14",
		"nvidia/cuda_nvcc/bin/ptxas", "nvidia/cu13/bin/ptxas", "nvidia/cudnn/include/cudnn.h",
	)
	// A symbolic link to a library listed already is dropped.
	require.NoError(t, os.Symlink("libcudnn.so.9", filepath.Join(site, "nvidia/cudnn/lib/libcudnn.so")))

	rel := func(paths []string) []string {
		out := make([]string, len(paths))
		for i, p := range paths {
			out[i], _ = filepath.Rel(site, p)
		}
		return out
	}
	assert.Equal(t, []string{
		"nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13", "nvidia/cu13/lib/libcudart.so.13",
		"nvidia/cu13/lib/libcufft.so.12", "nvidia/cu13/lib/libnvrtc-builtins.so.13.0", "nvidia/cu13/lib/libnvrtc.so.13",
		"nvidia/cudnn/lib/libcudnn.so", "nvidia/nccl/lib/libnccl.so.2", "nvidia/nvshmem/lib/libnvshmem_host.so.3",
	}, rel(nvidiaLibraries(site, FlavorCUDA13)))
	assert.Equal(t, []string{
		"nvidia/cublas/lib/libcublas.so.12", "nvidia/cudnn/lib/libcudnn.so", "nvidia/cusparse/lib/libcusparse.so.12",
		"nvidia/nccl/lib/libnccl.so.2", "nvidia/nvshmem/lib/libnvshmem_host.so.3",
	}, rel(nvidiaLibraries(site, FlavorCUDA12)))
	assert.Empty(t, nvidiaLibraries(t.TempDir(), FlavorCUDA13))
}

func TestPreloadLibraries(t *testing.T) {
	// c needs b, b needs a; in this order, one library loads per pass.
	deps := map[string]string{"c": "b", "b": "a"}
	loaded := map[string]bool{}
	var calls []string
	open := func(path string) error {
		calls = append(calls, path)
		if dep, ok := deps[path]; ok && !loaded[dep] {
			return errors.New(dep + ": cannot open shared object file")
		}
		if path == "broken" {
			return errors.New("broken: invalid ELF header")
		}
		loaded[path] = true
		return nil
	}
	n, failed := preloadLibraries([]string{"c", "b", "a", "broken"}, open)
	assert.Equal(t, 3, n)
	require.Len(t, failed, 1)
	assert.ErrorContains(t, failed["broken"], "invalid ELF header")
	// Pass 1: c, b fail, a loads; pass 2: c fails, b loads; pass 3: c loads; pass 4 loads nothing.
	assert.Equal(t, []string{"c", "b", "a", "broken", "c", "b", "broken", "c", "broken", "broken"}, calls)

	n, failed = preloadLibraries(nil, open)
	assert.Equal(t, 0, n)
	assert.Nil(t, failed)
}

func TestParseDriverCUDAVersion(t *testing.T) {
	out := `+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.95.05              Driver Version: 580.95.05      CUDA Version: 13.0     |
|-----------------------------------------+------------------------+----------------------+`
	major, minor, ok := parseDriverCUDAVersion(out)
	assert.True(t, ok)
	assert.Equal(t, [2]int{13, 0}, [2]int{major, minor})
	major, minor, ok = parseDriverCUDAVersion("| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |")
	assert.True(t, ok)
	assert.Equal(t, [2]int{12, 4}, [2]int{major, minor})
	_, _, ok = parseDriverCUDAVersion("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
	assert.False(t, ok)
}

func TestCUDAPluginForPath(t *testing.T) {
	p, ok := cudaPluginForPath("/venv/lib/python3.12/site-packages/jax_plugins/xla_cuda12/xla_cuda_plugin.so")
	require.True(t, ok)
	assert.Equal(t, "/venv/lib/python3.12/site-packages", p.Root)
	assert.Equal(t, FlavorCUDA12, p.Flavor)

	goxla := t.TempDir()
	tree(t, goxla, "nvidia/pjrt_c_api_cuda_plugin.so", "nvidia/cu13/lib/libcudart.so.13")
	p, ok = cudaPluginForPath(filepath.Join(goxla, "nvidia/pjrt_c_api_cuda_plugin.so"))
	require.True(t, ok)
	assert.Equal(t, goxla, p.Root)
	assert.Equal(t, FlavorCUDA13, p.Flavor)

	p, ok = cudaPluginForPath("/opt/plugins/pjrt_c_api_cuda_plugin.so")
	require.True(t, ok)
	assert.Equal(t, "", p.Root)

	_, ok = cudaPluginForPath("/root/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so")
	assert.False(t, ok)
}

func TestCUDAEnvironment(t *testing.T) {
	site := t.TempDir()
	tree(t, site, jax13, "nvidia/cu13/bin/ptxas", "nvidia/cu13/nvvm/libdevice/libdevice.10.bc",
		"nvidia/cu13/lib/libcudart.so.13")
	p := CUDAPlugin{Path: filepath.Join(site, jax13), Root: site, Flavor: FlavorCUDA13, Source: "test"}

	// Preloading off (the fake library is an empty file): the flags only.
	t.Setenv(CUDAPreloadEnv, "0")
	t.Setenv(XLAFlagsEnv, "--xla_gpu_autotune_level=0")
	os.Unsetenv(CUDAChecksEnv)
	t.Cleanup(func() { os.Unsetenv(CUDAChecksEnv) })
	s := cudaEnvironment(p)
	assert.Equal(t, "--xla_gpu_autotune_level=0 --xla_gpu_cuda_data_dir="+filepath.Join(site, "nvidia/cu13"), os.Getenv(XLAFlagsEnv))
	assert.Equal(t, "0", os.Getenv(CUDAChecksEnv))
	assert.Equal(t, "0", s.PreloadMode)
	line := s.String()
	assert.NotContains(t, line, "\n")
	assert.Contains(t, line, "backend: CUDA PJRT plugin "+p.Path+" (cuda13, from test)")
	assert.Contains(t, line, "XLA data dir "+filepath.Join(site, "nvidia/cu13")+" (pip package)")
	assert.Contains(t, line, "preloading off")

	// The user's flag and GOPJRT_CUDA_CHECKS stay as they are; an empty file fails to load.
	t.Setenv(CUDAPreloadEnv, "")
	t.Setenv(XLAFlagsEnv, "--xla_gpu_cuda_data_dir=/mine")
	t.Setenv(CUDAChecksEnv, "1")
	s = cudaEnvironment(p)
	assert.Equal(t, "--xla_gpu_cuda_data_dir=/mine", os.Getenv(XLAFlagsEnv))
	assert.Equal(t, "1", os.Getenv(CUDAChecksEnv))
	assert.True(t, s.UserDataDir)
	assert.Equal(t, 1, s.Libraries)
	assert.Equal(t, 0, s.Loaded)
	line = s.String()
	assert.Contains(t, line, "XLA data dir from your XLA_FLAGS")
	assert.Equal(t, "local", s.PreloadMode)
	assert.Contains(t, line, "preloaded 0 of 1 NVIDIA libraries (local) (not loaded: libcudart.so.13; first error: ")

	t.Setenv(CUDAPreloadEnv, "global")
	s = cudaEnvironment(p)
	assert.Equal(t, "global", s.PreloadMode)
	assert.Equal(t, 1, s.Libraries)

	// A plugin outside a site-packages layout: nothing to preload.
	s = cudaEnvironment(CUDAPlugin{Path: "/opt/pjrt_c_api_cuda_plugin.so", Flavor: FlavorCUDA13})
	assert.Equal(t, 0, s.Libraries)
	assert.Contains(t, s.String(), "no NVIDIA libraries preloaded")
}

func TestPreloadMode(t *testing.T) {
	for in, want := range map[string]string{"": "local", "local": "local", "1": "local", "global": "global", "GLOBAL": "global", "0": "0", "off": "0", "no": "0", "false": "0"} {
		assert.Equal(t, want, preloadMode(in), in)
	}
}
