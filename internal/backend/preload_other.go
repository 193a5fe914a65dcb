//go:build !(linux && cgo)

package backend

import "errors"

// dlopenGlobal is not available here: the NVIDIA libraries are left to the plugin's own search.
func dlopenGlobal(path string) error {
	return errors.New("preloading libraries needs Linux and cgo")
}
