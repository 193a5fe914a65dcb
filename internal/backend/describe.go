package backend

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
)

// Description is b.Description() as the project's programs publish it (result files, reports):
// with the user's home directory written as ~ (HomeAsTilde), since the XLA CPU plugin lives under
// ~/.local/lib, so that nothing published names the machine's paths.
func Description(b backends.Backend) string { return HomeAsTilde(b.Description()) }

// HomeAsTilde returns s with the user's home directory, wherever it begins a path (followed by a
// slash), written as ~; s unchanged when the home directory is unknown or the root.
func HomeAsTilde(s string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return s
	}
	home = filepath.Clean(home)
	if home == "/" || home == "." || !filepath.IsAbs(home) {
		return s
	}
	return strings.ReplaceAll(s, home+"/", "~/")
}

// DescribedAs returns b described as desc: the same backend, whose Description() is desc. SMI's
// choices per platform (spectral.Accelerator, the filter's defaults) read only the description, so
// graphs built on it are what SMI builds for the platform desc names (for example "xla:cuda"),
// while they compile and run on b. For tests and for counting a platform's programs without it.
func DescribedAs(b backends.Backend, desc string) backends.Backend { return describedAs{b, desc} }

type describedAs struct {
	backends.Backend
	desc string
}

func (b describedAs) Description() string { return b.desc }
