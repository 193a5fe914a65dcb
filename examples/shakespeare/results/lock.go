package results

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in a run (or study) directory that the trainer (or the study) holds an
// exclusive OS lock on.
const LockFile = "train.lock"

// Lock is one process's exclusive hold on a run directory. The lock is flock(2)'s, so the
// kernel releases it when the process exits, however it exits (kill -9 included); the PID
// written in the file only serves the message of a second process.
type Lock struct{ f *os.File }

// LockDir takes the directory dir (a run's or a study's, creating it) for this process, or fails
// at once naming the process that holds it and flagName, the flag that chooses another.
func LockDir(dir, flagName string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		raw, _ := os.ReadFile(path)
		f.Close()
		holder := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			holder = fmt.Sprintf("another process (PID %d)", pid)
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use: %s is working in it. Wait for it to finish or stop it, or use %s for another directory", dir, holder, flagName)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the run directory back (the kernel does it anyway at exit).
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		_ = l.f.Close()
		l.f = nil
	}
}
