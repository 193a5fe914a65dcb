package report

import (
	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
)

// writeDevices renders the data-parallel step times.
func (r *Report) writeDevices(p printer) {
	p("Training step of one configuration with the batch split over several devices (data-parallel, " +
		"GoMLX's AutoSharding over a 1-D mesh, as `examples/shakespeare train -devices N`); the global " +
		"batch is the preset's for every count, so the work per step is the same. ")
	p("On XLA CPU the devices are the plugin's host devices, which share this machine's %d logical CPUs: "+
		"more devices cannot add compute here, so the ratio measures what partitioning and the "+
		"all-reduce cost, not a speed-up. On several GPUs the same command measures the scaling. On XLA CPU the section "+
		"runs in a child process whose plugin has a larger thread pool (PJRT_NPROC, see "+
		"internal/backend.PrepareDevices), without which 4 devices hang on 2 CPUs.\n\n", r.Env.NumCPU)
	for _, d := range r.Devices {
		p("`%s` preset, %s, batch %d x %d tokens:\n\n", d.Preset, d.Opt, d.Config.BatchSize, d.Config.BlockSize)
		p("| devices | step (median) | spread (IQR/median) | / 1 device (paired) |\n|---|---|---|---|\n")
		var one benchmarks.Result
		for i, res := range d.Results {
			ratio := "1"
			if d.Counts[i] == 1 {
				one = res
			} else if len(one.Samples) > 0 {
				ratio = benchmarks.PairedRatio(one, res).String()
			} else {
				ratio = "n/a"
			}
			p("| %d | %s | %.0f%% | %s |\n", d.Counts[i], gptbench.HumanDuration(res.Median()), 100*res.Spread(), ratio)
		}
		p("\n")
	}
}
