// Command smidevice says which device the project's programs would run on here, and with -check
// runs a small computation there: what to try first on a new machine.
//
//	go run ./internal/backend/cmd/smidevice                # the CUDA discovery report, nothing loaded
//	go run ./internal/backend/cmd/smidevice -device cuda -check
//
// The report names the GPU (nvidia-smi's CUDA version), python3's site-packages, the CUDA PJRT
// plugin that -device cuda would load, XLA's CUDA data dir and how many NVIDIA libraries would be
// preloaded. -check creates the backend as the trainer does (one line on stderr for a CUDA plugin),
// prints its platform and description, and checks a 2-D FFT and a matrix product against values
// computed here; it exits with status 1 when they differ, 2 when the backend cannot be created.
// An unknown -device is refused (status 2) with or without -check.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/cmplx"
	"os"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/smi-gomlx/smi/internal/backend"
)

func main() {
	device := flag.String("device", "", backend.DeviceUsage)
	check := flag.Bool("check", false, "create the backend and run a 2-D FFT and a matrix product on it")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "error: unexpected arguments %q (smidevice takes only flags; see -help)\n", flag.Args())
		os.Exit(2)
	}
	// A mistyped -device is refused with or without -check, before the report.
	if err := backend.SetDevice(*device); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	fmt.Print(backend.CUDAReport())
	if !*check {
		return
	}
	b := backend.ForMain()
	fmt.Printf("backend: %s\nplatform: %s, %d device(s)\n", b.Description(), backend.Platform(), b.NumDevices())

	// x is 4x8 with x[i][j] = i - j/2; its FFT is computed here in float64.
	const n, d = 4, 8
	x := make([][]float32, n)
	for i := range x {
		x[i] = make([]float32, d)
		for j := range x[i] {
			x[i][j] = float32(i) - float32(j)/2
		}
	}
	outs := MustExecOnceN(b, func(x *Node) []*Node {
		return []*Node{FFT(ConvertDType(x, dtypes.Complex64), n, d), MatMul(x, Transpose(x, 0, 1))}
	}, x)
	got, prod := outs[0].Value().([][]complex64), outs[1].Value().([][]float32)
	maxErr, maxF := 0.0, 0.0
	for u := range n {
		for v := range d {
			var want complex128
			for i := range n {
				for j := range d {
					angle := -2 * math.Pi * (float64(u*i)/n + float64(v*j)/d)
					want += complex(float64(x[i][j]), 0) * cmplx.Exp(complex(0, angle))
				}
			}
			maxF = math.Max(maxF, cmplx.Abs(want))
			maxErr = math.Max(maxErr, cmplx.Abs(complex128(got[u][v])-want))
		}
	}
	prodErr := 0.0
	for i := range n {
		for k := range n {
			want := 0.0
			for j := range d {
				want += float64(x[i][j]) * float64(x[k][j])
			}
			prodErr = math.Max(prodErr, math.Abs(float64(prod[i][k])-want)/math.Max(1, math.Abs(want)))
		}
	}
	fmt.Printf("FFT2 4x8: max error / max |F| = %.2e; x xᵀ: max relative error = %.2e\n", maxErr/maxF, prodErr)
	if maxErr > 1e-5*maxF || prodErr > 1e-3 {
		fmt.Println("FAIL: the results differ from the reference")
		os.Exit(1)
	}
	fmt.Println("ok")
}
