package gpt_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"

	"github.com/smi-gomlx/smi/dotgrad"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
)

// referenceFixture is written by scripts/reference/nanogpt_reference.py: nanoGPT's model and
// training step run by PyTorch from known weights on known batches.
type referenceFixture struct {
	Torch  string `json:"torch"`
	Config struct {
		NLayer       int     `json:"n_layer"`
		NHead        int     `json:"n_head"`
		NEmbd        int     `json:"n_embd"`
		BlockSize    int     `json:"block_size"`
		BatchSize    int     `json:"batch_size"`
		LearningRate float64 `json:"learning_rate"`
		MinLR        float64 `json:"min_lr"`
		WarmupIters  int     `json:"warmup_iters"`
		LRDecayIters int     `json:"lr_decay_iters"`
		WeightDecay  float64 `json:"weight_decay"`
		Beta1        float64 `json:"beta1"`
		Beta2        float64 `json:"beta2"`
		GradClip     float64 `json:"grad_clip"`
		VocabSize    int     `json:"vocab_size"`
	} `json:"config"`
	Initial map[string]fixtureTensor `json:"initial"`
	Final   map[string]fixtureTensor `json:"final"`
	Steps   []struct {
		LR              float64            `json:"lr"`
		Loss            float64            `json:"loss"`
		GradNorm        float64            `json:"grad_norm"`
		TensorGradNorms map[string]float64 `json:"tensor_grad_norms"`
		X               []int32            `json:"x"`
		Y               []int32            `json:"y"`
	} `json:"steps"`
}

type fixtureTensor struct {
	Shape []int  `json:"shape"`
	Data  string `json:"data"` // little-endian float32, base64
}

func (f fixtureTensor) values(t *testing.T) []float32 {
	raw, err := base64.StdEncoding.DecodeString(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// Tolerances of the comparison with PyTorch (float32 on both sides; the two differ only in the
// order of floating-point operations). Measured worst cases when the fixture was written: loss
// 5e-7 per step except 3.3e-6 at step 14, a gradient spike (norm 21.5 against about 1) that
// amplifies rounding in every tensor alike; gradient norms 1e-6 relative except 1.1e-4 at that
// step; weights 3.2e-6 relative (L2, per tensor). Mutations the test catches: LayerNorm eps 1e-6,
// Adam eps 1e-7, weight decay on the gains too, no clipping, tanh-approximated GELU, warm-up
// from 0.
const (
	refLossTol   = 2e-5 // absolute, per step
	refNormTol   = 5e-4 // relative, per tensor and step
	refWeightTol = 2e-5 // relative L2 error per tensor after all steps
)

// TestMatchesPyTorch runs our model, AdamW, learning-rate schedule and global-norm clipping
// from the fixture's initial weights on its batches, and compares every step's loss and
// gradient norm, and the final weights, with nanoGPT's PyTorch code. Some of the steps clip.
// It runs with each of package dotgrad's forms of the dense layers' gradient products.
func TestMatchesPyTorch(t *testing.T) {
	defer func() { _ = dotgrad.SetForm(dotgrad.Folded) }()
	for _, form := range []dotgrad.Form{dotgrad.Folded, dotgrad.Materialized} {
		t.Run(form.String(), func(t *testing.T) {
			if err := dotgrad.SetForm(form); err != nil {
				t.Fatal(err)
			}
			matchesPyTorch(t)
		})
	}
}

func matchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/nanogpt_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx referenceFixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	c := fx.Config
	cfg := gpt.Config{VocabSize: c.VocabSize, BlockSize: c.BlockSize, NLayer: c.NLayer, NHead: c.NHead, NEmbd: c.NEmbd,
		BatchSize: c.BatchSize, MaxIters: len(fx.Steps), LearningRate: c.LearningRate, MinLR: c.MinLR,
		WarmupIters: c.WarmupIters, LRDecayIters: c.LRDecayIters, WeightDecay: c.WeightDecay,
		Beta1: c.Beta1, Beta2: c.Beta2, GradClip: c.GradClip, EvalInterval: 1, EvalIters: 1}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New().Checked(false)
	for scope, ft := range fx.Initial {
		ctx.InAbsPath(path.Dir(scope)).VariableWithValue(path.Base(scope),
			tensors.FromFlatDataAndDimensions(ft.values(t), ft.Shape...))
	}
	opt := smiopt.ClipByGlobalNorm(gpt.AdamW(cfg), cfg.GradClip)
	modelFn := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{gpt.Logits(ctx, cfg, inputs[0])}
	}
	lossFn := func(labels, predictions []*Node) *Node { return gpt.Loss(predictions[0], labels[0]) }
	dotgrad.Enable() // as the trainer does: the test checks the gradients it trains with
	trainer := train.NewTrainer(b, ctx, modelFn, lossFn, opt, nil, nil)
	// normExec returns the gradient norm of each trainable variable, named in names.
	var names []string
	normExec := context.MustNewExec(b, ctx.Reuse(), func(ctx *context.Context, x, y *Node) []*Node {
		loss := gpt.Loss(gpt.Logits(ctx, cfg, x), y)
		names = names[:0]
		for v := range ctx.IterVariables() { // BuildTrainableVariablesGradientsGraph's order
			if v.Trainable && v.InUseByGraph(x.Graph()) {
				names = append(names, v.Scope()+"/"+v.Name())
			}
		}
		var norms []*Node
		for _, g := range ctx.BuildTrainableVariablesGradientsGraph(loss) {
			norms = append(norms, Sqrt(ReduceAllSum(Square(g))))
		}
		return norms
	})

	for i, step := range fx.Steps {
		x := tensors.FromFlatDataAndDimensions(step.X, c.BatchSize, c.BlockSize)
		y := tensors.FromFlatDataAndDimensions(step.Y, c.BatchSize, c.BlockSize)
		if lr := cfg.LearningRateAt(i); math.Abs(lr-step.LR) > 1e-12 {
			t.Errorf("step %d: learning rate %g, PyTorch %g", i, lr, step.LR)
		}
		var sumSq float64
		for j, out := range normExec.MustExec(x, y) {
			norm := float64(tensors.ToScalar[float32](out))
			sumSq += norm * norm
			want, ok := step.TensorGradNorms[names[j]]
			if !ok {
				t.Fatalf("the fixture has no gradient norm for %s", names[j])
			}
			if d := math.Abs(norm-want) / want; d > refNormTol {
				t.Errorf("step %d: gradient norm of %s %.7g, PyTorch %.7g (relative difference %.2g > %g)", i, names[j], norm, want, d, refNormTol)
			}
		}
		if len(names) != len(step.TensorGradNorms) {
			t.Fatalf("%d trainable variables, the fixture has %d", len(names), len(step.TensorGradNorms))
		}
		gradNorm := math.Sqrt(sumSq)
		metrics, err := trainer.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
		if err != nil {
			t.Fatal(err)
		}
		loss := float64(tensors.ToScalar[float32](metrics[0]))
		if d := math.Abs(loss - step.Loss); d > refLossTol {
			t.Errorf("step %d: loss %.7f, PyTorch %.7f (difference %.2g > %g)", i, loss, step.Loss, d, refLossTol)
		}
		if d := math.Abs(gradNorm-step.GradNorm) / step.GradNorm; d > refNormTol {
			t.Errorf("step %d: gradient norm %.7f, PyTorch %.7f (relative difference %.2g > %g)", i, gradNorm, step.GradNorm, d, refNormTol)
		}
		t.Logf("step %2d: loss %.7f (PyTorch %.7f), gradient norm %.6f (PyTorch %.6f)", i, loss, step.Loss, gradNorm, step.GradNorm)
	}
	seen := 0
	for v := range ctx.IterVariables() {
		want, ok := fx.Final[v.Scope()+"/"+v.Name()]
		if !ok {
			continue
		}
		seen++
		got := tensors.MustCopyFlatData[float32](v.MustValue())
		ref := want.values(t)
		var num, den float64
		for i := range ref {
			d := float64(got[i]) - float64(ref[i])
			num += d * d
			den += float64(ref[i]) * float64(ref[i])
		}
		rel := math.Sqrt(num / den)
		if rel > refWeightTol {
			t.Errorf("%s/%s after %d steps: relative L2 difference from PyTorch %.2g > %g", v.Scope(), v.Name(), len(fx.Steps), rel, refWeightTol)
		}
		t.Logf("%s/%s: relative L2 difference %.2g", v.Scope(), v.Name(), rel)
	}
	if seen != len(fx.Final) {
		t.Fatalf("compared %d tensors, the fixture has %d", seen, len(fx.Final))
	}
}
