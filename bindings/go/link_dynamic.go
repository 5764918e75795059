//go:build oauthlock_dynamic && !oauthlock_nopkgconfig

package oauthlock

// -tags oauthlock_dynamic: liboauth_lock.so of the C tarball through its oauth-lock.pc; the
// program then needs the library at run time (LD_LIBRARY_PATH, an rpath such as
// CGO_LDFLAGS=-Wl,-rpath,<tarball>/lib, or an installed copy).

// #cgo pkg-config: oauth-lock
import "C"
