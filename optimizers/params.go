package optimizers

import (
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
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
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	}
	r.fail(key, v, "a number")
	return def
}

func (r *paramReader) int(key string, def int) int {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case int32:
		return int(x)
	case float64: // Params restored from a checkpoint's JSON may come back as float64.
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	}
	r.fail(key, v, "an integer")
	return def
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
