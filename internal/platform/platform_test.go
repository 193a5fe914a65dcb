package platform

import "testing"

// Descriptions as GoMLX v0.26's backends give them, with the plugins this module loads, and
// made-up ones whose folders name another platform than the plugin.
func TestPlugin(t *testing.T) {
	for _, c := range []struct {
		desc, plugin, name string
		accelerator        bool
	}{
		{"xla:/root/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so - PJRT plugin (/root/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81 [1 device(s)]", "pjrt_c_api_cpu_plugin.so", "cpu", false},
		{`xla:cpu - PJRT "cpu" plugin (/root/.local/lib/go-xla/pjrt_c_api_cpu_plugin.so) v0.83 [1 device(s)]`, "cpu", "cpu", false},
		{"xla:/venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin (/venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so) v0.90 [1 device(s)]", "xla_cuda_plugin.so", "cuda", true},
		{`xla:cuda - PJRT "cuda" plugin (/root/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so) v0.83 [8 device(s)]`, "cuda", "cuda", true},
		{"xla:CUDA13,tf32 - PJRT", "cuda13", "cuda", true},
		{"xla:rocm - PJRT [1 device(s)]", "rocm", "rocm", true},
		{"xla:/opt/pjrt/pjrt_c_api_tpu_plugin.so - PJRT plugin (/opt/pjrt/pjrt_c_api_tpu_plugin.so) v0.80 [4 device(s)]", "pjrt_c_api_tpu_plugin.so", "tpu", true},
		{"xla:/home/gpu/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so,shared_buffers - PJRT plugin (/home/gpu/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81", "pjrt_c_api_cpu_plugin.so", "cpu", false},
		{"xla:/srv/cpu-cluster/jax_plugins/xla_cuda13/xla_cuda_plugin.so - PJRT plugin (/srv/cpu-cluster/jax_plugins/xla_cuda13/xla_cuda_plugin.so)", "xla_cuda_plugin.so", "cuda", true},
		{"go - SimpleGo backend (/home/tpuser/gpus/cpu)", "go", "", false},
		{"xla:/opt/cudatools/pjrt_c_api_cpu_plugin.so", "pjrt_c_api_cpu_plugin.so", "cpu", false},
		{"xla:my_gpuish_plugin.so", "my_gpuish_plugin.so", "", false}, // "gpuish" is no platform's name
		{"Simple Go Portable Backend", "simple go portable backend", "", false},
		{"", "", "", false},
	} {
		if got := Plugin(c.desc); got != c.plugin {
			t.Errorf("Plugin(%q) = %q, want %q", c.desc, got, c.plugin)
		}
		if got := Name(c.desc); got != c.name {
			t.Errorf("Name(%q) = %q, want %q", c.desc, got, c.name)
		}
		if got := Accelerator(c.desc); got != c.accelerator {
			t.Errorf("Accelerator(%q) = %v, want %v", c.desc, got, c.accelerator)
		}
	}
}
