package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// The paper leaves its parameter analysis undefined; these thresholds fix our definitions
// (docs/SHAKESPEARE.md, "Parameter analysis"). Do not change them between runs to compare.
const (
	// mlpInactive: an MLP hidden unit's output (after GELU) is inactive when |a| < mlpInactive.
	mlpInactive = 0.01
	// attnInactive: an attention weight p(q,k), k <= q, is inactive when p < attnInactive/(q+1),
	// a tenth of the uniform weight over the q+1 visible positions.
	attnInactive = 0.1
	// activeFraction: a weight w of matrix W is effectively active when |w| >= activeFraction*RMS(W).
	activeFraction = 0.1
)

func cmdAnalyze(args []string) error {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	out := fs.String("out", "results/shakespeare/cpu-run5-seed1337", "run directory holding the checkpoint")
	dataPath := fs.String("data", data.DefaultPath(), "the text the run trained on (validation batches for activation sparsity)")
	batches := fs.Int("batches", 10, "validation batches for activation sparsity")
	device := fs.String("device", "", backend.DeviceUsage)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fs, args, ""); err != nil {
		return err
	}
	if err := study.CheckAnalyzeBatches("-batches", *batches); err != nil {
		return err
	}
	// The analysis's files go in the run directory: each must be writable before the analysis.
	for _, name := range []string{analysisFile, spectralPlotFile} {
		if err := cli.CheckWritable("-out", filepath.Join(*out, name)); err != nil {
			return err
		}
	}
	corpus, b, err := openRunDirs(*dataPath, *device, *out)
	if err != nil {
		return err
	}
	return analyzeRunDir(b, corpus, *out, *batches)
}

// The files analyzeRunDir writes in a run directory.
const (
	analysisFile     = "analysis.json"
	spectralPlotFile = "spectral_norms.png"
)

// analyzeRunDir analyses the newest checkpoint of the run in dir and writes analysis.json and
// its plot there.
func analyzeRunDir(b backends.Backend, corpus *data.Corpus, dir string, batches int) error {
	ctx, cfg, err := loadRun(dir, corpus)
	if err != nil {
		return err
	}
	a, err := analyze(b, ctx, cfg, corpus, batches)
	if err != nil {
		return err
	}
	// The plot first: the study takes a run with analysis.json as analysed.
	path, plotPath := filepath.Join(dir, analysisFile), filepath.Join(dir, spectralPlotFile)
	if err := results.PlotSpectralNorms(plotPath, a); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	if err := results.WriteJSON(path, a); err != nil {
		return err
	}
	printAnalysis(a)
	fmt.Printf("Analysis: %s\nPlot:     %s\n", path, plotPath)
	return nil
}

func analyze(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, batches int) (*results.Analysis, error) {
	a := &results.Analysis{Preset: context.GetParamOr(ctx, "preset", ""), Run: context.GetParamOr(ctx, "run", 0),
		Seed: context.GetParamOr(ctx, "seed", int64(0)), SpectralNormVarianceByKind: map[string]float64{},
		ActivationBatches: batches}
	var magnitudes []float64
	var active int
	for v := range ctx.IterVariables() {
		if !strings.HasPrefix(v.Scope(), "/"+gpt.Scope+"/") || v.Shape().Rank() != 2 {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return nil, err
		}
		flat := tensors.MustCopyFlatData[float32](t)
		dims := v.Shape().Dimensions
		m := mat.NewDense(dims[0], dims[1], nil)
		sumSq := 0.0
		for i, w := range flat {
			m.Set(i/dims[1], i%dims[1], float64(w))
			sumSq += float64(w) * float64(w)
		}
		rms := math.Sqrt(sumSq / float64(len(flat)))
		for _, w := range flat {
			magnitudes = append(magnitudes, math.Abs(float64(w)))
			if math.Abs(float64(w)) >= activeFraction*rms {
				active++
			}
		}
		var svd mat.SVD
		if !svd.Factorize(m, mat.SVDNone) {
			return nil, fmt.Errorf("SVD of %s failed", v.ScopeAndName())
		}
		s := svd.Values(nil)
		r := results.MatrixReport{Name: v.ScopeAndName(), Layer: -1, Rows: dims[0], Cols: dims[1],
			SpectralNorm: s[0], Condition: s[0] / s[len(s)-1]}
		parts := strings.Split(strings.TrimPrefix(v.Scope(), "/"+gpt.Scope+"/"), "/")
		if _, err := fmt.Sscanf(parts[0], "h%d", &r.Layer); err == nil && len(parts) >= 3 {
			r.Kind = parts[1] + "." + parts[2]
		} else {
			r.Kind, r.Layer = parts[0], -1
		}
		a.Matrices = append(a.Matrices, r)
	}
	sort.Slice(a.Matrices, func(i, j int) bool {
		if a.Matrices[i].Layer != a.Matrices[j].Layer {
			return a.Matrices[i].Layer < a.Matrices[j].Layer
		}
		return a.Matrices[i].Kind < a.Matrices[j].Kind
	})
	var conds []float64
	for _, kind := range results.BlockKinds {
		var norms []float64
		for _, r := range a.Matrices {
			if r.Kind == kind {
				norms = append(norms, r.SpectralNorm)
				conds = append(conds, r.Condition)
			}
		}
		if len(norms) != cfg.NLayer {
			return nil, fmt.Errorf("found %d %s matrices, want %d (one per layer)", len(norms), kind, cfg.NLayer)
		}
		_, variance := stat.PopMeanVariance(norms, nil)
		a.SpectralNormVarianceByKind[kind] = variance
		a.SpectralNormVarianceAcrossLayers += variance / float64(len(results.BlockKinds))
	}
	a.ConditionNumberGeoMean = stat.GeometricMean(conds, nil)
	_, a.ParamMagnitudeVariance = stat.PopMeanVariance(magnitudes, nil)
	a.ActiveFraction = float64(active) / float64(len(magnitudes))
	if err := activationSparsity(b, ctx, cfg, corpus, batches, a); err != nil {
		return nil, err
	}
	a.Iter = gomlxopt.GetGlobalStep(ctx)
	return a, nil
}

// activationSparsity measures, in the graph, the per-layer fractions of inactive MLP
// activations and attention weights over validation batches (dropout off).
func activationSparsity(b backends.Backend, ctx *context.Context, cfg gpt.Config, corpus *data.Corpus, batches int, a *results.Analysis) error {
	exec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, x *Node) []*Node {
		probe := &gpt.Probe{}
		gpt.Forward(ctx, cfg, x, probe)
		T := cfg.BlockSize
		// Rows q of the causal mask see q+1 positions; the threshold is a tenth of 1/(q+1).
		q := ConvertDType(Iota(x.Graph(), shapes.Make(dtypes.Float32, T, T), 0), dtypes.Float32)
		threshold := ExpandLeftToRank(DivScalar(Inverse(OnePlus(q)), 1/attnInactive), 4)
		causal := ExpandLeftToRank(LowerTriangular(x.Graph(), T), 4)
		var out []*Node
		for l := range cfg.NLayer {
			h := probe.MLP[l]
			out = append(out, ReduceAllMean(ConvertDType(LessThan(Abs(h), Scalar(h.Graph(), h.DType(), mlpInactive)), dtypes.Float32)))
			p := probe.Attention[l]
			inactive := LogicalAnd(LessThan(p, BroadcastToShape(threshold, p.Shape())), BroadcastToShape(causal, p.Shape()))
			nCausal := float64(p.Shape().Size()) * float64(T+1) / float64(2*T)
			out = append(out, DivScalar(ReduceAllSum(ConvertDType(inactive, dtypes.Float32)), nCausal))
		}
		return out
	})
	a.MLPSparsityByLayer = make([]float64, cfg.NLayer)
	a.AttentionSparsityByLayer = make([]float64, cfg.NLayer)
	rng := data.RNG(context.GetParamOr(ctx, "seed", int64(0)), data.StreamEval-1)
	shown := cli.NewProgress(os.Stderr, "activations", batches, "batches")
	defer shown.Finish()
	for range batches {
		x, _ := data.Batch(corpus.Val, rng, cfg.BatchSize, cfg.BlockSize)
		outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, cfg.BatchSize, cfg.BlockSize))
		if err != nil {
			return err
		}
		for l := range cfg.NLayer {
			a.MLPSparsityByLayer[l] += float64(tensors.ToScalar[float32](outs[2*l])) / float64(batches)
			a.AttentionSparsityByLayer[l] += float64(tensors.ToScalar[float32](outs[2*l+1])) / float64(batches)
		}
		shown.Add(1)
	}
	a.MLPSparsity = stat.Mean(a.MLPSparsityByLayer, nil)
	a.AttentionSparsity = stat.Mean(a.AttentionSparsityByLayer, nil)
	return nil
}

func printAnalysis(a *results.Analysis) {
	fmt.Printf("%-22s %5s %14s %16s\n", "matrix", "layer", "spectral norm", "condition number")
	for _, r := range a.Matrices {
		fmt.Printf("%-22s %5d %14.4f %16.2f\n", r.Kind, r.Layer, r.SpectralNorm, r.Condition)
	}
	fmt.Printf("spectral-norm variance across layers (mean over kinds): %.5g\n", a.SpectralNormVarianceAcrossLayers)
	fmt.Printf("condition number, geometric mean (block matrices):     %.4g\n", a.ConditionNumberGeoMean)
	fmt.Printf("variance of parameter magnitudes:                      %.5g\n", a.ParamMagnitudeVariance)
	fmt.Printf("effectively active parameters:                         %.4f\n", a.ActiveFraction)
	fmt.Printf("activation sparsity: MLP %.4f, attention %.4f (%d validation batches)\n",
		a.MLPSparsity, a.AttentionSparsity, a.ActivationBatches)
}
