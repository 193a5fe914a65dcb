package spectral

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
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
	execs := map[string]*Exec{}
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
		key := c.String()
		exec, ok := execs[key]
		if !ok {
			exec = filterExec(b, c)
			execs[key] = exec
		}
		runFilterCase(t, exec, c, 1)
	})
}
