// Package benchmarks times SMI on XLA, on your shapes and your model: the spectral filter alone
// on given gradient shapes (FilterCases, MeasureFilter, ModelFilterCase), and a training step of a
// model with a base optimizer against the same step with optimizers.SMI around it (CompareSMI,
// MeasureSteps), with the filter's ways of computing (Strategies).
//
// Every timing is interleaved (Interleave): after warm-up, which includes XLA's compilation, each
// round times every case once, in an order that changes from round to round (RoundOrder: every
// case follows every other equally often), so load from other processes falls on all cases alike
// and no case inherits its neighbour's effect; PairedRatio and PairedDiff then compare two cases
// round by round, with an approximately 95% distribution-free interval of the median.
//
// SMI's step against AdamW's on a model of your own:
//
//	dotgrad.Enable() // GoMLX v0.26's own matrix-product gradients are many times slower
//	b := backends.MustNew()
//	model := benchmarks.Model{
//		Fn: func(ctx *context.Context, _ any, in []*graph.Node) []*graph.Node {
//			return []*graph.Node{layers.Dense(ctx.In("out"), layers.Dense(ctx.In("hidden"), in[0], true, 512), true, 10)}
//		},
//		Loss:   losses.MeanSquaredError,
//		Inputs: []*tensors.Tensor{x}, Labels: []*tensors.Tensor{y}, // one batch of your shapes
//	}
//	adamw := gomlxopt.Adam().WeightDecay(0.1).Done()
//	cmp, err := benchmarks.CompareSMI(b, model, adamw, nil, benchmarks.StepOptions(30*time.Second))
//	fmt.Println(cmp.Ratio) // e.g. 1.031x [1.012, 1.050]: SMI's step over AdamW's, with its interval
//
// The filter alone on a gradient shape, split into its parts:
//
//	res, err := benchmarks.MeasureFilter(b, []benchmarks.FilterSpec{{Dims: []int{768, 3072}, Parts: true}},
//		benchmarks.Options{Warmup: 2, Rounds: 9, MinSample: 20 * time.Millisecond}, nil)
//	whole, _ := res[0].Time(benchmarks.PartWhole)
//	fmt.Println(whole.Median())
//
// The Go benchmarks of this package time the same cases for benchstat, at small sizes unless
// SMI_BENCH_LARGE=1:
//
//	go test -run '^$' -bench . -count 10 ./benchmarks > new.txt && benchstat old.txt new.txt
//
// The command benchmarks/cmd/smibench measures the project's GPT presets with this package and
// writes docs/BENCHMARKS.md (make bench).
package benchmarks
