package study

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/internal/backend"
)

// What a study records of where, how and with what code it ran.

// accelerator names the GPUs a GPU backend computes on ("1 x NVIDIA H200, driver 580.159.03",
// from nvidia-smi; else the backend's description of its first device); "" for a CPU backend.
func accelerator(b backends.Backend) string {
	switch backend.PlatformOf(b) {
	case "cpu", "go", "":
		return ""
	case "cuda":
		if out, err := exec.Command("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader").Output(); err == nil {
			var names []string
			count := map[string]int{}
			for _, line := range strings.Split(string(out), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					name, driver, _ := strings.Cut(line, ",")
					key := strings.TrimSpace(name)
					if d := strings.TrimSpace(driver); d != "" {
						key += ", driver " + d
					}
					if count[key] == 0 {
						names = append(names, key)
					}
					count[key]++
				}
			}
			for i, n := range names {
				names[i] = fmt.Sprintf("%d x %s", count[n], n)
			}
			if len(names) > 0 {
				return strings.Join(names, "; ")
			}
		}
	}
	if b.NumDevices() > 0 {
		return b.DeviceDescription(0)
	}
	return ""
}

// publicArgs is a command's arguments as the study records them in the files it publishes and
// in the report: a path in the working directory relative to it, one under the user's home
// directory as ~/..., and any other path (outside both, as -data's file often is) by its file
// name after ".../": the machine's own paths mean nothing elsewhere. A path is an argument, or a
// -flag=value's value, that is absolute or begins with "..".
func publicArgs(args []string) []string {
	wd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	public := func(p string) string {
		if !filepath.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../") {
			return p
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return ".../" + filepath.Base(p)
		}
		for _, base := range []struct{ dir, as string }{{wd, ""}, {home, "~/"}} {
			if base.dir == "" || base.dir == "/" || !filepath.IsAbs(base.dir) {
				continue
			}
			if rel, err := filepath.Rel(base.dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				if base.as == "" {
					return rel
				}
				return base.as + rel
			}
		}
		return ".../" + filepath.Base(abs)
	}
	out := make([]string, len(args))
	for i, a := range args {
		if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "-") {
			out[i] = name + "=" + public(value)
		} else {
			out[i] = public(a)
		}
	}
	return out
}

// gitRevision names the code's git revision, "+dirty" with uncommitted changes to the Go code
// or its modules (not to data such as the study's own published files): the revision Go stamped
// into a binary built with go build, else (go run and go test stamp none) the checkout the
// program runs in, when that checkout is this module's: a study run from another repository
// recorded that repository's revision. Outside a git checkout (a copy of the tree on a rented
// machine) it is $SMI_GIT_REVISION, which the copy's sender can set, marked "(not checked)";
// else "unknown".
func gitRevision() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				return rev[:min(12, len(rev))] + "+dirty"
			}
			return rev[:min(12, len(rev))]
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		if rev := strings.TrimSpace(os.Getenv("SMI_GIT_REVISION")); rev != "" {
			return rev + " (not checked)"
		}
		return "unknown"
	}
	if top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output(); err != nil || !isThisModule(strings.TrimSpace(string(top))) {
		return "unknown (run outside this project's checkout)"
	}
	rev := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD", "--", "*.go", "go.mod", "go.sum").Run() != nil {
		rev += "+dirty"
	}
	return rev
}

// isThisModule reports whether the folder top holds this program's module (its go.mod names the
// module of the running program's main package).
func isThisModule(top string) bool {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Path == "" {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(top, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == info.Main.Path
		}
	}
	return false
}
