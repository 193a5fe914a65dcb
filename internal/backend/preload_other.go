//go:build !(linux && cgo)

package backend

import "errors"

// dlopenLibrary is not available here: the NVIDIA libraries are left to the plugin's own search.
func dlopenLibrary(path string, global bool) error {
	return errors.New("preloading libraries needs Linux and cgo")
}
