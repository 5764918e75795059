//go:build !oauthlock_dynamic && !oauthlock_nopkgconfig

package oauthlock

// The default: liboauth_lock.a of the C tarball, found through its oauth-lock-static.pc
// (PKG_CONFIG_PATH=<tarball>/lib/pkgconfig). The program needs no library at run time.

// #cgo pkg-config: oauth-lock-static
import "C"
