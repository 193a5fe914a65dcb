package gptbench

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// BenchmarkStep times a training step of the GPT's tiny preset (with SMI_BENCH_LARGE=1 also the
// cpu preset, and SGD with momentum and Lion) under each optimizer configuration, built as
// smibench builds them (NewTrainer), one b.N loop each, for benchstat:
//
//	SMI_BENCH_LARGE=1 go test -run '^$' -bench Step -count 10 ./benchmarks/... > new.txt && benchstat old.txt new.txt
func BenchmarkStep(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Skip(err)
	}
	presets := []string{"tiny"}
	configs := []string{OptAdamW, OptSMIAdamW, OptSMIAdamWH}
	if os.Getenv("SMI_BENCH_LARGE") == "1" {
		presets = append(presets, "cpu")
		configs = append(configs, OptSGDM, OptSMISGDM, OptLion, OptSMILion)
	}
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range configs {
			b.Run(fmt.Sprintf("preset=%s/opt=%s", preset, benchName(name)), func(b *testing.B) {
				t, err := NewTrainer(be, cfg, name, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer t.Finalize()
				if err := t.Run(); err != nil { // compiles outside the timed loop
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					if err := t.Run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchName makes a sub-benchmark name without the characters benchstat would split on.
func benchName(s string) string {
	return strings.NewReplacer(" ", "-", "(", "-", ")", "").Replace(s)
}
