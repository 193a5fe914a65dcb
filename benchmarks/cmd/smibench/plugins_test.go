package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePluginVariants(t *testing.T) {
	vs, err := parsePluginVariants("xla-cpu-pjrt, lammps-jax-pjrt-cpu,xla-cpu-pjrt+--xla_cpu_max_isa=AVX2,lammps-jax-pjrt-cpu+--xla_cpu_max_isa=AVX2+--xla_cpu_enable_fast_math=false")
	require.NoError(t, err)
	require.Len(t, vs, 4)
	assert.Equal(t, "xla-cpu-pjrt", vs[0].String())
	assert.Empty(t, vs[1].Flags)
	assert.Equal(t, []string{"--xla_cpu_max_isa=AVX2"}, vs[2].Flags)
	assert.Equal(t, "lammps-jax-pjrt-cpu --xla_cpu_max_isa=AVX2 --xla_cpu_enable_fast_math=false", vs[3].String())

	for list, msg := range map[string]string{
		"xla-cpu-pjrt":                        "at least two plugins",
		"":                                    "at least two plugins",
		"xla-cpu-pjrt,jaxlib":                 `unknown XLA CPU plugin "jaxlib"`,
		"xla-cpu-pjrt,xla-cpu-pjrt+max_isa=1": "must be an XLA flag",
	} {
		_, err := parsePluginVariants(list)
		assert.ErrorContains(t, err, msg, list)
	}
}

// A variant's ratios are to the first variant with the same extra flags, so that a plugin under
// --xla_cpu_max_isa=AVX2 is compared with the default plugin under the same cap.
func TestReferenceOf(t *testing.T) {
	vs, err := parsePluginVariants("xla-cpu-pjrt,lammps-jax-pjrt-cpu,xla-cpu-pjrt+--xla_cpu_max_isa=AVX2,lammps-jax-pjrt-cpu+--xla_cpu_max_isa=AVX2,fastatomstruct-xla-cpu")
	require.NoError(t, err)
	var workers []*pluginWorker
	for _, v := range vs {
		workers = append(workers, &pluginWorker{variant: v})
	}
	for w, want := range []int{0, 0, 0, 2, 0} {
		assert.Equal(t, want, referenceOf(workers, w), vs[w].String())
	}
}

func TestLossDifference(t *testing.T) {
	ref := map[string][]float32{"AdamW": {4, 2}, "SMI(AdamW)": {4, 2.5}}
	worst, complete := lossDifference(ref, map[string][]float32{"AdamW": {4, 2}, "SMI(AdamW)": {4, 2.5}})
	assert.True(t, complete)
	assert.Equal(t, 0.0, worst)
	worst, complete = lossDifference(ref, map[string][]float32{"AdamW": {4, 2.0001}, "SMI(AdamW)": {4.002, 2.5}})
	assert.True(t, complete)
	assert.InDelta(t, 5e-4, worst, 1e-6) // 0.002/4 beats 0.0001/2
	_, complete = lossDifference(ref, map[string][]float32{"AdamW": {4, 2}, "SMI(AdamW)": {4}})
	assert.False(t, complete)
	_, complete = lossDifference(ref, map[string][]float32{"AdamW": {4, 2}})
	assert.False(t, complete)
}
