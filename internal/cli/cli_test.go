package cli

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckArgs: positional arguments are refused by a command that takes none, and a flag
// written after a positional argument (where Go's flag package no longer reads flags) is
// refused with the hint that flags go first; after "--" arguments are taken as they are.
func TestCheckArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		what string
		want string // "" for no error
	}{
		{[]string{"-n", "3"}, "", ""},
		{[]string{"-n", "3", "r1"}, "", "takes flags only"},
		{[]string{"r1", "-n", "3"}, "", "flags go before any other argument"},
		{[]string{"a", "b"}, "run directories", ""},
		{[]string{"-n", "2", "a", "b", "-n", "5"}, "run directories", "-n comes after the run directories"},
		{[]string{"--", "a", "-b"}, "run directories", ""},
		{[]string{"a", "-"}, "run directories", ""},
	} {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Int("n", 1, "")
		if err := ParseFlags(fs, c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		err := CheckArgs(fs, c.args, c.what)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q (%q): %v", c.args, c.what, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !IsUsage(err)):
			t.Errorf("%q (%q): %v, want a usage error with %q", c.args, c.what, err, c.want)
		}
	}
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := ParseFlags(fs, []string{"-x"}); !IsUsage(err) {
		t.Errorf("an undefined flag: %v, want a usage error", err)
	}
	if err := ParseFlags(fs, []string{"-help"}); err != flag.ErrHelp {
		t.Errorf("-help: %v, want flag.ErrHelp itself", err)
	}
}

// TestCheckWritable: a path that cannot be written, or that is a folder, is refused as a usage
// error with the flag and the path named (package writable checks what writable means); a
// writable one passes. CheckFolder likewise for folders.
func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	if err := CheckWritable("-out", filepath.Join(dir, "a", "r.md")); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "r.md")
	if err := os.WriteFile(existing, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{filepath.Join(existing, "x.md"), "/proc/smi-no-such/x.md", dir} {
		err := CheckWritable("-out", bad)
		if err == nil || !strings.Contains(err.Error(), "-out "+bad) || !IsUsage(err) {
			t.Errorf("%s: %v, want a usage error naming -out and the path", bad, err)
		}
	}
	if err := CheckFolder("-dir", filepath.Join(dir, "new", "folder")); err != nil {
		t.Errorf("a folder that can be made: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("CheckFolder left the folder it made: %v", err)
	}
	for _, bad := range []string{filepath.Join(existing, "sub"), "/proc/smi-no-such"} {
		if err := CheckFolder("-dir", bad); err == nil || !strings.Contains(err.Error(), "-dir "+bad) || !IsUsage(err) {
			t.Errorf("%s: %v, want a usage error naming -dir and the folder", bad, err)
		}
	}
}
