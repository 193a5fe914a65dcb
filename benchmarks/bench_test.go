package benchmarks

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
)

// The Go benchmarks time the cases of cmd/smibench, one b.N loop each, for benchstat. By default
// the sizes are small, so `go test -bench . -benchtime 1x ./benchmarks/...` checks them in a minute
// or two on a CPU; SMI_BENCH_LARGE=1 times the sizes of the report (the cpu preset, GPT-2's
// matrices). The training steps' benchmark (BenchmarkStep) is smibench's, in its package gptbench:
//
//	SMI_BENCH_LARGE=1 go test -run '^$' -bench . -count 10 ./benchmarks/... > new.txt && benchstat old.txt new.txt

// large reports whether SMI_BENCH_LARGE=1 asks for the report's sizes.
func large() bool { return os.Getenv("SMI_BENCH_LARGE") == "1" }

func benchCase(b *testing.B, c Case) {
	b.Helper()
	if err := c.Run(); err != nil { // Compiles outside the timed loop.
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := c.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBandwidth reports the memory-bound probes in bytes per second.
func BenchmarkBandwidth(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	elems := 1 << 20
	if large() {
		elems = 1 << 24
	}
	cases, ops, cleanup, err := BandwidthCases(be, elems)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	for i, c := range cases {
		b.Run("op="+benchName(ops[i].Name), func(b *testing.B) {
			b.SetBytes(int64(ops[i].BytesPerElem) * int64(elems))
			benchCase(b, c)
		})
	}
}

// BenchmarkFilter reports the whole filter (steps 1-8) per gradient shape; bytes are the
// least traffic (read g, H; write g', H').
func BenchmarkFilter(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	shapesIn := [][]int{{64, 64}, {128, 512}}
	if large() {
		shapesIn = [][]int{{256, 256}, {384, 1536}, {1024, 1024}, {768, 3072}, {2048, 2048}}
	}
	for _, dims := range shapesIn {
		for _, half := range []bool{false, true} {
			spec := FilterSpec{Dims: dims, Half: half}
			b.Run(fmt.Sprintf("shape=%s/half=%v", dimsLabel(dims), half), func(b *testing.B) {
				cases, cleanup, err := FilterCases(be, spec)
				if err != nil {
					b.Fatal(err)
				}
				defer cleanup()
				b.SetBytes(16 * int64(spec.Bins()))
				benchCase(b, cases[0])
			})
		}
	}
}

// BenchmarkFilterParts times each part at one size, to compare implementations of a part.
func BenchmarkFilterParts(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	spec := FilterSpec{Dims: []int{128, 128}, Parts: true}
	if large() {
		spec.Dims = []int{1024, 1024}
	}
	cases, cleanup, err := FilterCases(be, spec)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	for _, c := range cases {
		b.Run("part="+benchName(c.Name), func(b *testing.B) { benchCase(b, c) })
	}
}

// dimsLabel is "768x3072".
func dimsLabel(d []int) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, "x")
}

// benchName makes a sub-benchmark name without spaces, which benchstat would split on.
func benchName(s string) string {
	out := []rune{}
	for _, r := range s {
		switch r {
		case ' ', ':', '(', ')', '+', ',', '.':
			if len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
		default:
			out = append(out, r)
		}
	}
	for len(out) > 0 && out[len(out)-1] == '-' {
		out = out[:len(out)-1]
	}
	return string(out)
}
