package backend

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInstallerAsksAsProgramsDo: scripts/install-xla-cuda.sh (make setup-cuda) installs nothing
// when python3 already has JAX's CUDA plugin, and the programs then load that plugin: both ask
// python3 for its site-packages with the same file (site_packages.py). With a plugin placed in a
// fake user site-packages (PYTHONUSERBASE), the programs' question lists that directory, and the
// installer's dry run names the plugin the programs would take from python3's directories.
func TestInstallerAsksAsProgramsDo(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("JAX's CUDA plugins exist for Linux x86_64 only; the installer refuses elsewhere")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	userBase := t.TempDir()
	t.Setenv("PYTHONUSERBASE", userBase)
	t.Setenv(CUDASitePackagesEnv, "")
	t.Setenv("SMI_PJRT_FORCE", "")
	python, dirs := pythonSitePackages()
	var userSite string
	for _, dir := range dirs {
		if strings.HasPrefix(dir, userBase) {
			userSite = dir
		}
	}
	require.NotEmpty(t, userSite, "%s's site-packages (%q) do not include the user site-packages under PYTHONUSERBASE=%s", python, dirs, userBase)
	tree(t, userSite, jax13)

	var roots []cudaRoot
	for _, dir := range dirs {
		roots = append(roots, cudaRoot{dir, python + " site-packages"})
	}
	want, ok, _ := findCUDAPlugin(roots, nvidiaGPU().CUDAMajor)
	require.True(t, ok, "the programs find no plugin in %q", dirs)

	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "install-xla-cuda.sh"))
	cmd.Dir = t.TempDir() // the script finds its files from its own path, not the working directory
	cmd.Env = append(os.Environ(), "SMI_CUDA_DRY_RUN=1", "SMI_CACHE_DIR="+t.TempDir(), "SMI_PJRT_DIR="+t.TempDir())
	abs, err := filepath.Abs(cmd.Args[1])
	require.NoError(t, err)
	cmd.Args[1] = abs
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "JAX's CUDA plugin is installed already: "+want.Path+",",
		"the installer's answer differs from the programs' (%s)", want.Path)
}
