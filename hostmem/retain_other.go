//go:build !(linux && cgo)

package hostmem

// Retain returns ErrUnsupported: it needs Linux, glibc and cgo.
func Retain() error { return ErrUnsupported }

func touch(int) int { return -1 }

func threadFaults(int, int, int) int64 { return -1 }
