package backend

import (
	"os"
	"strings"
)

// PinArithmetic makes the backend that New creates in this process compute as the tests
// assume, on every platform: it must be called before New (from a test's TestMain). On the CPU
// it changes nothing the tests see; on a GPU it turns off two liberties XLA and NVIDIA's libraries
// take by default:
//   - excess precision (--xla_allow_excess_precision=false): XLA GPU may drop a float32 ->
//     bfloat16 -> float32 round trip and keep the float32 value, so a bfloat16 result would not
//     be the bfloat16 the graph asks for;
//   - TensorFloat-32 products: float32 matrix products with 10-bit mantissas, about 1e-3 relative
//     error instead of float32's 1e-7. NVIDIA_TF32_OVERRIDE=0 turns them off in cuBLAS and cuDNN,
//     --xla_gpu_enable_triton_gemm=false keeps XLA from emitting its own (Triton) products, which
//     use TF32 at XLA's default precision: on an H200 the GPT's 16 steps then match PyTorch within
//     the float32 tolerances, and with only the first they did not (relative L2 error 3.8e-3).
//
// Flags the user put in XLA_FLAGS are kept, and one they set explicitly wins.
func PinArithmetic() {
	appendXLAFlag("--xla_allow_excess_precision", "false")
	appendXLAFlag("--xla_gpu_enable_triton_gemm", "false")
	if _, set := os.LookupEnv("NVIDIA_TF32_OVERRIDE"); !set {
		_ = os.Setenv("NVIDIA_TF32_OVERRIDE", "0")
	}
}

// appendXLAFlag adds name=value (name is "--xla_...") to XLA_FLAGS unless the variable already
// sets that flag (hasXLAFlag: with one dash or two, with a value or without), and reports whether
// it added it.
func appendXLAFlag(name, value string) bool {
	flags := os.Getenv(XLAFlagsEnv)
	if hasXLAFlag(flags, xlaFlagName(name)) {
		return false
	}
	_ = os.Setenv(XLAFlagsEnv, strings.TrimSpace(flags+" "+name+"="+value))
	return true
}
