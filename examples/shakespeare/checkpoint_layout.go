package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
)

// checkLayout checks, before GoMLX reads the checkpoint in dir, that its metadata describes its
// binary file: the variables lie one after another from the start, each as long as its shape says,
// and, when the file is stored uncompressed (as this trainer writes them), they fill it exactly.
// GoMLX allocates each variable as its recorded shape says before reading it: damaged metadata
// would make it panic (a negative dimension) or allocate whatever a damaged dimension says (an
// out-of-memory crash, which no recover catches), instead of failing, so that the run resumes from
// an older checkpoint. The checkpoint read is the newest in dir, as GoMLX picks it (ListCheckpoints).
func checkLayout(dir string) error {
	jsons, err := filepath.Glob(filepath.Join(dir, "checkpoint-*"+checkpoints.JsonNameSuffix))
	if err != nil || len(jsons) == 0 {
		return fmt.Errorf("no checkpoint files")
	}
	slices.Sort(jsons)
	jsonPath := jsons[len(jsons)-1]
	binPath := strings.TrimSuffix(jsonPath, checkpoints.JsonNameSuffix) + checkpoints.BinDataSuffix
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var meta struct {
		Variables []struct {
			ParameterName string
			Dimensions    []int
			DType         dtypes.DType
			Pos, Length   int
		}
		BinFormat string
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return fmt.Errorf("%s: %v", filepath.Base(jsonPath), err)
	}
	info, err := os.Stat(binPath)
	if err != nil {
		return err
	}
	pos := 0
	for _, v := range meta.Variables {
		size, ok := byteSize(v.DType, v.Dimensions)
		if !ok {
			return fmt.Errorf("%s: variable %q has an impossible shape, %s%v", filepath.Base(jsonPath), v.ParameterName, v.DType, v.Dimensions)
		}
		if size != v.Length || v.Pos != pos {
			return fmt.Errorf("%s: variable %q is recorded as %s%v, %d bytes at %d, where such an array is %d bytes at %d",
				filepath.Base(jsonPath), v.ParameterName, v.DType, v.Dimensions, v.Length, v.Pos, size, pos)
		}
		pos += size
	}
	if meta.BinFormat == checkpoints.BinUncompressed.String() && int64(pos) != info.Size() {
		return fmt.Errorf("%s holds %d bytes, its metadata %d", filepath.Base(binPath), info.Size(), pos)
	}
	return nil
}

// byteSize is the size in bytes of an array of dtype and dims; ok is false for an invalid dtype, a
// negative dimension, or a size beyond 2^48 bytes (no checkpoint of this trainer comes near).
func byteSize(dtype dtypes.DType, dims []int) (size int, ok bool) {
	if !dtype.IsADType() || dtype == dtypes.InvalidDType {
		return 0, false
	}
	bits := dtype.Bits() // panics for a dtype without a Go type; readCheckpoint recovers
	if bits <= 0 {
		return 0, false
	}
	n := 1
	for _, d := range dims {
		if d < 0 || (d > 0 && n > math.MaxInt32*(1<<16)/d) {
			return 0, false
		}
		n *= d
	}
	if n > (1<<48)/bits {
		return 0, false
	}
	return (n*bits + 7) / 8, true
}
