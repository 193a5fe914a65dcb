package backend

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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

// TestInstallerSaysDownloadSize: every pinned wheel of scripts/install-xla-cuda.sh has its size,
// and the dry run gives the sum of those to download (all of them, with an empty cache) for each
// CUDA version, in place of a size typed into the docs.
func TestInstallerSaysDownloadSize(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("JAX's CUDA plugins exist for Linux x86_64 only; the installer refuses elsewhere")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "install-xla-cuda.sh"))
	require.NoError(t, err)
	src, err := os.ReadFile(script)
	require.NoError(t, err)
	for _, flavor := range []string{"cuda13", "cuda12"} {
		_, block, ok := strings.Cut(string(src), "\n"+strings.ToUpper(flavor)+"_WHEELS=\"\n")
		require.True(t, ok, "no %s pins", flavor)
		block, _, _ = strings.Cut(block, "\n\"")
		var total int64
		var wheels int
		for _, line := range strings.Split(block, "\n") {
			fields := strings.Fields(line)
			require.Len(t, fields, 4, "pin %q: want requirement, file, sha256, size", line)
			size, err := strconv.ParseInt(fields[3], 10, 64)
			require.NoError(t, err, "pin %q", line)
			require.Positive(t, size, "pin %q", line)
			total += size
			wheels++
		}
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "SMI_CUDA_DRY_RUN=1", "SMI_PJRT_FORCE=1", "SMI_CUDA_FLAVOR="+flavor,
			"SMI_CACHE_DIR="+t.TempDir(), "SMI_PJRT_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		want := fmt.Sprintf("dry run: %d wheel(s), %.2f GB, to download", wheels, float64(total)/1e9)
		require.Contains(t, string(out), want, "%s", out)
	}
}

// TestInstallerRefusesBadArguments: scripts/install-xla-cuda.sh takes no arguments and its
// switches only as 0 or 1: anything else (a -help it once ignored, SMI_CUDA_DRY_RUN=true, which
// it read as no dry run and went on to download gigabytes) is refused with status 2 before any
// work; -h prints its header.
func TestInstallerRefusesBadArguments(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "install-xla-cuda.sh"))
	require.NoError(t, err)
	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), append([]string{"SMI_CACHE_DIR=" + t.TempDir(), "SMI_PJRT_DIR=" + t.TempDir()}, env...)...)
		out, err := cmd.CombinedOutput()
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}
	code, out := run(nil, "-h")
	require.Equal(t, 0, code, "%s", out)
	require.Contains(t, out, "Usage: [SMI_CUDA_DRY_RUN=1] scripts/install-xla-cuda.sh")
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"-help"}, ""}, // -help is help too
		{nil, []string{"cuda12"}, "takes no arguments, got: cuda12"},
		{[]string{"SMI_CUDA_DRY_RUN=true"}, nil, "SMI_CUDA_DRY_RUN must be 0 or 1, got 'true'"},
		{[]string{"SMI_PJRT_FORCE=yes"}, nil, "SMI_PJRT_FORCE must be 0 or 1, got 'yes'"},
	} {
		code, out := run(c.env, c.args...)
		if c.want == "" {
			require.Equal(t, 0, code, "%s", out)
			require.Contains(t, out, "Usage:")
			continue
		}
		require.Equal(t, 2, code, "%v %v: %s", c.env, c.args, out)
		require.Contains(t, out, c.want)
	}
}
