package spectral

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/smi-gomlx/smi/internal/reference"
)

// FuzzFilter compares Filter with the host reference (same tolerances and tie rule as
// TestFilterShapes) on fuzzed shapes, quantiles, decays, spectra and values:
//
//	go test ./spectral -run '^$' -fuzz FuzzFilter -fuzztime 60s
//
// The values are the fuzzed bytes read as int8 / 16, scaled by 2^scale (scale clamped to
// [-60, 60]), so that ties, zeros and wide magnitudes are all reachable; steps two and three use
// the bytes rotated, so the history matters. Each new shape and configuration compiles a graph
// (a fraction of a second), so fuzzing explores a few executions per second.
func FuzzFilter(f *testing.F) {
	f.Add(uint8(7), uint8(13), uint8(1), uint8(90), false, int8(0), []byte("spectral momentum"))
	f.Add(uint8(1), uint8(9), uint8(2), uint8(0), true, int8(-40), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint8(12), uint8(1), uint8(3), uint8(99), true, int8(50), []byte{0, 0, 0, 128, 255, 1})
	f.Add(uint8(6), uint8(8), uint8(2), uint8(50), false, int8(3), []byte{16, 16, 16, 16})
	b := testBackend(f)
	var execs execCache
	qs := []float64{0, 0.25, 0.5, 0.9}
	f.Fuzz(func(t *testing.T, rows, cols, qIndex, betaPercent uint8, half bool, scale int8, data []byte) {
		n, d := 1+int(rows)%48, 1+int(cols)%48
		if len(data) == 0 {
			data = []byte{0}
		}
		exp := max(-60, min(60, int(scale)))
		c := filterCase{
			dims:  []int{n, d},
			dtype: dtypes.Float32,
			q:     qs[int(qIndex)%len(qs)],
			beta:  float64(betaPercent%100) / 100,
			half:  half,
			kind:  "fuzz",
			steps: 3,
			values: func(step int) []float64 {
				v := make([]float64, n*d)
				for i := range v {
					v[i] = math.Ldexp(float64(int8(data[(i+step)%len(data)]))/16, exp)
				}
				return v
			},
		}
		exec := execs.get(c.String(), func() *Exec { return filterExec(b, c) })
		runFilterCase(t, exec, c, 1)
	})
}

// FuzzQuantileRows compares the exact quantile's radix selects with a sort on the host (package
// reference) on fuzzed inputs: compare counting's shared passes over two sources of different
// row lengths (one stack of chunks, each row padded to whole chunks: what an accelerator runs for
// a model's variables), each source with or without multiplicities, and scatter counting on each
// source alone, in float32 or float64. Each row's quantile must have the same bits under both
// countings, and equal the host's within TestQuantile's tolerance (order statistics exactly):
//
//	go test ./spectral -run '^$' -fuzz FuzzQuantileRows -fuzztime 60s
//
// The values are the fuzzed bytes read as int8 / 16, scaled by 2^scale (scale clamped to
// [-60, 60]); the bytes 0x80-0x85 stand for -0, +Inf, -Inf, the smallest subnormal and the
// largest finite value of the dtype and its negative. nanAt, when below the first source's
// number of entries (rows x size), puts a NaN there (that row's quantile is NaN). Each new
// configuration compiles a graph.
func FuzzQuantileRows(f *testing.F) {
	f.Add(uint16(1500), uint16(70), uint8(2), uint8(1), uint16(16384), uint8(1), false, int8(0), uint16(65535), []byte("spectral momentum integration"))
	f.Add(uint16(1024), uint16(1025), uint8(0), uint8(2), uint16(53233), uint8(2), false, int8(-40), uint16(1100), []byte{1, 2, 3, 0x80, 0x81})
	f.Add(uint16(2599), uint16(3), uint8(1), uint8(0), uint16(65535), uint8(3), true, int8(20), uint16(65535), []byte{0x83, 0x84, 0x85, 0x82, 7, 7, 7})
	f.Add(uint16(4000), uint16(999), uint8(2), uint8(2), uint16(0), uint8(0), false, int8(5), uint16(65535), []byte{0, 0, 0, 0x80})
	varied := make([]byte, 251) // rows shorter than 251 entries hold no ties: the lerp between distinct neighbours
	for i := range varied {
		varied[i] = byte(i * 73 % 251)
	}
	f.Add(uint16(200), uint16(90), uint8(1), uint8(0), uint16(40000), uint8(0), true, int8(10), uint16(65535), varied)
	b := testBackend(f)
	var execs execCache
	f.Fuzz(func(t *testing.T, sizeA, sizeB uint16, rowsA, rowsB uint8, q16 uint16, multiplicity uint8, f64 bool,
		scale int8, nanAt uint16, data []byte) {
		if len(data) == 0 {
			data = []byte{0}
		}
		dtype, maxFinite, subnormal := dtypes.Float32, float64(math.MaxFloat32), float64(math.SmallestNonzeroFloat32)
		if f64 {
			dtype, maxFinite, subnormal = dtypes.Float64, math.MaxFloat64, math.SmallestNonzeroFloat64
		}
		q := float64(q16) / 65535
		exp := max(-60, min(60, int(scale)))
		type source struct {
			rows, size int
			mult       []int
			values     []float64
		}
		srcs := []source{{rows: 1 + int(rowsA)%3, size: 1 + int(sizeA)%2600}, {rows: 1 + int(rowsB)%3, size: 1 + int(sizeB)%2600}}
		key := fmt.Sprintf("%s q=%v", dtype, q)
		for s := range srcs {
			src := &srcs[s]
			if multiplicity&(1<<s) != 0 {
				src.mult = make([]int, src.size)
				for j := range src.mult {
					src.mult[j] = 1 + (j+int(multiplicity))%3
				}
			}
			key += fmt.Sprintf(" %dx%d", src.rows, src.size)
			if src.mult != nil { // the graph holds them as constants
				key += fmt.Sprintf(" mult=%d", multiplicity%3)
			}
			src.values = make([]float64, src.rows*src.size)
			for i := range src.values {
				switch by := data[(31*i+7*s)%len(data)]; by {
				case 0x80:
					src.values[i] = math.Copysign(0, -1)
				case 0x81:
					src.values[i] = math.Inf(1)
				case 0x82:
					src.values[i] = math.Inf(-1)
				case 0x83:
					src.values[i] = subnormal
				case 0x84:
					src.values[i] = maxFinite
				case 0x85:
					src.values[i] = -maxFinite
				default:
					src.values[i] = math.Ldexp(float64(int8(by))/16, exp)
				}
			}
		}
		if int(nanAt) < len(srcs[0].values) {
			srcs[0].values[nanAt] = math.NaN()
		}
		exec := execs.get(key, func() *Exec {
			return MustNewExec(b, func(in []*Node) []*Node {
				var rows []compareRows
				for i, src := range srcs {
					rows = append(rows, compareRows{x: in[i], multiplicity: src.mult})
				}
				outs := quantileRowsCompare(rows, q)
				for i, src := range srcs {
					outs = append(outs, quantileRows(in[i], q, selectScatter, src.mult))
				}
				return outs
			})
		})
		outs := exec.MustExec(valuesTensor(srcs[0].values, dtype, srcs[0].rows, srcs[0].size),
			valuesTensor(srcs[1].values, dtype, srcs[1].rows, srcs[1].size))
		for i, src := range srcs {
			exactBits(t, outs[i], outs[len(srcs)+i], i)
			got := flatAny(outs[i])
			for r := range src.rows {
				var row []float64 // the row with each entry repeated as often as its multiplicity
				for j, v := range src.values[r*src.size : (r+1)*src.size] {
					times := 1
					if src.mult != nil {
						times = src.mult[j]
					}
					for range times {
						row = append(row, v)
					}
				}
				if f64 {
					want := reference.Quantile(row, q)
					checkQuantile(t, q, got[r].(float64), want, float64SubnormalTol) // numpy's float64 arithmetic
					continue
				}
				row32 := make([]float32, len(row))
				for j, v := range row {
					row32[j] = float32(v)
				}
				want := reference.Quantile32(row32, q)
				checkQuantile(t, q, float64(got[r].(float32)), float64(want), quantileULP(float64(want), dtypes.Float32))
			}
		}
	})
}

// execCache is a fuzz target's compiled graphs by configuration, the least recently used freed
// first. Every compiled program holds memory mappings until it is freed (hundreds of them on XLA
// CPU, even for these small graphs), and a fuzz worker that kept the program of every configuration
// it met passed Linux's limit of mappings per process (vm.max_map_count, 65530 by default) within
// minutes: XLA then failed to compile the next program ("Failed to materialize symbols"). So the
// cache frees programs while the process holds more than execCacheMappings mappings (where
// /proc/self/maps tells) or execCacheSize programs. Most fuzzed inputs mutate a corpus entry's
// values, not its configuration, so a cache of many programs keeps the fuzzer fast.
type execCache struct {
	execs map[string]*Exec
	order []string // least recently used first
}

const (
	execCacheSize     = 256
	execCacheMappings = 40000
)

func (c *execCache) get(key string, build func() *Exec) *Exec {
	if c.execs == nil {
		c.execs = map[string]*Exec{}
	}
	if e, ok := c.execs[key]; ok {
		c.touch(key)
		return e
	}
	for len(c.order) > 0 && (len(c.order) >= execCacheSize || mappings() > execCacheMappings) {
		c.execs[c.order[0]].Finalize()
		delete(c.execs, c.order[0])
		c.order = c.order[1:]
	}
	e := build()
	c.execs[key] = e
	c.order = append(c.order, key)
	return e
}

// touch moves key to the most recently used end.
func (c *execCache) touch(key string) {
	i := slices.Index(c.order, key)
	c.order = append(append(c.order[:i:i], c.order[i+1:]...), key)
}

// mappings is the number of memory mappings of this process, 0 where /proc/self/maps is missing.
func mappings() int {
	raw, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	return bytes.Count(raw, []byte{'\n'})
}
