package benchmarks

import (
	"fmt"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// The Go benchmarks time the same cases as cmd/smibench, one b.N loop each, for benchstat:
//
//	go test -run '^$' -bench . -count 10 ./internal/benchmarks > new.txt && benchstat old.txt new.txt

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

func BenchmarkBandwidth(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	const elems = 1 << 24
	cases, ops, cleanup, err := BandwidthCases(be, elems)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	for i, c := range cases {
		b.Run("op="+benchName(ops[i].Name), func(b *testing.B) {
			b.SetBytes(int64(ops[i].BytesPerElem) * elems)
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
	for _, dims := range [][]int{{256, 256}, {384, 1536}, {1024, 1024}, {768, 3072}, {2048, 2048}} {
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
	spec := FilterSpec{Dims: []int{1024, 1024}, Parts: true}
	cases, cleanup, err := FilterCases(be, spec)
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	for _, c := range cases {
		b.Run("part="+benchName(c.Name), func(b *testing.B) { benchCase(b, c) })
	}
}

// BenchmarkStep times a training step of the small presets for each optimizer configuration.
func BenchmarkStep(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	for _, preset := range []string{"tiny", "cpu"} {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			b.Fatal(err)
		}
		for _, opt := range []string{OptAdamW, OptSMIAdamW, OptSMIAdamWH, OptSGDM, OptSMISGDM, OptLion, OptSMILion} {
			b.Run(fmt.Sprintf("preset=%s/opt=%s", preset, benchName(opt)), func(b *testing.B) {
				t, err := NewTrainer(be, cfg, opt, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer t.Finalize()
				benchCase(b, Case{Name: opt, Run: t.Step})
			})
		}
	}
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
