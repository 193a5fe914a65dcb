package gptbench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
)

// Mangled names as the xla-cpu-pjrt 0.0.1 plugin holds them (nm), and some it does not.
func TestKernelsFromSymbols(t *testing.T) {
	names := []string{
		"_ZN5ducc010detail_fft6cfftp4IfE4passILb1ENS_11detail_simd3vtpIfLm4EEEEEvmmPKT0_PS6_PKNS_5CmplxIfEE",
		"_ZN5ducc010detail_fft6cfftp4IdE4passILb1ENS_11detail_simd3vtpIdLm2EEEEEvmmPKT0_PS6_PKNS_5CmplxIdEE",
		"_ZN5ducc010detail_fft4fooINS_11detail_simd3vtpIfLm8EEEEEvv", // a wider build's type
		"_ZN5Eigen8internal11gebp_kernelIfflNS0_16blas_data_mapperIflLi0ELi0ELi1EEELi8ELi4ELb0ELb0EEclERKS3_PKfS8_lllfllll",
		"_ZN5Eigen8internal11gebp_kernelIddlNS0_16blas_data_mapperIdlLi0ELi0ELi1EEELi4ELi4ELb0ELb0EEclERKS3_PKdS8_lllfllll", // double: not counted
		"_ZN5Eigen8internal5pload4IDv4_fEET_PKNS0_15unpacket_traitsIS3_E4typeE",
		"_GLOBAL__sub_I_eigen_contraction_kernel.cc",
		"_ZN4dnnl4impl3cpu3x6425jit_avx2_f32_copy_an_kern8generateEv",
		"xnn_f32_gemm_minmax_ukernel_6x16__asm_amd64_fma3_broadcast",
		"xnn_f32_gemm_minmax_ukernel_1x16__avx512f_broadcast",
		"xnn_f32_gemm_minmax_ukernel_4x8__sse_load1",
		"xnn_f16_gemm_minmax_ukernel_4x8__avx2_broadcast", // not float32
		"main",
	}
	k := kernelsFromSymbols(names)
	if !slices.Equal(k.FFTFloatLanes, []int{4, 8}) {
		t.Errorf("FFT float lanes %v, want [4 8]", k.FFTFloatLanes)
	}
	if len(k.EigenGEBP) != 1 || k.EigenGEBP[0] != [2]int{8, 4} {
		t.Errorf("Eigen GEBP %v, want [[8 4]]", k.EigenGEBP)
	}
	if !slices.Equal(k.EigenFloatPacketLanes, []int{4}) {
		t.Errorf("Eigen float packets %v, want [4]", k.EigenFloatPacketLanes)
	}
	if !k.EigenOneDNN {
		t.Error("oneDNN contraction kernel not found")
	}
	if kernelsFromSymbols(names[:3]).EigenOneDNN {
		t.Error("oneDNN contraction kernel found without its symbols")
	}
	if !slices.Equal(k.XNNGemmISAs, []string{"avx512f", "fma3", "sse"}) {
		t.Errorf("XNNPACK ISAs %v, want [avx512f fma3 sse]", k.XNNGemmISAs)
	}
}

// The installed plugin names its kernels; skipped when it is not installed.
func TestReadPluginKernels(t *testing.T) {
	path := filepath.Join(backend.PluginDir(), backend.PluginFileName)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no XLA CPU plugin at %s", path)
	}
	k, err := ReadPluginKernels(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.FFTFloatLanes) == 0 || len(k.EigenGEBP) == 0 || len(k.XNNGemmISAs) == 0 {
		t.Errorf("incomplete: %+v", k)
	}
	t.Logf("%+v", k)
	if _, err := ReadPluginKernels(filepath.Join(t.TempDir(), "missing.so")); err == nil {
		t.Error("no error for a missing plugin")
	}
}
