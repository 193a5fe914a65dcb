package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/smi-gomlx/smi/internal/writable"
)

// output is a file a run writes, or a folder it writes files in, and the flag that names it.
type output struct {
	flag, value string // the flag and its value
	folder      string // the folder, for a folder: value itself, or the folder of -out's plots (plotDir)
}

// outputs lists what the section (see main) writes, by the flags that name it.
func outputs(section, out, jsonOut, devicesJSON, pluginsOut, programsDir string) ([]output, error) {
	var outs []output
	add := func(flag, value, folder string) {
		if value != "" {
			outs = append(outs, output{flag: flag, value: value, folder: folder})
		}
	}
	switch section {
	case "all":
		if filepath.Clean(plotDir(out)) == filepath.Clean(out) {
			return nil, fmt.Errorf("-out %s: the report and its plots' folder would both be %s; give the report an extension, such as .md",
				out, plotDir(out))
		}
		add("-out", out, "")
		add("-out", out, plotDir(out))
	case sectionRender:
		add("-out", out, "")
	case "devices":
		add("-devices-json", devicesJSON, "")
	case "strategies":
		add("-json", jsonOut, "")
	case "gpu-programs":
		add("-json", jsonOut, "")
		add("-programs-dir", programsDir, programsDir)
	case "plugins":
		add("-plugins-out", pluginsOut, "")
	}
	return outs, nil
}

// checkOutputs checks, before anything is measured, that each output can be written: its folder
// exists or can be made, and a file can be created there. It leaves nothing behind, and opens an
// existing file for writing without truncating or changing it, so that a run failing later
// destroys nothing.
func checkOutputs(outs []output) error {
	for _, o := range outs {
		var err error
		what := "cannot write it"
		switch o.folder {
		case "":
			err = writable.File(o.value)
		case o.value:
			err = writable.Folder(o.folder)
			what = "cannot write files in it"
		default:
			err = writable.Folder(o.folder)
			what = "cannot write files in its plots' folder " + o.folder
		}
		if err != nil {
			return fmt.Errorf("%s %s: %s: %w", o.flag, o.value, what, err)
		}
	}
	return nil
}

// writeFile writes data to the file path, making its folder first when it does not exist yet (as
// checkOutputs accepts, so that a run does not measure and then fail to write).
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeJSON writes v to the file path as jsonBytes gives it, with writeFile.
func writeJSON(path string, v any) error {
	data, err := jsonBytes(v)
	if err != nil {
		return err
	}
	return writeFile(path, data)
}

// jsonBytes is v as indented JSON with a final newline.
func jsonBytes(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", " ")
	return append(data, '\n'), err
}
