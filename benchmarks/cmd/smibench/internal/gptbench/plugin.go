package gptbench

import (
	"debug/elf"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// PluginKernels is what an XLA CPU plugin's symbol table says of the kernels compiled into it,
// which XLA calls instead of generating code for the CPU it runs on: the FFT library (DUCC),
// Eigen's matrix-product micro-kernel (GEBP) and XNNPACK's matrix-product micro-kernels.
type PluginKernels struct {
	Path string
	// FFTFloatLanes: the lane counts of DUCC's float SIMD vector types (ducc0::detail_simd::vtp<float, N>)
	// instantiated in the plugin. DUCC vectorises with its native vector type, whose width comes from the
	// instruction set the library was compiled for.
	FFTFloatLanes []int
	// EigenGEBP: the (mr, nr) blockings of Eigen's float GEBP kernels in the plugin, gebp_kernel<float,
	// float, ..., mr, nr, ...>; mr is a multiple of the float packet's lanes.
	EigenGEBP [][2]int
	// EigenFloatPacketLanes: the lane counts of the float SIMD types (GCC vector types, mangled Dv<N>_f:
	// __m128 is 4, __m256 8, __m512 16) that Eigen's functions in the plugin take or return.
	EigenFloatPacketLanes []int
	// EigenOneDNN: the plugin holds TSL's custom Eigen contraction kernel (eigen_contraction_kernel.cc)
	// and oneDNN, whose matrix-multiply kernels it calls; oneDNN generates them for the CPU at run time.
	EigenOneDNN bool
	// XNNGemmISAs: the instruction sets of XNNPACK's float GEMM micro-kernels in the plugin, among which
	// XNNPACK chooses at run time for the CPU it runs on.
	XNNGemmISAs []string
}

var (
	duccFloatVector = regexp.MustCompile(`detail_simd3vtpIfLm(\d+)E`)
	eigenFloatGEBP  = regexp.MustCompile(`gebp_kernelIffl.*?ELi(\d+)ELi(\d+)ELb[01]ELb[01]E`)
	floatVector     = regexp.MustCompile(`Dv(\d+)_f`)
	xnnFloatGEMM    = regexp.MustCompile(`^xnn_f32_gemm_minmax_ukernel_\w+?__(?:asm_amd64_|asm_aarch64_)?([a-z0-9]+)`)
)

// ReadPluginKernels reads the plugin's symbol table (.symtab; a stripped plugin has none and
// gives an error).
func ReadPluginKernels(path string) (PluginKernels, error) {
	k := PluginKernels{Path: path}
	f, err := elf.Open(path)
	if err != nil {
		return k, fmt.Errorf("reading the XLA plugin %s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return k, fmt.Errorf("reading the XLA plugin's symbols (%s): %w", path, err)
	}
	names := make([]string, len(syms))
	for i, sym := range syms {
		names[i] = sym.Name
	}
	found := kernelsFromSymbols(names)
	found.Path = path
	if len(found.FFTFloatLanes) == 0 && len(found.EigenGEBP) == 0 && len(found.XNNGemmISAs) == 0 {
		return found, fmt.Errorf("the XLA plugin %s names none of DUCC's, Eigen's or XNNPACK's float kernels in its symbol table", path)
	}
	return found, nil
}

// kernelsFromSymbols reads the kernels' build from (mangled) symbol names.
func kernelsFromSymbols(names []string) PluginKernels {
	var k PluginKernels
	lanes, blocks, isas, packets := map[int]bool{}, map[[2]int]bool{}, map[string]bool{}, map[int]bool{}
	customKernel, oneDNN := false, false
	for _, name := range names {
		customKernel = customKernel || strings.Contains(name, "eigen_contraction_kernel")
		oneDNN = oneDNN || strings.HasPrefix(name, "_ZN4dnnl")
		if strings.Contains(name, "Eigen") {
			for _, m := range floatVector.FindAllStringSubmatch(name, -1) {
				if n, err := strconv.Atoi(m[1]); err == nil {
					packets[n] = true
				}
			}
		}
		switch {
		case strings.Contains(name, "ducc0"):
			for _, m := range duccFloatVector.FindAllStringSubmatch(name, -1) {
				if n, err := strconv.Atoi(m[1]); err == nil {
					lanes[n] = true
				}
			}
		case strings.Contains(name, "gebp_kernelIffl"):
			if m := eigenFloatGEBP.FindStringSubmatch(name); m != nil {
				mr, _ := strconv.Atoi(m[1])
				nr, _ := strconv.Atoi(m[2])
				blocks[[2]int{mr, nr}] = true
			}
		case strings.HasPrefix(name, "xnn_f32_gemm_minmax_ukernel_"):
			if m := xnnFloatGEMM.FindStringSubmatch(name); m != nil {
				isas[m[1]] = true
			}
		}
	}
	k.EigenOneDNN = customKernel && oneDNN
	for n := range lanes {
		k.FFTFloatLanes = append(k.FFTFloatLanes, n)
	}
	slices.Sort(k.FFTFloatLanes)
	for n := range packets {
		k.EigenFloatPacketLanes = append(k.EigenFloatPacketLanes, n)
	}
	slices.Sort(k.EigenFloatPacketLanes)
	for b := range blocks {
		k.EigenGEBP = append(k.EigenGEBP, b)
	}
	slices.SortFunc(k.EigenGEBP, func(a, b [2]int) int { return a[0]*1000 + a[1] - b[0]*1000 - b[1] })
	for isa := range isas {
		k.XNNGemmISAs = append(k.XNNGemmISAs, isa)
	}
	slices.Sort(k.XNNGemmISAs)
	return k
}
