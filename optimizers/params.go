package optimizers

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// paramReader reads the context hyperparameters of the FromContext methods of SMI, Lion and
// SGDMomentum: a value of the wrong type keeps the current setting and is recorded in err (the
// first one only), which the builder reports, instead of panicking.
type paramReader struct {
	ctx *context.Context
	who string // Prefix of error messages: the builder's name, as "optimizers.Lion".
	err error
}

func (r *paramReader) get(key string) (any, bool) {
	v, found := r.ctx.GetParam(key)
	return v, found && v != nil
}

func (r *paramReader) fail(key string, v any, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: context hyperparameter %q must be %s, got %T %v", r.who, key, want, v, v)
	}
}

func (r *paramReader) float(key string, def float64) float64 {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if x, isNumber := asFloat(v); isNumber {
		return x
	}
	r.fail(key, v, "a number")
	return def
}

func (r *paramReader) int(key string, def int) int {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if x, isInt := asInt(v); isInt {
		return x
	}
	r.fail(key, v, "an integer")
	return def
}

// learningRate reads GoMLX's learning-rate hyperparameter (gomlxopt.ParamLearningRate, the key GoMLX's
// optimizers read): it returns its value and true when ctx has it as a number that is finite and > 0,
// and records an error when ctx has it otherwise (a NaN, infinite or negative rate trains to NaN, Inf or
// away from the minimum).
func (r *paramReader) learningRate() (float64, bool) {
	key := gomlxopt.ParamLearningRate
	v, ok := r.get(key)
	if !ok {
		return 0, false
	}
	lr, isNumber := asFloat(v)
	if !isNumber || !(lr > 0) || math.IsInf(lr, 1) {
		r.fail(key, v, "a number, finite and > 0")
		return 0, false
	}
	return lr, true
}

// asFloat converts a float or an integer of any Go kind (named types included) to float64.
func asFloat(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	default:
		return 0, false
	}
}

// asInt converts an integer of any Go kind (named types included) that fits an int, or a float64 holding
// an integer exactly (params restored from a checkpoint's JSON may come back as float64), to int.
func asInt(v any) (int, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := rv.Int()
		return int(x), x >= math.MinInt && x <= math.MaxInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x := rv.Uint()
		return int(x), x <= math.MaxInt
	case reflect.Float64:
		x := rv.Float()
		return int(x), x == math.Trunc(x) && math.Abs(x) < 1<<53
	default:
		return 0, false
	}
}

func (r *paramReader) bool(key string, def bool) bool {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if x, isBool := v.(bool); isBool {
		return x
	}
	r.fail(key, v, "a bool")
	return def
}

func (r *paramReader) string(key string, def string) string {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if x, isString := v.(string); isString {
		return x
	}
	r.fail(key, v, "a string")
	return def
}

// list reads comma-separated patterns from a string, or a list of strings; empty entries are dropped.
func (r *paramReader) list(key string) []string {
	v, ok := r.get(key)
	if !ok {
		return nil
	}
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []string:
		items = x
	case []any: // From a checkpoint's JSON.
		for _, e := range x {
			s, isString := e.(string)
			if !isString {
				r.fail(key, v, "a comma-separated string or a list of strings")
				return nil
			}
			items = append(items, s)
		}
	default:
		r.fail(key, v, "a comma-separated string or a list of strings")
		return nil
	}
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
