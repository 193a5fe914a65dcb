package gptbench

import (
	"strings"
	"testing"
)

// optimizedHLO is the shape of what XLA's GPU compiler prints after its passes (abridged from a
// real module): fused computations first, then the entry computation, whose instructions are
// counted, each fusion by what its computation ends in.
const optimizedHLO = `HloModule jit_step, is_scheduled=true, entry_computation_layout={(f32[64,256]{1,0}, f32[256,128]{1,0})->(f32[], f32[64,128]{1,0})}

%add (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %sum = f32[] add(%x, %y)
}

%fused_reduce (param_0.1: f32[64,128]) -> f32[] {
  %param_0.1 = f32[64,128]{1,0} parameter(0)
  %constant_1 = f32[] constant(0)
  ROOT %reduce.1 = f32[] reduce(%param_0.1, %constant_1), dimensions={0,1}, to_apply=%add
}

%fused_two_reduces (param_0.2: f32[64,128]) -> (f32[64], f32[64]) {
  %param_0.2 = f32[64,128]{1,0} parameter(0)
  %constant_2 = f32[] constant(0)
  %reduce.2 = f32[64]{0} reduce(%param_0.2, %constant_2), dimensions={1}, to_apply=%add
  %negate.3 = f32[64,128]{1,0} negate(%param_0.2)
  %reduce.3 = f32[64]{0} reduce(%negate.3, %constant_2), dimensions={1}, to_apply=%add
  ROOT %tuple.4 = (f32[64]{0}, f32[64]{0}) tuple(%reduce.2, %reduce.3)
}

%fused_multiply (param_0.5: f32[64,128], param_1.5: c64[64,65]) -> (f32[64,128], pred[64,128]) {
  %param_0.5 = f32[64,128]{1,0} parameter(0)
  %param_1.5 = c64[64,65]{1,0} parameter(1)
  %multiply.5 = f32[64,128]{1,0} multiply(%param_0.5, %param_0.5)
  %compare.5 = pred[64,128]{1,0} compare(%param_0.5, %param_0.5), direction=GT
  ROOT %tuple.5 = (f32[64,128]{1,0}, pred[64,128]{1,0}) tuple(%multiply.5, %compare.5)
}

%fused_transpose (param_0.6: f32[64,128]) -> f32[128,64] {
  %param_0.6 = f32[64,128]{1,0} parameter(0)
  ROOT %transpose.6 = f32[128,64]{1,0} transpose(%param_0.6), dimensions={1,0}
}

%fused_scatter (param_0.7: s32[65], param_1.7: s32[8192,1], param_2.7: s32[8192]) -> s32[65] {
  %param_0.7 = s32[65]{0} parameter(0)
  %param_1.7 = s32[8192,1]{1,0} parameter(1)
  %param_2.7 = s32[8192]{0} parameter(2)
  ROOT %scatter.7 = s32[65]{0} scatter(%param_0.7, %param_1.7, %param_2.7), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=%add
}

%dynamic_slice_fusion (param_0.8: f32[64,128]) -> f32[64,128] {
  %param_0.8 = f32[64,128]{1,0} parameter(0)
  ROOT %copy.8 = f32[64,128]{1,0} copy(%param_0.8)
}

ENTRY %main.42 (Arg_0.1: f32[64,256], Arg_1.2: f32[256,128]) -> (f32[], f32[64,128]) {
  %Arg_0.1 = f32[64,256]{1,0} parameter(0), metadata={op_name="x"}
  %Arg_1.2 = f32[256,128]{1,0} parameter(1)
  %constant_7 = s32[] constant(3)
  %gemm_fusion_dot.1 = f32[64,128]{1,0} fusion(%Arg_0.1, %Arg_1.2), kind=kCustom, calls=%gemm_fusion_dot.1_computation, backend_config={"fusion_backend_config":{"kind":"__triton_nested_gemm_fusion"}}
  %bitcast.3 = f32[8192]{0} bitcast(%gemm_fusion_dot.1)
  %fft.4 = c64[64,65]{1,0} fft(%gemm_fusion_dot.1), fft_type=RFFT, fft_length={64,128}
  %loop_multiply_fusion = (f32[64,128]{1,0}, pred[64,128]{1,0}) fusion(%gemm_fusion_dot.1, %fft.4), kind=kLoop, calls=%fused_multiply
  %get-tuple-element.5 = f32[64,128]{1,0} get-tuple-element(%loop_multiply_fusion), index=0
  %input_reduce_fusion = f32[] fusion(%get-tuple-element.5), kind=kInput, calls=%fused_reduce
  %input_reduce_fusion.2 = (f32[64]{0}, f32[64]{0}) fusion(%get-tuple-element.5), kind=kInput, calls=%fused_two_reduces
  %input_transpose_fusion = f32[128,64]{1,0} fusion(%get-tuple-element.5), kind=kInput, calls=%fused_transpose
  %indices = s32[8192,1]{1,0} bitcast(%bitcast.3)
  %input_scatter_fusion = s32[65]{0} fusion(%constant_7, %indices, %bitcast.3), kind=kInput, calls=%fused_scatter
  %custom_fusion = f32[64,128]{1,0} fusion(%get-tuple-element.5), kind=kCustom, calls=%dynamic_slice_fusion
  %copy.6 = f32[128,64]{0,1} copy(%custom_fusion)
  ROOT %tuple.7 = (f32[], f32[64,128]{1,0}) tuple(%input_reduce_fusion, %copy.6)
}
`

func TestReadKernels(t *testing.T) {
	k, err := ReadKernels(optimizedHLO)
	if err != nil {
		t.Fatal(err)
	}
	// The gemm fusion is a product; the other kCustom fusion is "other"; the transpose fusion
	// (kInput) and the copy are elementwise; the multi-output reduction is a reduction.
	if k.Elementwise != 3 || k.Reduce != 2 || k.Scatter != 1 || k.Product != 1 || k.FFT != 1 || k.Other != 1 || k.Total() != 9 {
		t.Errorf("elementwise %d, reduce %d, scatter %d, product %d, fft %d, other %d, total %d; want 3, 2, 1, 1, 1, 1, 9",
			k.Elementwise, k.Reduce, k.Scatter, k.Product, k.FFT, k.Other, k.Total())
	}
	var names []string
	for _, kernel := range k.List {
		names = append(names, kernel.Name+":"+kernel.Class)
	}
	want := "gemm_fusion_dot.1:product fft.4:fft loop_multiply_fusion:elementwise input_reduce_fusion:reduce " +
		"input_reduce_fusion.2:reduce input_transpose_fusion:elementwise input_scatter_fusion:scatter custom_fusion:other copy.6:elementwise"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("kernels in order: %s\nwant %s", got, want)
	}
	// Bytes: each kernel's result plus its operands (a tuple result counts all its arrays).
	const (
		x, w, y = 64 * 256 * 4, 256 * 128 * 4, 64 * 128 * 4
		spec    = 64 * 65 * 8
		mask    = 64 * 128
	)
	wantBytes := []int64{
		y + x + w,             // gemm
		spec + y,              // fft
		(y + mask) + y + spec, // loop fusion with a tuple result
		4 + y,                 // reduction to a scalar
		2*64*4 + y,            // two reductions to rows
		y + y,                 // transpose
		65*4 + 4 + y + y,      // scatter: result, the scalar constant, indices and updates (bitcasts of y)
		y + y,                 // custom fusion
		y + y,                 // copy
	}
	var total int64
	for i, kernel := range k.List {
		if kernel.Bytes != wantBytes[i] {
			t.Errorf("%s: %d bytes, want %d", kernel.Name, kernel.Bytes, wantBytes[i])
		}
		total += wantBytes[i]
	}
	if k.Bytes != total || k.Small != 9 {
		t.Errorf("bytes %d, small %d; want %d and 9", k.Bytes, k.Small, total)
	}
}

func TestReadKernelsErrors(t *testing.T) {
	for _, text := range []string{
		"",
		"HloModule m\n\n%f (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n}\n",          // no ENTRY
		"HloModule m\n\nENTRY %main (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n",    // unterminated
		"HloModule m\n\nENTRY %main (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n}\n", // no kernel
	} {
		if _, err := ReadKernels(text); err == nil {
			t.Errorf("ReadKernels(%q): no error", text)
		}
	}
}

func TestHLOShapeBytes(t *testing.T) {
	for shape, want := range map[string]int64{
		"f32[]":                            4,
		"f32[64,256]{1,0}":                 64 * 256 * 4,
		"bf16[3,5]{1,0}":                   30,
		"pred[7]{0}":                       7,
		"c64[2,3]{1,0}":                    48,
		"(f32[2]{0}, s32[4]{0}, u8[1]{0})": 8 + 16 + 1,
		"token[]":                          0,
	} {
		if got := hloShapeBytes(shape); got != want {
			t.Errorf("hloShapeBytes(%q) = %d, want %d", shape, got, want)
		}
	}
}
