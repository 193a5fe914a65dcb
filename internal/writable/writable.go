// Package writable checks, before a program does long work, that the files it will write can be
// written, so that a bad output path fails at once instead of after the work, which it would
// lose. A check leaves no trace: the folders it had to make and its probe files are removed, and
// an existing file is opened for writing but neither truncated nor changed.
package writable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File checks that the file path can be written whole, in place (os.WriteFile) or by writing a
// file beside it and renaming it over path: path is not a folder, its folder exists or can be
// made, a file can be created in that folder, and an existing file at path can be opened for
// writing.
func File(path string) error {
	if info, err := os.Stat(path); err == nil {
		if info.IsDir() {
			return fmt.Errorf("it is a folder, not a file")
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return Folder(filepath.Dir(path))
}

// Folder checks that files can be written in the folder path: it exists or can be made, and a
// file can be created in it.
func Folder(path string) error {
	made, err := makeFolders(path)
	defer removeFolders(made)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(path, ".probe-*")
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Remove(f.Name())
}

// makeFolders makes the folder dir and those above it that are missing, and returns those it
// may have made, deepest first (for removeFolders), also when it fails.
func makeFolders(dir string) ([]string, error) {
	if err := BrokenLink(dir); err != nil {
		return nil, err
	}
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	return missing, os.MkdirAll(dir, 0o755)
}

// removeFolders removes the folders makeFolders made, deepest first, each only if still empty.
func removeFolders(dirs []string) {
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

// BrokenLink reports path, or the first folder above it, that is a symbolic link leading nowhere:
// to nothing, or round a loop. os.MkdirAll says only "file exists" for either.
func BrokenLink(path string) error {
	for d := filepath.Clean(path); ; d = filepath.Dir(d) {
		info, err := os.Lstat(d)
		if err == nil && info.Mode()&os.ModeSymlink != 0 {
			if _, err := os.Stat(d); err != nil {
				target, _ := os.Readlink(d)
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("%s is a symbolic link to %s, which does not exist", d, target)
				}
				return fmt.Errorf("%s is a symbolic link that leads nowhere (to %s): %v", d, target, errors.Unwrap(err))
			}
			return nil // a link that resolves: the folders above it are its target's
		}
		if err == nil || filepath.Dir(d) == d {
			return nil // exists, and is no link: a broken link above would have failed the Lstat
		}
	}
}
