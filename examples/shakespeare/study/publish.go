package study

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/smi-gomlx/smi/examples/shakespeare/results"
)

// publish copies DIR/rel to PUBLISH/rel (atomically, as compact JSON), when it exists.
func (o *Options) publish(rel string) error {
	raw, err := os.ReadFile(filepath.Join(o.Dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	out, err := publishedForm(raw, nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(o.Dir, rel), err)
	}
	return writePublished(filepath.Join(o.Publish, rel), out)
}

// publishRun publishes run p's file (metrics.json or analysis.json) in its published form,
// with the provenance of the invocation that trained or analysed it; a run made before this
// invocation that sf does not record keeps the provenance an earlier publication gave it.
func (o *Options) publishRun(sf *studyFile, p gridPoint, file string) error {
	rel := filepath.Join("runs", o.name(p), file)
	raw, err := os.ReadFile(filepath.Join(o.Dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	dst := filepath.Join(o.Publish, rel)
	prov := runProvenance(sf, o.name(p), file == "analysis.json")
	if prov == nil {
		prov = publishedProvenance(dst)
	}
	out, err := publishedForm(raw, droppedFields, prov)
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(o.Dir, rel), err)
	}
	return writePublished(dst, out)
}

// droppedFields are the run-file fields the report does not read and the published form leaves
// out: the SMI telemetry (alpha and kept energy at every iteration) is most of a metrics file,
// and stays in the study folder's own copy.
var droppedFields = []string{"smi_telemetry"}

// publishedForm is a JSON file as published: compact (no indentation), without the fields
// named in drop, with prov as its "provenance" when given, and (in a run's metrics, with drop)
// the per-iteration losses in their float32 form (float32Losses). Every other value is kept
// byte for byte, and the report reads the same numbers.
func publishedForm(raw []byte, drop []string, prov *provenance) ([]byte, error) {
	if drop == nil && prov == nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		return append(buf.Bytes(), '\n'), nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	for _, k := range drop {
		delete(fields, k)
	}
	if losses, ok := fields["iter_loss"]; ok && fields[iterLossDTypeField] == nil {
		if short, ok := float32Losses(losses); ok {
			fields["iter_loss"], fields[iterLossDTypeField] = short, json.RawMessage(`"float32"`)
		}
	}
	if prov != nil {
		p, err := json.Marshal(prov)
		if err != nil {
			return nil, err
		}
		fields["provenance"] = p
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// iterLossDTypeField, "float32" in a published metrics file, says that its iter_loss holds each
// loss as the shortest decimal that identifies it as a float32 (float32Losses), to be read back
// as a float32 (readIterLoss32).
const iterLossDTypeField = "iter_loss_dtype"

// float32Losses rewrites a JSON array of losses that are all float32 values (as the trainer
// records them: each iteration's loss is a float32 of the graph) with each as the shortest
// decimal that identifies it as a float32, about half the digits of its float64 form; read back
// as a float32, each is the very same value. ok is false, and nothing is rewritten, when any value
// is not a float32.
func float32Losses(raw json.RawMessage) (json.RawMessage, bool) {
	var losses []float64
	if err := json.Unmarshal(raw, &losses); err != nil || len(losses) == 0 {
		return nil, false
	}
	out := []byte{'['}
	for i, l := range losses {
		if float64(float32(l)) != l || math.IsInf(l, 0) || math.IsNaN(l) {
			return nil, false
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendFloat(out, l, 'g', -1, 32)
	}
	return append(out, ']'), true
}

// readIterLoss32 reads a published metrics file's iter_loss as float32 values when the file
// says it holds them in that form (iterLossDTypeField).
type readIterLoss32 struct {
	DType    string          `json:"iter_loss_dtype"`
	IterLoss json.RawMessage `json:"iter_loss"`
}

// apply puts the losses, decoded as float32 values, into m when the file held them in float32
// form; it leaves m alone otherwise.
func (r *readIterLoss32) apply(m *results.Metrics) error {
	if r.DType == "" {
		return nil
	} else if r.DType != "float32" {
		return fmt.Errorf("%s %q: only float32 is known", iterLossDTypeField, r.DType)
	}
	var losses []float32
	if err := json.Unmarshal(r.IterLoss, &losses); err != nil {
		return fmt.Errorf("iter_loss: %v", err)
	}
	m.IterLoss = make([]float64, len(losses))
	for i, l := range losses {
		m.IterLoss[i] = float64(l)
	}
	return nil
}

func writePublished(dst string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return results.WriteFileAtomic(dst, content)
}

// runProvenance is the provenance of run name's metrics (or, with analysed, its analysis): the
// last invocation of sf that trained (analysed) it; nil when none did.
func runProvenance(sf *studyFile, name string, analysed bool) *provenance {
	for i := len(sf.Invocations) - 1; i >= 0; i-- {
		inv := &sf.Invocations[i]
		list := inv.Trained
		if analysed {
			list = inv.Analysed
		}
		if slices.Contains(list, name) {
			m := inv.Machine
			return &provenance{Revision: inv.Revision, Command: inv.Command, Machine: &m, Accelerator: inv.Accelerator,
				Backend: inv.Backend, Started: inv.Started}
		}
	}
	return nil
}

// publishedProvenance is the provenance recorded in an already published file; nil without one.
func publishedProvenance(path string) *provenance {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var f struct {
		P *provenance `json:"provenance"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	return f.P
}

// compactPublished rewrites a published study folder's files in the published form, each run
// file with its provenance from the folder's study.json where it records one: for folders
// published before the form was compact. The report reads the same numbers before and after.
func compactPublished(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "study.json"))
	if err != nil {
		return fmt.Errorf("%s is not a published study: %v", dir, err)
	}
	var sf studyFile
	if err := json.Unmarshal(raw, &sf); err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(dir, "study.json"), err)
	}
	for _, name := range []string{"study.json", "speed.json", "steps.json"} {
		path := filepath.Join(dir, name)
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		out, err := publishedForm(raw, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if err := results.WriteFileAtomic(path, out); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "runs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		for _, file := range []string{"metrics.json", "analysis.json"} {
			path := filepath.Join(dir, "runs", e.Name(), file)
			raw, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			prov := runProvenance(&sf, e.Name(), file == "analysis.json")
			if prov == nil {
				prov = publishedProvenance(path)
			}
			out, err := publishedForm(raw, droppedFields, prov)
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			if err := results.WriteFileAtomic(path, out); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Printf("%s: %d run files in the published form.\n", dir, n)
	return nil
}
