package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeReproduction writes the reproduction report at path from the study files published in
// dir (runs/*/metrics.json and analysis.json), with its plots in dir.
func writeReproduction(dir, path string) error {
	records, err := readRecords([]string{filepath.Join(dir, "runs")})
	if err != nil {
		return err
	}
	groups := groupRuns(records)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(reportMarkdown(groups)), 0o644); err != nil {
		return err
	}
	if _, err := reportPlots(dir, groups); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	return nil
}
