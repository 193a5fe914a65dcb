package study

import (
	"fmt"
	"strings"

	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
)

// Checks of command lines that the study and the Shakespeare command's other commands (package
// main) share, so that each rule has one home: folder lists, the device and the measurements'
// sizes (the conventions of every command line are package cli's). They run before any work, so
// that a bad flag never costs a training or a measurement.

// splitFolders reads a comma-separated list of folders, the flag flagName's (e.g. -from);
// spaces around an entry are dropped, and an empty entry is refused.
func splitFolders(flagName, list string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			return nil, cli.Usagef("%s %q has an empty entry: give folders separated by single commas", flagName, list)
		}
		out = append(out, f)
	}
	return out, nil
}

// The sizes of the measurements, as the study and the standalone commands (speed, analyze)
// take them; each check names the flag that gave the value.

// CheckSpeedSize checks the inference-speed measurement's characters per repetition (tokens, at
// least 1) and repetitions per model (reps, at least 2: a confidence interval needs two).
func CheckSpeedSize(tokensFlag string, tokens int, repsFlag string, reps int) error {
	if tokens < 1 {
		return cli.Usagef("%s must be at least 1 (characters generated per repetition), got %d", tokensFlag, tokens)
	}
	if reps < 2 {
		return cli.Usagef("%s must be at least 2 (repetitions per model, for a confidence interval), got %d", repsFlag, reps)
	}
	return nil
}

// checkStepSize checks the training-step time measurement's steps per round (at least 1) and
// rounds (at least 2, for a confidence interval).
func checkStepSize(stepsFlag string, steps int, roundsFlag string, rounds int) error {
	if steps < 1 {
		return cli.Usagef("%s must be at least 1 (training steps per configuration and round), got %d", stepsFlag, steps)
	}
	if rounds < 2 {
		return cli.Usagef("%s must be at least 2 (rounds, for a confidence interval), got %d", roundsFlag, rounds)
	}
	return nil
}

// CheckAnalyzeBatches checks the activation-sparsity analysis's validation batches (at least 1:
// with none there is no measurement).
func CheckAnalyzeBatches(flagName string, batches int) error {
	if batches < 1 {
		return cli.Usagef("%s must be at least 1 (validation batches for the activation sparsity), got %d", flagName, batches)
	}
	return nil
}

// CheckDevice checks -device's value: cpu, cuda (or gpu), auto, or empty for the default
// (backend.ParseDevice).
func CheckDevice(name string) error {
	if _, err := backend.ParseDevice(name); err != nil {
		return &cli.UsageError{Err: fmt.Errorf("-device: %w", err)}
	}
	return nil
}
