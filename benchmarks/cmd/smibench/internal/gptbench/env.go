package gptbench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/internal/machine"
)

// Env describes where and when the measurements ran, for the report's header.
type Env struct {
	Date        time.Time
	CPU         string
	NumCPU      int
	MemTotal    string
	OS          string
	GoVersion   string
	GoMLX       string
	Backend     string
	BackendDesc string
	LoadStart   string
	LoadEnd     string
	// Revision is the git commit measured, with "+changes" if the tree differed from it.
	Revision string
}

// CurrentEnv reads the machine description (Linux /proc where available).
func CurrentEnv(b backends.Backend) Env {
	e := Env{
		Date:      time.Now().UTC(),
		CPU:       machine.CPU(),
		NumCPU:    runtime.NumCPU(),
		MemTotal:  procField("/proc/meminfo", "MemTotal"),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		GoVersion: runtime.Version(),
		LoadStart: LoadAverage(),
		Revision:  gitRevision(),
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == "github.com/gomlx/gomlx" {
				e.GoMLX = m.Version
			}
		}
	}
	if b != nil {
		e.Backend = b.Name()
		e.BackendDesc = b.Description()
	}
	return e
}

// gitRevision names the commit of the working tree, "" outside a git checkout.
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	// Only the Go sources matter to the figures.
	diff, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", "*.go", "go.mod", "go.sum").Output()
	if err == nil && len(strings.TrimSpace(string(diff))) > 0 {
		rev += "+changes"
	}
	return rev
}

// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures, or "" where unavailable.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}

// HumanBytes formats a byte count in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// HumanDuration formats with 3 significant digits in a fitting unit.
func HumanDuration(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s >= 1:
		return fmt.Sprintf("%.3g s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.3g ms", s*1e3)
	default:
		return fmt.Sprintf("%.3g µs", s*1e6)
	}
}
