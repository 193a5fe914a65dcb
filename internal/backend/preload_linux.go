//go:build linux && cgo

package backend

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// smi_dlopen_global opens path with RTLD_NOW|RTLD_GLOBAL and never closes it. It returns NULL on
// success, else a copy of dlerror's message (to be freed by the caller).
static char* smi_dlopen_global(const char* path) {
	void* handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
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

// dlopenGlobal loads the shared library at path into the process for good: its symbols become
// global, and the loader answers a later dlopen of its soname with it.
func dlopenGlobal(path string) error {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	msg := C.smi_dlopen_global(cPath)
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(C.GoString(msg))
}
