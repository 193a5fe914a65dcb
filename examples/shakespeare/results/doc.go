// Package results is what a run of the Shakespeare experiment writes and what reads it back
// needs: the paper's configurations (Runs), a run's metrics (metrics.json, Metrics) and
// parameter analysis (analysis.json, Analysis), the figures its metrics compute from the
// losses (the smoothed loss, iterations to a threshold, the final loss variance), its plots,
// and how a run directory is written (atomically, under an exclusive lock). The trainer
// (package main) writes these files; package study reads them. Definitions of every figure:
// docs/SHAKESPEARE.md.
package results
