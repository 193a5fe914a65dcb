package backend

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smi-gomlx/smi/internal/platform"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "cpu": DeviceCPU, "CPU": DeviceCPU, " cuda ": DeviceCUDA, "gpu": DeviceCUDA, "GPU": DeviceCUDA, "auto": DeviceAuto,
	} {
		got, err := ParseDevice(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"tpu", "cuda:0", "xla:cuda", "metal"} {
		_, err := ParseDevice(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), `want "cpu", "cuda" or "auto"`)
		assert.ErrorContains(t, SetDevice(in), "unknown device")
	}
}

func TestDeviceChoice(t *testing.T) {
	deviceMu.Lock()
	saved := chosenDevice
	chosenDevice = ""
	deviceMu.Unlock()
	t.Cleanup(func() {
		deviceMu.Lock()
		chosenDevice = saved
		deviceMu.Unlock()
	})

	t.Setenv(DeviceEnv, "")
	d, why, err := deviceChoice()
	require.NoError(t, err)
	assert.Equal(t, DeviceCPU, d)
	assert.Equal(t, "default", why)

	t.Setenv(DeviceEnv, "Auto")
	d, why, err = deviceChoice()
	require.NoError(t, err)
	assert.Equal(t, DeviceAuto, d)
	assert.Equal(t, "SMI_DEVICE=auto", why)

	t.Setenv(DeviceEnv, "npu")
	_, _, err = deviceChoice()
	assert.ErrorContains(t, err, `$SMI_DEVICE: unknown device "npu"`)

	// The program's choice (SetDevice) comes before $SMI_DEVICE.
	deviceMu.Lock()
	chosenDevice = DeviceCUDA
	deviceMu.Unlock()
	d, why, err = deviceChoice()
	require.NoError(t, err)
	assert.Equal(t, DeviceCUDA, d)
	assert.Equal(t, "-device cuda", why)
}

func TestPlatformFromDescription(t *testing.T) {
	for _, c := range []struct{ name, desc, want string }{
		{"xla", "xla:/root/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so - PJRT plugin (/root/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81 [1 device(s)]", "cpu"},
		{"xla", `xla:cpu - PJRT "cpu" plugin (/root/.local/lib/go-xla/pjrt_c_api_cpu_plugin.so) v0.83 [1 device(s)]`, "cpu"},
		{"xla", "xla:/venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin (/venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so) v0.90 [1 device(s)]", "cuda"},
		{"xla", `xla:cuda - PJRT "cuda" plugin (/root/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so) v0.83 [8 device(s)]`, "cuda"},
		{"xla", "xla:/opt/pjrt/pjrt_c_api_tpu_plugin.so - PJRT plugin (/opt/pjrt/pjrt_c_api_tpu_plugin.so) v0.80 [4 device(s)]", "tpu"},
		{"xla", "xla:/srv/cpu-cluster/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin", "cuda"},
		{"xla", "xla:/opt/cudatools/pjrt_c_api_cpu_plugin.so - PJRT plugin", "cpu"},
		{"xla", "xla:/opt/pjrt/pjrt_c_api_mycpuish_plugin.so - PJRT plugin", "mycpuish"},
		{"go", "Pure Go Backend", "go"},
	} {
		assert.Equal(t, c.want, platformFromDescription(c.name, c.desc), c.desc)
		// The device name and the choices made per platform read the description alike.
		assert.Equal(t, c.want != DeviceCPU && c.want != "go" && c.want != "mycpuish", platform.Accelerator(c.desc), c.desc)
	}
	assert.Equal(t, "", PlatformOf(nil))
}

func TestCUDAConfig(t *testing.T) {
	for config, want := range map[string]string{"xla:cuda": "", "xla:cuda,tf32": ",tf32", "stablehlo:cuda": "", "hlo:cuda,shared_buffers": ",shared_buffers"} {
		options, ok := cudaConfig(config)
		assert.True(t, ok, config)
		assert.Equal(t, want, options, config)
	}
	for _, config := range []string{"xla:cpu", "go", "xla", "xla:/path/xla_cuda_plugin.so", "simplego:cuda", "xla:cudax"} {
		_, ok := cudaConfig(config)
		assert.False(t, ok, config)
	}
	assert.Equal(t, "/p/xla_cuda_plugin.so", pluginPathOfConfig("xla:/p/xla_cuda_plugin.so,tf32"))
	assert.Equal(t, "", pluginPathOfConfig("xla:cpu"))
	assert.Equal(t, "", pluginPathOfConfig("go"))
}

// TestNoGPUError checks, on a machine without an NVIDIA GPU, that asking for the GPU gives the
// documented error (no panic, no stack trace).
func TestNoGPUError(t *testing.T) {
	if NvidiaGPU().Found {
		t.Skip("this machine has an NVIDIA GPU")
	}
	_, err := newCUDA("", "-device cuda")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoGPU))
	assert.True(t, strings.HasPrefix(err.Error(), "no NVIDIA GPU found ("), err.Error())
	assert.Contains(t, err.Error(), "-device cuda asks for the GPU")
}
