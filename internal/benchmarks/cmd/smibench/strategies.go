package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/benchmarks"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// strategyRecord is one configuration's timing in the strategy section's JSON.
type strategyRecord struct {
	Preset    string    `json:"preset"`
	Name      string    `json:"name"`
	MedianMS  float64   `json:"median_ms"`
	SamplesMS []float64 `json:"samples_ms"`
	// Ratio to AdamW, paired by round, with its 95% interval (absent for AdamW itself).
	Ratio   float64 `json:"ratio,omitempty"`
	RatioLo float64 `json:"ratio_lo,omitempty"`
	RatioHi float64 `json:"ratio_hi,omitempty"`
}

// strategyReport is the strategy section's JSON: the backend and the records.
type strategyReport struct {
	Backend string           `json:"backend"`
	Date    string           `json:"date"`
	Records []strategyRecord `json:"records"`
}

// runStrategies is -sections strategies: AdamW and SMI(AdamW) under each filter strategy
// (benchmarks.Strategies), interleaved with a time budget per preset, logged; with jsonPath the
// figures are also written there.
func runStrategies(presets []string, budget time.Duration, jsonPath string) error {
	b := backend.ForMain()
	rep := strategyReport{Backend: b.Description(), Date: time.Now().UTC().Format(time.RFC3339)}
	logf("backend: %s", rep.Backend)
	for _, preset := range presets {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return err
		}
		res, err := benchmarks.MeasureStrategies(b, preset, cfg, benchmarks.Strategies, benchmarks.StrategyOptions(budget),
			func(s string) { logf("%s", s) })
		if err != nil {
			return err
		}
		base, _ := res.Time(benchmarks.OptAdamW)
		for _, r := range res.Results {
			rec := strategyRecord{Preset: preset, Name: r.Name, MedianMS: ms(r.Median())}
			for _, s := range r.Samples {
				rec.SamplesMS = append(rec.SamplesMS, ms(s))
			}
			if r.Name != benchmarks.OptAdamW {
				ratio := benchmarks.PairedRatio(base, r)
				rec.Ratio, rec.RatioLo, rec.RatioHi = ratio.Median, ratio.Lo, ratio.Hi
				logf("strategies %s: %s %s / AdamW %s = %s (%d rounds)", preset, r.Name, benchmarks.HumanDuration(r.Median()),
					benchmarks.HumanDuration(base.Median()), ratio, ratio.N)
			}
			rep.Records = append(rep.Records, rec)
		}
	}
	if jsonPath == "" {
		return nil
	}
	data, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", jsonPath, err)
	}
	logf("wrote %s", jsonPath)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
