// Package spectral implements the frequency-domain filter of Spectral Momentum Integration
// (SMI; Huang, Chen and Zheng, 2025) as GoMLX graph functions, so that XLA compiles and fuses it
// into the training step. It knows nothing about training: package optimizers owns the state
// (one history per variable) and calls these functions. docs/ALGORITHM.md states the algorithm
// and where this project departs from the paper; this documentation states how it is computed.
//
// The blend schedule (Schedule, Alpha, Config.TotalSteps) lives here, not in optimizers, although
// it depends on the training step: it is step 8 of the algorithm, a pure function of the step
// that Config validates with the filter's other hyperparameters, and the host reference in the
// tests checks it with the rest. Package optimizers only supplies the step (GoMLX's global step)
// and stores nothing for it.
//
// Errors: functions panic while the graph is built (GoMLX's convention), with an error that names
// the function called ("spectral.FilterBatch: ..."); Config.Validate returns errors prefixed
// "spectral: ".
//
// # How it is computed
//
// docs/ALGORITHM.md states the algorithm (steps 1-9 there); Filter and Blend compute steps 1-8
// for one variable, with these conventions:
//
//   - Step 1: rank 1 gives a 1 x d view; scalars and empty tensors are not filtered (HistoryShape).
//   - Step 2: F is computed in complex64 (complex128 for float64 gradients) by a real FFT, as its
//     n x (d/2+1) bins; G is real, so F(-k) = conj(F(k)) (indices mod (n, d)) and the other
//     columns are their mirror images (half the FFT work).
//   - Step 3: |F| = m*sqrt(1 + (l/m)^2) with m, l the larger and smaller of |Re F| and |Im F|:
//     XLA's complex Abs squares the parts, which turns |F| of huge or tiny gradients (around 1e20
//     or 1e-20 in float32) into +Inf or 0.
//   - Step 4: A(-k) = A(k), so H(-k) = H(k) at every step: H is stored on the n x (d/2+1) bins
//     only (HistoryShape), which determine the full n x d history.
//   - Step 5: tau is the quantile of the full n x d history, exact (below), computed on the stored
//     bins with each counted as often as it appears in the full spectrum: once in column 0 and,
//     for even d, column d/2 (each holds both k and -k), twice in the others.
//   - Step 6: q = 0 keeps every bin and skips the quantile. M is evaluated on the stored bins and
//     stands for the same mask on their mirrors.
//   - Step 7: G~ is the inverse real FFT of the masked stored bins, reshaped back to S and cast to
//     g's dtype.
//   - Step 8: Blend, with alpha(t) from Alpha.
//
// Steps 2-7 are also exported one by one, on B stacked slices (Spectrum, Magnitude,
// UpdateHistory, Threshold, Mask, InverseMasked, KeptEnergy): FilterBatch is their composition,
// and the benchmarks time exactly them.
//
// Filter also returns keptEnergy = sum|F*M|^2 / sum|F|^2 over the full spectrum (1 when F = 0, NaN
// when the gradient holds a NaN or an Inf), computed from the very spectrum handed to the inverse
// FFT and summed in float64, as a diagnostic of how much of the gradient survives. M is the same at
// k and -k by construction, so F*M is conjugate-symmetric, IFFT2(F*M) is real, and G~ is computed
// exactly as the inverse real FFT of the masked stored bins: storing half the history changes no
// result. (Inside the columns 0 and d/2, a bin and its mirror are two stored entries; their
// histories are built from the same |F|, in the same operations, so they are equal and never split
// by tau.)
//
// FilterBatch does the same for B gradients of the same shape stacked along a leading axis, each
// slice with its own history, threshold and mask (the quantile's counts are kept per slice), so
// that a model's same-shape variables share one set of operations. It also returns each slice's
// ||g||^2, from the energy sum by Parseval's theorem, which is non-finite exactly when the
// slice's spectrum is: package optimizers uses it as both the telemetry weight and the NaN check.
//
// Schedules (docs/ALGORITHM.md, "Blend schedules"; steps are never negative): linear and cosine
// are evaluated as a lerp from a0 to a1 by u = s or u = (1 - cos(pi*s))/2, written as numpy's
// two-sided lerp, so alpha(0) = AlphaStart and alpha(t >= T) = AlphaEnd exactly in any precision.
//
// Dtypes (docs/ALGORITHM.md, "Compute dtype"): the results are cast back to the gradient's
// dtype. Complex and integer variables are not filtered (HistoryShape reports ok = false).
//
// # The exact quantile
//
// Quantile(x, q) has numpy.quantile's default semantics, which torch.quantile shares: with the
// N entries sorted, v[0] <= ... <= v[N-1], rank r = q*(N-1), k = floor(r), f = r-k, the result is
// the lerp of v[k] and v[k+1] by f. r is computed on the host in float64 (as numpy does), so k
// and f are constants of the graph. For float32 values the lerp's sum is formed in float64 and
// rounded once (d = v[k+1]-v[k] and the weight rounded to float32, their product exact): XLA may
// fuse a float32 product and sum into one multiply-add in one compiled program and not in
// another, so numpy's float32 steps would not give the same bits everywhere; this form does, on
// every backend and counting strategy. The result can differ from numpy's float32 arithmetic in
// the last bit. For float64 values it is numpy's arithmetic bit for bit, wherever no subnormal
// value is involved (XLA may flush those to zero): the product is rounded, then added, and
// Max(product, 0), the identity there (the product is never negative), stands between them so
// that XLA cannot fuse them into one multiply-add, which rounds once and, where product and sum
// nearly cancel, differs by several units in the last place. GoMLX v0.26 has no
// sort, so v[k] and v[k+1] are selected without sorting, exactly:
//
//   - Keys. Each float32 (float64) value is bitcast to a uint32 (uint64) key that orders like the
//     value: a non-negative value gets its sign bit set, a negative one has all its bits flipped.
//     Selection works on keys, which are integers, so it involves no rounding. -0 and +0 get
//     adjacent keys and the same value; infinities are ordinary values; if any entry is NaN the
//     result is NaN, as in numpy and torch. bfloat16 and float16 inputs are widened to float32,
//     which preserves order and values, and the result is cast back.
//
//   - N <= 1024: pairwise counting. One fused pass computes, for every entry, atMost_i =
//     #{j: key_j <= key_i} (N^2 integer comparisons; each j counted with its multiplicity in the
//     filter's case); v[r] is the smallest key_i with atMost_i >= r+1. This is the definition of
//     the r-th order statistic, so it is exact, and it is cheap to compile.
//
//   - N > 1024: radix select, most significant digit first, 11, 11 and 10 bits: 3 passes for
//     float32 (6 for float64). A pass builds the histogram (2048 or 1024 bins) of the next digit
//     over the keys that share the digits decided so far (a ScatterSum of ones, or of the
//     entries' multiplicities; other keys go to an extra bin that is dropped), takes the first bin at which the running count reaches the
//     rank still sought, and subtracts the counts of the lower bins from that rank. All counts are
//     integers and each pass fixes a digit of the exact key, so the result is exact. Cost per
//     element and pass: a shift, a compare and an integer scatter-add, O(N) per pass; the running
//     counts come from two small products with triangles of ones (CumSum, a reduce-window, would
//     cost bins^2 additions per pass). FilterBatch's slices share each pass's ScatterSum, each
//     slice counting into its own bins. The last pass also yields how many keys equal v[k]; if
//     they reach rank k+1, v[k+1] = v[k], otherwise one masked-min pass finds the smallest key
//     above v[k].
//
//   - N > 1024 on GPUs and TPUs (Counting, WithCounting): the same radix select with 4-bit digits
//     decided by counting instead of histograms. With lo the digits decided so far and s the next
//     digit's shift, one reduction counts c_p = #{keys < lo + p*2^s} for p = 1..15 (each key
//     counted with its multiplicity), and the digit is #{p: c_p <= k}: 8 passes for float32 (16
//     for float64), each a compare-and-sum over the keys with no scatter, which a GPU runs at
//     memory speed where a ScatterSum is contended atomics (most keys share their leading digits).
//     The rows of all variables filtered together (FilterGroups) share each pass: every row is
//     cut into chunks of 1024 keys, its last chunk padded with keys that never count, and the
//     chunks of all rows are stacked, so no row is padded to the length of another.
//     Both countings find the same keys; the tests check they agree bit for bit.
//
// Radix select needs 3 counting passes for float32 where a bisection on the keys would need 32,
// and measured faster both to compile and to run on XLA CPU. Compile and run times of Quantile on the GPT's largest shape are
// logged by
//
//	SMI_SPECTRAL_MEASURE=1 go test ./spectral -run TestQuantileTiming -v
//
// and docs/BENCHMARKS.md (make bench) times every step of the filter on the GPT's shapes.
//
// # The half-spectrum variant (an extension, not the paper's method)
//
// With halfSpectrum, the quantile counts each stored bin once instead of with its multiplicity
// in the full spectrum; everything else (the stored history, the FFTs, the mask and its use) is
// the same, and so are memory and cost, less a little in the quantile. How its kept set differs
// from the full spectrum's:
//
//   - The full multiset of H holds n*d entries. Every bin (k, j) with 0 < j < d/2 has a mirror
//     (-k mod n, d-j) outside the stored bins with the same magnitude, so it appears twice
//     there; the columns j = 0 and, for even d, j = d/2 are their own mirrors (they contain both
//     k and -k) and appear once in both. The half-spectrum quantile therefore runs over the full
//     multiset with each interior column counted once instead of twice: the self-conjugate
//     columns weigh double, tau can differ, and so can the number of bins kept.
//   - In both modes the mask on the stored bins acts as its Hermitian expansion
//     M'(k, d-j) = M(-k, j); InverseRealFFT(F_half*M) equals Re(IFFT2(F*M')) (the C2R transform
//     reads only the real part of the self-conjugate columns); the tests check this against a
//     host reference that builds M' explicitly, and, for the full spectrum, computes the
//     quantile over all n*d entries.
//   - For d <= 2 there is no interior column: the multisets coincide and the two variants filter
//     identically (up to rounding).
//
// How far the variants' filtered gradients differ on gradient-like matrices of the GPT's shapes
// (sums of 16 outer products of smooth-plus-noise vectors plus noise, beta = 0.99, after 10
// steps) is logged as a table by
//
//	SMI_SPECTRAL_MEASURE=1 go test ./spectral -run TestHalfSpectrumDifference -v
//
// (||G~_half - G~_full|| / ||G~_full|| and the energies each keeps, over 65x384, 384x1152,
// 384x1536, 1536x384, 256x384 and 384 at q = 0.25 and 0.5; the test fails only beyond 0.5, a
// difference that would no longer be a variant). The full spectrum stays the default.
//
// # Verification
//
// The tests compare every function with an independent host implementation in float64 (gonum's
// FFT, a sort-based quantile) written from docs/ALGORITHM.md (package internal/reference), on 210 shapes
// (the GPT's, 1x1, 1xd, nx1, primes, powers of two, rank 3 and 4, random), several steps,
// q in {0, 0.25, 0.5, 0.9}, and values with ties, zeros, constants, huge and tiny magnitudes. The
// tolerances, and the rule for bins tied with tau (the float32 graph and the float64 reference
// may decide those differently; every other bin must agree), are stated in filter_test.go.
// FuzzFilter runs the same comparison on fuzzed inputs (go test ./spectral -fuzz FuzzFilter).
// FuzzQuantileRows fuzzes the exact quantile alone: both countings, compare counting's passes
// shared by rows of different lengths, multiplicities, signed zeros, infinities, subnormals and
// NaN, against the sort (go test ./spectral -run '^$' -fuzz FuzzQuantileRows).
package spectral
