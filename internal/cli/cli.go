// Package cli holds the command-line conventions of the project's programs (the Shakespeare
// command, smibench): a bad command line is a UsageError, reported in one line with exit status 2
// (the flag package's convention), before any work; flags go before positional arguments; an
// output path is checked writable before the work that would write it; long work shows its
// progress (Progress).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/smi-gomlx/smi/internal/writable"
)

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
// be written whole (written atomically or in place; see package writable). A path that is a
// folder, or that cannot be written, is a bad command line: a usage error naming the flag.
func CheckWritable(flagName, path string) error {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return Usagef("%s %s is a folder, not a file", flagName, path)
	}
	if err := writable.File(path); err != nil {
		return Usagef("%s %s: cannot write it: %v", flagName, path, err)
	}
	return nil
}

// CheckFolder checks, before any work, that files can be written in the folder dir, the value of
// the flag flagName (made if missing; see writable.Folder): one where they cannot is a usage error
// naming the flag.
func CheckFolder(flagName, dir string) error {
	if err := writable.Folder(dir); err != nil {
		return Usagef("%s %s: cannot write files in it: %v", flagName, dir, err)
	}
	return nil
}
