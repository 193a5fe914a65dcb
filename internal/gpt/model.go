package gpt

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
)

// Scope holds all the model's variables; the optimizer's state lives elsewhere.
const Scope = "gpt"

// Probe, when passed to Forward, collects intermediate activations for analysis.
type Probe struct {
	MLP       []*Node // per block, the MLP hidden activations after GELU: [B, T, 4C]
	Attention []*Node // per block, the attention weights: [B, H, T, T] (zero above the diagonal)
}

// Logits returns next-token logits [B, T, vocab] for tokens [B, T] (int32, T <= BlockSize).
func Logits(ctx *context.Context, cfg Config, tokens *Node) *Node {
	return Forward(ctx, cfg, tokens, nil)
}

// Forward is Logits that optionally records activations into probe.
func Forward(ctx *context.Context, cfg Config, tokens *Node, probe *Probe) *Node {
	g := tokens.Graph()
	T := tokens.Shape().Dimensions[1]
	if T > cfg.BlockSize {
		panic(fmt.Errorf("gpt.Forward: sequence length %d exceeds block_size %d", T, cfg.BlockSize))
	}
	ctx = ctx.In(Scope).WithInitializer(initializers.RandomNormalFn(ctx, 0.02))
	C := cfg.NEmbd

	wte := ctx.In("wte").VariableWithShape("weights", shapes.Make(dtypes.Float32, cfg.VocabSize, C)).ValueGraph(g)
	wpe := ctx.In("wpe").VariableWithShape("weights", shapes.Make(dtypes.Float32, cfg.BlockSize, C)).ValueGraph(g)
	x := Gather(wte, InsertAxes(tokens, -1)) // [B, T, C]
	pos := Slice(wpe, AxisRange(0, T))       // [T, C]
	x = dropout(ctx, cfg, Add(x, InsertAxes(pos, 0)))
	for l := range cfg.NLayer {
		x = block(ctx.In(fmt.Sprintf("h%d", l)), cfg, x, probe)
	}
	x = layerNorm(ctx.In("ln_f"), x)
	return matmul(x, Transpose(wte, 0, 1)) // head tied to the token embedding
}

// block is a pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).
func block(ctx *context.Context, cfg Config, x *Node, probe *Probe) *Node {
	x = Add(x, attention(ctx.In("attn"), cfg, layerNorm(ctx.In("ln_1"), x), probe))
	return Add(x, mlp(ctx.In("mlp"), cfg, layerNorm(ctx.In("ln_2"), x), probe))
}

func attention(ctx *context.Context, cfg Config, x *Node, probe *Probe) *Node {
	dims := x.Shape().Dimensions
	B, T, C := dims[0], dims[1], dims[2]
	H, D := cfg.NHead, C/cfg.NHead
	qkv := linear(ctx.In("c_attn"), x, 3*C, 0.02)
	heads := func(i int) *Node { // [B, H, T, D]
		part := Slice(qkv, AxisRange(), AxisRange(), AxisRange(i*C, (i+1)*C))
		return TransposeAllDims(Reshape(part, B, T, H, D), 0, 2, 1, 3)
	}
	q, k, v := heads(0), heads(1), heads(2)
	scores := MulScalar(Einsum("bhqd,bhkd->bhqk", q, k), 1/math.Sqrt(float64(D)))
	causal := BroadcastToDims(ExpandLeftToRank(LowerTriangular(x.Graph(), T), 4), B, H, T, T)
	weights := MaskedSoftmax(scores, causal, -1)
	if probe != nil {
		probe.Attention = append(probe.Attention, weights)
	}
	weights = dropout(ctx, cfg, weights)
	y := Einsum("bhqk,bhkd->bhqd", weights, v)
	y = Reshape(TransposeAllDims(y, 0, 2, 1, 3), B, T, C)
	return dropout(ctx, cfg, linear(ctx.In("c_proj"), y, C, residualStd(cfg)))
}

func mlp(ctx *context.Context, cfg Config, x *Node, probe *Probe) *Node {
	C := x.Shape().Dimensions[2]
	h := activations.Gelu(linear(ctx.In("c_fc"), x, 4*C, 0.02)) // exact GELU, as torch.nn.GELU()
	if probe != nil {
		probe.MLP = append(probe.MLP, h)
	}
	return dropout(ctx, cfg, linear(ctx.In("c_proj"), h, C, residualStd(cfg)))
}

// residualStd is nanoGPT's (GPT-2's) scaled initialisation of projections into the residual stream.
func residualStd(cfg Config) float64 { return 0.02 / math.Sqrt(2*float64(cfg.NLayer)) }

// linear is a bias-free dense layer whose weights are [in, out].
func linear(ctx *context.Context, x *Node, out int, std float64) *Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	w := ctx.WithInitializer(initializers.RandomNormalFn(ctx, std)).
		VariableWithShape("weights", shapes.Make(x.DType(), in, out)).ValueGraph(x.Graph())
	return matmul(x, w)
}

// matmul multiplies [..., in] by [in, out] as one 2-D product, the fastest form on XLA CPU.
func matmul(x, w *Node) *Node {
	dims := x.Shape().Dimensions
	in, out := w.Shape().Dimensions[0], w.Shape().Dimensions[1]
	y := Dot(Reshape(x, -1, in), w)
	return Reshape(y, append(dims[:len(dims)-1:len(dims)-1], out)...)
}

// layerNorm normalises the last axis (eps 1e-5, as PyTorch) and scales by a gain; no bias.
func layerNorm(ctx *context.Context, x *Node) *Node {
	C := x.Shape().Dimensions[x.Rank()-1]
	gain := ctx.WithInitializer(initializers.One).
		VariableWithShape("gain", shapes.Make(x.DType(), C)).ValueGraph(x.Graph())
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centered := Sub(x, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
	return Mul(Div(centered, Sqrt(AddScalar(variance, 1e-5))), ExpandLeftToRank(gain, x.Rank()))
}

func dropout(ctx *context.Context, cfg Config, x *Node) *Node {
	return layers.DropoutStatic(ctx, x, cfg.Dropout)
}

// Loss is the mean cross-entropy of logits [B, T, V] against targets [B, T].
func Loss(logits, targets *Node) *Node {
	V := logits.Shape().Dimensions[2]
	logProbs := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logProbs, OneHot(targets, V, logProbs.DType())), -1)
	return Neg(ReduceAllMean(picked))
}
