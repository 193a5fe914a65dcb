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
