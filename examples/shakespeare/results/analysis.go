package results

// Analysis is a checkpoint's parameter and activation analysis (analysis.json).
type Analysis struct {
	Preset   string         `json:"preset"`
	Run      int            `json:"run"`
	Seed     int64          `json:"seed"`
	Iter     int64          `json:"iter"` // training iterations in the checkpoint
	Matrices []MatrixReport `json:"matrices"`

	// Summaries over the 4*n_layer block matrices (attention qkv and output, MLP in and out).
	SpectralNormVarianceAcrossLayers float64            `json:"spectral_norm_variance_across_layers"` // mean over the 4 kinds of the variance over layers
	SpectralNormVarianceByKind       map[string]float64 `json:"spectral_norm_variance_by_kind"`
	ConditionNumberGeoMean           float64            `json:"condition_number_geomean"` // geometric mean: one near-singular matrix would dominate an arithmetic mean
	ParamMagnitudeVariance           float64            `json:"param_magnitude_variance"` // variance of |w| over all weight-matrix entries
	ActiveFraction                   float64            `json:"active_fraction"`          // fraction of weight-matrix entries with |w| >= 0.1*RMS(W)
	MLPSparsity                      float64            `json:"mlp_sparsity"`             // fraction of MLP activations with |a| < 0.01
	AttentionSparsity                float64            `json:"attention_sparsity"`       // fraction of causal attention weights below a tenth of uniform
	MLPSparsityByLayer               []float64          `json:"mlp_sparsity_by_layer"`
	AttentionSparsityByLayer         []float64          `json:"attention_sparsity_by_layer"`
	ActivationBatches                int                `json:"activation_batches"`
}

// MatrixReport holds one weight matrix's singular-value figures.
type MatrixReport struct {
	Name         string  `json:"name"`
	Kind         string  `json:"kind"`  // attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, wte, wpe
	Layer        int     `json:"layer"` // -1 for embeddings
	Rows, Cols   int     `json:"-"`
	SpectralNorm float64 `json:"spectral_norm"`
	Condition    float64 `json:"condition_number"` // largest over smallest singular value
}

// BlockKinds are the kinds of a transformer block's weight matrices, as MatrixReport.Kind
// names them.
var BlockKinds = []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}
