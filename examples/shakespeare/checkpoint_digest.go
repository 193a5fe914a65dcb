package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// digestFile lists the SHA-256 of every other file of a checkpoint directory, in sha256sum's
// format ("HEX  NAME" per line), so that `sha256sum -c SHA256SUMS` checks a checkpoint by hand too.
// A checkpoint's metadata and history are checked when they are read, but a flipped bit in the
// weights' binary file, or a changed number in the history, would otherwise read back unnoticed
// and go on training from damaged state.
const digestFile = "SHA256SUMS"

// writeDigests writes dir's digest file for every regular file in dir.
func writeDigests(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == digestFile {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, e.Name())
	}
	return os.WriteFile(filepath.Join(dir, digestFile), []byte(b.String()), 0o644)
}

// checkDigests checks that every file dir's digest file lists has the digest listed, and that it
// lists every checkpoint file and the history. A directory without a digest file (a checkpoint of
// an older version) passes unchecked.
func checkDigests(dir string) error {
	f, err := os.Open(filepath.Join(dir, digestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	listed := map[string]string{}
	lines := bufio.NewScanner(f)
	for n := 1; lines.Scan(); n++ {
		sum, name, ok := strings.Cut(lines.Text(), "  ")
		if _, hexErr := hex.DecodeString(sum); !ok || len(sum) != 2*sha256.Size || hexErr != nil ||
			name == "" || strings.ContainsRune(name, '/') {
			return fmt.Errorf("%s line %d is not \"SHA-256  NAME\": %q", digestFile, n, lines.Text())
		}
		listed[name] = sum
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("%s: %v", digestFile, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if _, ok := listed[name]; !ok && (name == historyFile || strings.HasPrefix(name, "checkpoint-")) {
			return fmt.Errorf("%s is not listed in %s", name, digestFile)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(listed)) {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if sum != strings.ToLower(listed[name]) {
			return fmt.Errorf("%s has changed since it was saved (its SHA-256 is not the one %s lists)", name, digestFile)
		}
	}
	return nil
}

// fileSHA256 is the SHA-256 of the file at path, in lower-case hex.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
