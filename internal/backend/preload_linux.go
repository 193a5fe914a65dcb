//go:build linux && cgo

package backend

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// smi_dlopen opens path with RTLD_NOW and RTLD_LOCAL or RTLD_GLOBAL, and never closes it. It
// returns NULL on success, else a copy of dlerror's message (to be freed by the caller).
static char* smi_dlopen(const char* path, int global) {
	void* handle = dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
	if (handle != NULL) {
		return NULL;
	}
	const char* msg = dlerror();
	return strdup(msg != NULL ? msg : "dlopen failed");
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// dlopenLibrary loads the shared library at path into the process for good, with all its symbols
// bound now. The loader then answers a later dlopen of its soname with it, local or global; global
// also makes its symbols available to the libraries loaded after it.
func dlopenLibrary(path string, global bool) error {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	g := C.int(0)
	if global {
		g = 1
	}
	msg := C.smi_dlopen(cPath, g)
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(C.GoString(msg))
}
