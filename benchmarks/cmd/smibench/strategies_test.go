package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smi-gomlx/smi/benchmarks"
	"github.com/smi-gomlx/smi/benchmarks/cmd/smibench/internal/gptbench"
)

// TestGoalLine: the fastest strategy per preset is judged against the goal by its interval,
// q=0 never counts as the fastest, and a preset with q=0 alone is said not to be judged.
func TestGoalLine(t *testing.T) {
	adamW := func(preset string) strategyRecord { return strategyRecord{Preset: preset, Name: "AdamW", MedianMS: 10} }
	rec := func(preset, name string, ratio, lo, hi float64) strategyRecord {
		return strategyRecord{Preset: preset, Name: name, Ratio: ratio, RatioLo: lo, RatioHi: hi}
	}
	for _, c := range []struct {
		records []strategyRecord
		want    []string
	}{
		{[]strategyRecord{adamW("paper"), rec("paper", "SMI(AdamW) [compare, no limit]", 1.03, 1.02, 1.04),
			rec("paper", "SMI(AdamW) [scatter, no limit]", 1.3, 1.2, 1.4), rec("paper", "SMI(AdamW) [q=0, no limit]", 0.98, 0.97, 0.99)},
			[]string{"`paper`: fastest SMI(AdamW) [compare, no limit] at 1.030x [1.020, 1.040], goal <= 1.05x met"}},
		{[]strategyRecord{adamW("paper"), rec("paper", "SMI(AdamW) [compare, no limit]", 1.04, 1.02, 1.07)},
			[]string{"goal <= 1.05x met by the median only, not by the interval"}},
		{[]strategyRecord{adamW("cpu"), rec("cpu", "SMI(AdamW) [auto, auto limit]", 1.18, 1.17, 1.19),
			adamW("paper"), rec("paper", "SMI(AdamW) [q=0, no limit]", 1.005, 0.97, 1.05)},
			[]string{"`cpu`: fastest SMI(AdamW) [auto, auto limit] at 1.180x [1.170, 1.190], goal <= 1.05x not met; " +
				"`paper`: not judged, no strategy that computes the threshold was timed"}},
	} {
		got := goalLine(c.records)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("goalLine = %q, want it to contain %q", got, w)
			}
		}
		if strings.Contains(got, ": .") || strings.HasSuffix(got, ": .") {
			t.Errorf("goalLine = %q: an empty verdict", got)
		}
	}
}

// strategyFile is what runStrategies writes for the cpu preset's AdamW and one SMI result of n
// rounds each, as JSON.
func strategyFile(t *testing.T, n int) strategyReport {
	t.Helper()
	adamW, smi := benchmarks.Result{Name: gptbench.OptAdamW}, benchmarks.Result{Name: "SMI(AdamW) [auto, auto limit]"}
	for i := range n {
		a := 40*time.Millisecond + time.Duration(i*7919%1000)*time.Microsecond + time.Duration(i*131)
		adamW.Samples = append(adamW.Samples, a)
		smi.Samples = append(smi.Samples, a*117/100+time.Duration(i*104729%300)*time.Microsecond)
	}
	rep := strategyReport{Backend: "xla:cpu", Records: []strategyRecord{strategyRecordOf("cpu", adamW, adamW), strategyRecordOf("cpu", smi, adamW)}}
	raw, err := jsonBytes(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back strategyReport
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// TestCheckStrategyRecords: what runStrategies writes passes, and a file emptied, zeroed or edited
// so that a figure is not what its samples give is refused by renderStrategies with the file's
// name, before anything is written.
func TestCheckStrategyRecords(t *testing.T) {
	for _, n := range []int{9, 10} {
		if err := checkStrategyRecords(strategyFile(t, n).Records); err != nil {
			t.Errorf("%d rounds: %v", n, err)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.md")
	for i, c := range []struct {
		raw    string                  // the file, when not the edited report
		change func(r *strategyReport) // an edit of a good report
		want   string
	}{
		{raw: `{}`, want: "no records"},
		{raw: `null`, want: "no records"},
		{raw: `{"records": []}`, want: "no records"},
		{raw: `{"records": [null]}`, want: `record 1: gpt.Preset: unknown preset ""`},
		{change: func(r *strategyReport) { r.Records[1].Name = "" }, want: "record 2 (cpu): no configuration name"},
		{change: func(r *strategyReport) { r.Records[1].SamplesMS = nil }, want: "record 2 (cpu SMI(AdamW) [auto, auto limit]): no samples"},
		{change: func(r *strategyReport) { r.Records[0].SamplesMS[3] = 0 }, want: "record 1 (cpu AdamW): sample 0 ms is not a time"},
		{change: func(r *strategyReport) { r.Records[0].MedianMS *= 1.01 }, want: "record 1 (cpu AdamW): median"},
		{change: func(r *strategyReport) { r.Records[1].Ratio, r.Records[1].RatioLo, r.Records[1].RatioHi = 0, 0, 0 }, want: "record 2 (cpu SMI(AdamW) [auto, auto limit]): ratio 0 [0, 0] to AdamW, and its samples give 1.1"},
		{change: func(r *strategyReport) { r.Records[1].RatioHi += 0.01 }, want: "record 2 (cpu SMI(AdamW) [auto, auto limit]): ratio"},
		{change: func(r *strategyReport) { // the least and the greatest left out: the same median
			samples := slices.Sorted(slices.Values(r.Records[1].SamplesMS))
			r.Records[1].SamplesMS = samples[1 : len(samples)-1]
		}, want: "8 samples, and AdamW has 10"},
		{change: func(r *strategyReport) { r.Records[0].Ratio = 1 }, want: "record 1 (cpu AdamW): a ratio to itself"},
		{change: func(r *strategyReport) { r.Records = r.Records[1:] }, want: "record 1 (cpu SMI(AdamW) [auto, auto limit]): no AdamW record for cpu"},
		{change: func(r *strategyReport) { r.Records = append(r.Records, r.Records[0]) }, want: "record 3: a second AdamW record for cpu"},
	} {
		raw := []byte(c.raw)
		if c.change != nil {
			rep := strategyFile(t, 10)
			c.change(&rep)
			var err error
			if raw, err = jsonBytes(rep); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("s%d.json", i))
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		err := renderStrategies([]string{path}, out)
		if err == nil || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: got %v, want an error naming the file and containing %q", i, err, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("case %d: %s written", i, out)
		}
	}
}

// TestRelTo: a link from a report to its data resolves from the report's folder whether the
// report's path and the data's are absolute or relative, in any pairing.
func TestRelTo(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	absData := filepath.Join(wd, "docs", "s.json")
	for _, c := range []struct{ out, path string }{
		{"/tmp/G.md", "docs/s.json"},
		{"out/G.md", absData},
		{"out/G.md", "docs/s.json"},
		{"/tmp/G.md", absData},
	} {
		link := relTo(c.out, c.path)
		absOut, _ := filepath.Abs(c.out)
		if got := filepath.Join(filepath.Dir(absOut), link); got != absData {
			t.Errorf("relTo(%q, %q) = %q, which resolves from %s to %s, want %s", c.out, c.path, link,
				filepath.Dir(absOut), got, absData)
		}
	}
}

// TestPairedLine: a log line gives both medians and, apart from them, the paired ratio, the
// median of the rounds' ratios (2, 2.5, 0.6), which here differs from the medians' ratio (5 ms / 2 ms).
func TestPairedLine(t *testing.T) {
	ms := func(v ...float64) benchmarks.Result {
		var r benchmarks.Result
		for _, x := range v {
			r.Samples = append(r.Samples, time.Duration(x*float64(time.Millisecond)))
		}
		return r
	}
	got := pairedLine("B", ms(2, 5, 6), "A", ms(1, 2, 10))
	want := "B 5 ms, A 2 ms (medians); paired ratio 2.000x [0.600, 2.500] (median of the 3 rounds' ratios)"
	if got != want {
		t.Errorf("pairedLine = %q, want %q", got, want)
	}
}
