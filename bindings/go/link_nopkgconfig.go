//go:build oauthlock_nopkgconfig

package oauthlock

// -tags oauthlock_nopkgconfig: no pkg-config; the flags come from the environment alone, e.g.
// CGO_CFLAGS=-I<dir of oauth_lock.h> CGO_LDFLAGS="<dir>/liboauth_lock.a -lpthread -ldl -lm".
