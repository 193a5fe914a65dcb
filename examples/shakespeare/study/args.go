package study

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/smi-gomlx/smi/internal/writable"
)

// Checks of command lines that the study and the Shakespeare command's other commands (package
// main) share, so that each rule has one home: positional arguments, output paths, folder lists
// and the measurements' sizes. They run before any work, so that a bad flag never costs a
// training or a measurement.

// UsageError is a bad command line: the command exits with status 2 (flag's convention), after
// a one-line message.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, a ...any) error {
	return &UsageError{fmt.Errorf(format, a...)}
}

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// ParseFlags parses args with fs; a flag it cannot parse is a UsageError (fs has printed its
// usage), and -help's flag.ErrHelp is returned as it is.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &UsageError{err}
}

// CheckArgs checks the positional arguments fs left after parsing args: what names those the
// command takes ("run directories"), "" when it takes none. Go's flag package stops reading
// flags at the first positional argument, so a flag written after one would be taken as an
// argument (or dropped): that is refused with the hint that flags go first. Arguments after
// "--" are taken as they are.
func CheckArgs(fs *flag.FlagSet, args []string, what string) error {
	rest := fs.Args()
	if len(rest) == 0 {
		return nil
	}
	dashes := len(args) > len(rest) && args[len(args)-len(rest)-1] == "--"
	looksLikeFlag := func(a string) bool { return len(a) > 1 && strings.HasPrefix(a, "-") }
	misplaced := !dashes && slices.ContainsFunc(rest, looksLikeFlag)
	switch {
	case what == "" && misplaced:
		return Usagef("unexpected arguments %q: %s takes flags only, and flags go before any other argument (the flag parser stops at %q; see -help)",
			rest, fs.Name(), rest[0])
	case what == "":
		return Usagef("unexpected arguments %q: %s takes flags only (see -help)", rest, fs.Name())
	case misplaced:
		i := slices.IndexFunc(rest, looksLikeFlag)
		return Usagef("%s comes after the %s, where flags are not read: flags go before the %s (see -help)", rest[i], what, what)
	}
	return nil
}

// CheckWritable checks, before any work, that the file path, the value of the flag flagName, can
// be written whole (results.WriteFileAtomic or os.WriteFile; see package writable): a path that
// is a folder is a usage error, one that cannot be written an error naming the flag.
func CheckWritable(flagName, path string) error {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return Usagef("%s %s is a folder, not a file", flagName, path)
	}
	if err := writable.File(path); err != nil {
		return fmt.Errorf("%s %s: cannot write it: %v", flagName, path, err)
	}
	return nil
}

// splitFolders reads a comma-separated list of folders, the flag flagName's (e.g. -from);
// spaces around an entry are dropped, and an empty entry is refused.
func splitFolders(flagName, list string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			return nil, Usagef("%s %q has an empty entry: give folders separated by single commas", flagName, list)
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
		return Usagef("%s must be at least 1 (characters generated per repetition), got %d", tokensFlag, tokens)
	}
	if reps < 2 {
		return Usagef("%s must be at least 2 (repetitions per model, for a confidence interval), got %d", repsFlag, reps)
	}
	return nil
}

// CheckStepSize checks the training-step time measurement's steps per round (at least 1) and
// rounds (at least 2, for a confidence interval).
func CheckStepSize(stepsFlag string, steps int, roundsFlag string, rounds int) error {
	if steps < 1 {
		return Usagef("%s must be at least 1 (training steps per configuration and round), got %d", stepsFlag, steps)
	}
	if rounds < 2 {
		return Usagef("%s must be at least 2 (rounds, for a confidence interval), got %d", roundsFlag, rounds)
	}
	return nil
}

// CheckAnalyzeBatches checks the activation-sparsity analysis's validation batches (at least 1:
// with none there is no measurement).
func CheckAnalyzeBatches(flagName string, batches int) error {
	if batches < 1 {
		return Usagef("%s must be at least 1 (validation batches for the activation sparsity), got %d", flagName, batches)
	}
	return nil
}
