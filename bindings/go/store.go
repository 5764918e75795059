package oauthlock

// #include "helpers.h"
// #include <stdlib.h>
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"unsafe"
)

// Store is a store of credentials shared by every thread and process that opens it: a
// directory of records (DESIGN.md §3) or a PostgreSQL database (§10). Safe for use by any number of goroutines at once.
//
// Ownership: a Store holds a library handle; Close releases it (safe to call twice, and
// while calls are still running: the handle is freed when the last of them returns; a store
// never closed is released when it is garbage collected). Token sources made from a store
// stay valid after the store is closed.
type Store struct {
	h   *handle
	ptr *C.oauth_lock_store
}

var setUp sync.Once

// setUpOnce names the language in the records this process writes and routes the library's
// events to log/slog (see SetLogger), once per process, before the first store is opened.
func setUpOnce() {
	setUp.Do(func() {
		lang := C.CString("go")
		C.oauth_lock_set_client_lang(lang)
		C.free(unsafe.Pointer(lang))
		r := C.ol_add_go_listener()
		if r.code != 0 {
			C.oauth_lock_error_free(r.error)
		}
	})
}

// Open opens the store at location: a directory (created with mode 0700 if missing), a
// postgresql://user@host:port/database URL (the fleet store, DESIGN.md §10: the password
// from the URL or PGPASSWORD, never in a message; connected at first use), or "" for the
// default store ($OAUTH_LOCK_STORE, else $OAUTH_LOCK_DIR, else $XDG_STATE_HOME/oauth-lock,
// i.e. ~/.local/state/oauth-lock). The location is handed to the library as it is.
//
// Errors: Io (the directory cannot be created or opened), InvalidArgument (a malformed URL,
// an unknown sslmode, no home directory for the default).
func Open(location string) (*Store, error) {
	setUpOnce()
	var dir *C.char
	if location != "" {
		dir = C.CString(location)
		defer C.free(unsafe.Pointer(dir))
	}
	r := C.ol_store_new(dir)
	if r.code != 0 {
		return nil, errorOf(r.code, r.error)
	}
	p := r.store
	s := &Store{h: newHandle(func() { C.oauth_lock_store_free(p) }), ptr: p}
	runtime.AddCleanup(s, func(h *handle) { h.close() }, s.h)
	return s, nil
}

// Close releases the store. Safe to call twice; calls still running finish first.
func (s *Store) Close() error {
	s.h.close()
	return nil
}

// stringCall runs one of the helpers that return a library string, returning it as a Go
// string (the library's copy is freed).
func (s *Store) stringCall(call func() C.ol_result) (string, error) {
	if !s.h.acquire() {
		return "", ErrClosed
	}
	defer s.h.release()
	r := call()
	if r.code != 0 {
		return "", errorOf(r.code, r.error)
	}
	defer C.oauth_lock_string_free(r.string)
	return C.GoString(r.string), nil
}

// Dir is the store's location: its directory (canonical path), or its URL without the
// password.
func (s *Store) Dir() (string, error) {
	return s.stringCall(func() C.ol_result { return C.ol_store_dir(s.ptr) })
}

// PathOf is the record file of key, whether or not it exists.
//
// Errors: InvalidArgument (a bad key: 1 to 64 bytes of printable ASCII, no leading '.').
func (s *Store) PathOf(key string) (string, error) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	return s.stringCall(func() C.ol_result { return C.ol_store_path_of(s.ptr, k) })
}

// Status says what is known about key without locking or refreshing (tokens appear only
// as fingerprints). A missing record is a Status with Exists false, not an error.
//
// Errors: InvalidArgument (a bad key).
func (s *Store) Status(key string) (Status, error) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	js, err := s.stringCall(func() C.ol_result { return C.ol_store_status(s.ptr, k) })
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		return Status{}, invalid(key, "the library's status does not parse: %v", err)
	}
	return st, nil
}

// List is the status of every credential in the store, ordered by key.
//
// Errors: Io (the directory cannot be listed).
func (s *Store) List() ([]Status, error) {
	js, err := s.stringCall(func() C.ol_result { return C.ol_store_list(s.ptr) })
	if err != nil {
		return nil, err
	}
	var all []Status
	if err := json.Unmarshal([]byte(js), &all); err != nil {
		return nil, invalid("", "the library's list does not parse: %v", err)
	}
	return all, nil
}

// SaveOption changes how Save writes.
type SaveOption func(*uint32)

// AllowDowngrade lets Save replace a credential that has a refresh token with one that has
// none (otherwise Downgrade).
func AllowDowngrade() SaveOption {
	return func(flags *uint32) { *flags |= C.OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE }
}

// Save stores a login for key (DESIGN.md §4 save): under the credential's lock (waiting at
// most 35 s: Busy), refusing to drop a refresh token (Downgrade) unless AllowDowngrade.
// Nothing is written unless it succeeds. ctx ends the wait, not a write already started.
//
// Errors: InvalidArgument, Insecure, Downgrade, Busy, Corrupt, UnsupportedFormat, Io.
func (s *Store) Save(ctx context.Context, key string, cred Credential, opts ...SaveOption) error {
	js, err := cred.json(true)
	if err != nil {
		return invalid(key, "the credential: %v", err)
	}
	return s.SaveJSON(ctx, key, js, opts...)
}

// SaveJSON is Save with the credential as the C ABI's JSON: a token response
// (access_token, refresh_token, expires_in, ...) with an optional "refresh" object (the
// built-in OAuth2 refresher's config) and an optional "mirror" object.
func (s *Store) SaveJSON(ctx context.Context, key string, credentialJSON []byte, opts ...SaveOption) error {
	var flags uint32
	for _, o := range opts {
		o(&flags)
	}
	_, err := await(ctx, "save", key, s.h, func() (struct{}, error) {
		k, j := C.CString(key), C.CString(string(credentialJSON))
		defer C.free(unsafe.Pointer(k))
		defer C.free(unsafe.Pointer(j))
		r := C.ol_store_save(s.ptr, k, j, C.uint32_t(flags))
		if r.code != 0 {
			return struct{}{}, errorOf(r.code, r.error)
		}
		return struct{}{}, nil
	})
	return err
}

// Clear removes the credential key (a logout; the lock file stays) and says whether there
// was a record. Takes the lock like Save.
//
// Errors: InvalidArgument, Busy, Io.
func (s *Store) Clear(ctx context.Context, key string) (existed bool, err error) {
	return await(ctx, "clear", key, s.h, func() (bool, error) {
		k := C.CString(key)
		defer C.free(unsafe.Pointer(k))
		r := C.ol_store_clear(s.ptr, k)
		if r.code != 0 {
			return false, errorOf(r.code, r.error)
		}
		return r.existed != 0, nil
	})
}

// Verify forces one refresh of key with its record's own refresh config, proving the
// refresh token works (it rotates it).
//
// Errors: as TokenSource.AccessToken.
func (s *Store) Verify(ctx context.Context, key string) (AccessToken, error) {
	return await(ctx, "verify", key, s.h, func() (AccessToken, error) {
		k := C.CString(key)
		defer C.free(unsafe.Pointer(k))
		r := C.ol_store_verify(s.ptr, k)
		if r.code != 0 {
			return AccessToken{}, errorOf(r.code, r.error)
		}
		defer C.oauth_lock_token_free(r.token)
		return tokenOf(r.token), nil
	})
}

type outcome[T any] struct {
	v   T
	err error
}

// await runs call, which may block in the library, holding a reference on h. When ctx can
// end, call runs on a goroutine of its own and await returns as soon as ctx is done (with
// ctx.Err() wrapped) while call goes on: a refresh or a save already running finishes and
// commits (G3), and h stays valid until it returns.
func await[T any](ctx context.Context, op, key string, h *handle, call func() (T, error)) (T, error) {
	var zero T
	if !h.acquire() {
		return zero, ErrClosed
	}
	done := ctx.Done()
	if done == nil {
		defer h.release()
		return call()
	}
	if err := ctx.Err(); err != nil {
		h.release()
		return zero, &ctxError{op, key, err}
	}
	ch := make(chan outcome[T], 1)
	go func() {
		defer h.release()
		v, err := call()
		ch <- outcome[T]{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-done:
		return zero, &ctxError{op, key, ctx.Err()}
	}
}
