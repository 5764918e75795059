package oauthlock

// #include "helpers.h"
// #include <stdlib.h>
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// SourceOption tunes a TokenSource (Store.Source).
type SourceOption func(*sourceConfig)

type sourceConfig struct {
	margin, lockTimeout, refreshTimeout, revalidate time.Duration
	refresher                                       Refresher
	oauth2                                          *OAuth2
}

// WithRefreshMargin refreshes this long before expiry (capped by the library at half the
// token's lifetime). Default 5 minutes.
func WithRefreshMargin(d time.Duration) SourceOption {
	return func(c *sourceConfig) { c.margin = d }
}

// WithLockTimeout is the longest wait for the credential's lock before Busy. Default 35 s.
func WithLockTimeout(d time.Duration) SourceOption {
	return func(c *sourceConfig) { c.lockTimeout = d }
}

// WithRefreshTimeout is the longest the callers wait for the refresher before Transient
// (the refresh itself keeps the lock up to 4 s longer and commits a late answer). Default
// 30 s.
func WithRefreshTimeout(d time.Duration) SourceOption {
	return func(c *sourceConfig) { c.refreshTimeout = d }
}

// WithRevalidate is how often the hot path checks the record file for another process's
// login or logout. Default 1 s.
func WithRevalidate(d time.Duration) SourceOption {
	return func(c *sourceConfig) { c.revalidate = d }
}

// WithRefresher refreshes the credential with a Go refresher instead of the record's own
// refresh config (for providers the built-in OAuth2 refresher cannot talk to).
func WithRefresher(r Refresher) SourceOption {
	return func(c *sourceConfig) { c.refresher = r }
}

// WithOAuth2 refreshes the credential with the built-in OAuth2 refresher and this config
// instead of the record's own.
func WithOAuth2(o OAuth2) SourceOption {
	return func(c *sourceConfig) { c.oauth2 = &o }
}

// TokenSource hands out a valid access token for one key, refreshing it at most once per
// expiry across every goroutine, thread and process on the machine (DESIGN.md §4). Safe for
// use by any number of goroutines at once; sources for the same key share their cached
// token within the process.
//
// Ownership: Close releases the library's source (safe to call twice, and while calls are
// still running: it is freed when the last of them returns; a refresh already running
// finishes and is committed). A source that is never closed is released when it is garbage
// collected.
type TokenSource struct {
	key string
	h   *handle
	ptr *C.oauth_lock_source
	// The last token the library handed out, converted: when the library hands out the
	// same token again (its hot path), no conversion and no allocation.
	last atomic.Pointer[cached]
	// A token further than this from its expiry is answered by the library's hot path
	// (no lock, no wait): the call is made inline even when ctx can end.
	inline time.Duration
	// The refresher's ctx timeout (refresh timeout plus the library's 4 s hard cap).
	refreshTimeout time.Duration
}

// cached holds one reference on the library token ptr, released when the entry is
// garbage collected (so a call comparing against ptr can never see its address reused).
type cached struct {
	ptr *C.oauth_lock_token
	tok AccessToken
	// Until when, on the monotonic clock since epoch, the token is far from its expiry
	// (forever when it has none); compared with coarseNow.
	inlineUntil time.Duration
}

// epoch is the origin of cached.inlineUntil.
var epoch = time.Now()

var (
	coarse      atomic.Int64
	coarseStart sync.Once
)

// coarseNow is time.Since(epoch) as of at most ~100 ms ago: a clock read costs tens of
// nanoseconds on some machines (virtual ones), a third of the hot path, and the inline
// decision has seconds of slack. A goroutine started by the first call that needs it keeps
// it up to date (10 wake-ups a second).
func coarseNow() time.Duration {
	coarseStart.Do(func() {
		coarse.Store(int64(time.Since(epoch)))
		go func() {
			for range time.Tick(100 * time.Millisecond) {
				coarse.Store(int64(time.Since(epoch)))
			}
		}()
	})
	return time.Duration(coarse.Load())
}

// Source makes a token source for key, refreshed by the record's own refresh config (saved
// with the login) unless WithRefresher or WithOAuth2 says otherwise. The record need not
// exist yet.
//
// Errors: InvalidArgument (a bad key or option), Insecure (WithOAuth2 with a plain-http
// token URL other than loopback).
func (s *Store) Source(key string, opts ...SourceOption) (*TokenSource, error) {
	var cfg sourceConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.refresher != nil && cfg.oauth2 != nil {
		return nil, invalid(key, "WithRefresher and WithOAuth2 are exclusive")
	}
	var o C.oauth_lock_source_options
	C.oauth_lock_source_options_default(&o)
	for _, d := range []struct {
		v    time.Duration
		dst  *C.uint64_t
		name string
	}{
		{cfg.margin, &o.refresh_margin_ms, "refresh margin"},
		{cfg.lockTimeout, &o.lock_timeout_ms, "lock timeout"},
		{cfg.refreshTimeout, &o.refresh_timeout_ms, "refresh timeout"},
		{cfg.revalidate, &o.revalidate_ms, "revalidate"},
	} {
		if d.v < 0 {
			return nil, invalid(key, "the %s is negative: %v", d.name, d.v)
		}
		if d.v > 0 {
			*d.dst = C.uint64_t(d.v.Milliseconds())
		}
	}
	if !s.h.acquire() {
		return nil, ErrClosed
	}
	defer s.h.release()
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var r C.ol_source_result
	switch {
	case cfg.refresher != nil:
		h := cgo.NewHandle(&goRefresher{r: cfg.refresher, timeout: time.Duration(o.refresh_timeout_ms)*time.Millisecond + 4*time.Second})
		r = C.ol_source_new_go(s.ptr, k, C.uintptr_t(h), &o)
		if r.code != 0 {
			h.Delete() // the library did not take the userdata
		}
	case cfg.oauth2 != nil:
		js, _ := json.Marshal(cfg.oauth2.config())
		j := C.CString(string(js))
		defer C.free(unsafe.Pointer(j))
		r = C.ol_source_new_oauth2(s.ptr, k, j, &o)
	default:
		r = C.ol_source_new(s.ptr, k, &o)
	}
	if r.code != 0 {
		return nil, errorOf(r.code, r.error)
	}
	p := r.source
	t := &TokenSource{
		key:            key,
		h:              newHandle(func() { C.oauth_lock_source_free(p) }),
		ptr:            p,
		inline:         time.Duration(o.refresh_margin_ms)*time.Millisecond + 2*time.Second,
		refreshTimeout: time.Duration(o.refresh_timeout_ms) * time.Millisecond,
	}
	runtime.AddCleanup(t, func(h *handle) { h.close() }, t.h)
	return t, nil
}

// Key is the source's credential key.
func (t *TokenSource) Key() string { return t.key }

// Close releases the source. Safe to call twice; calls still running finish first.
func (t *TokenSource) Close() error {
	t.h.close()
	return nil
}

// AccessToken is a valid access token (DESIGN.md §4 access_token): the cached one while it
// is fresh (no lock, no system call beyond an occasional stat), else one refresh shared by
// every goroutine and process that needs it at the same moment.
//
// When ctx is cancelled or its deadline passes while the call waits (for the lock, the
// network, or another caller's refresh), it returns at once with an error wrapping
// ctx.Err(); a refresh already running goes on and commits (G3). A call the cached token
// answers runs inline.
//
// Errors: NeedsLogin, InvalidGrant, Terminal, Transient (and the old token has expired),
// Busy, Corrupt, UnsupportedFormat, Io, InvalidArgument, Insecure.
func (t *TokenSource) AccessToken(ctx context.Context) (AccessToken, error) {
	if done := ctx.Done(); done != nil {
		select {
		case <-done:
			return AccessToken{}, &ctxError{"access token", t.key, ctx.Err()}
		default:
		}
		if e := t.last.Load(); e == nil || coarseNow() >= e.inlineUntil {
			return t.wait(ctx, "access token", C.OL_ACCESS_TOKEN, 0, "")
		}
	}
	if !t.h.acquire() {
		return AccessToken{}, ErrClosed
	}
	tok, err := t.call(C.OL_ACCESS_TOKEN, 0, nil)
	t.h.release()
	return tok, err
}

// AccessTokenValidFor is a token valid for at least d more (refreshing early if needed),
// for work that must not be interrupted by an expiry. ctx as in AccessToken.
func (t *TokenSource) AccessTokenValidFor(ctx context.Context, d time.Duration) (AccessToken, error) {
	if d < 0 {
		return AccessToken{}, invalid(t.key, "a negative duration: %v", d)
	}
	return t.wait(ctx, "access token valid for", C.OL_VALID_FOR, uint64(d.Milliseconds()), "")
}

// Reject is called after an HTTP 401 with token (the value that was sent): it returns a
// different valid token. If another goroutine or process already refreshed, that token;
// otherwise one refresh, shared by everyone who rejected the same token. ctx as in
// AccessToken.
func (t *TokenSource) Reject(ctx context.Context, token string) (AccessToken, error) {
	return t.wait(ctx, "reject", C.OL_REJECT, 0, token)
}

// Verify forces one refresh, proving the refresh token works (it rotates it). ctx as in
// AccessToken.
func (t *TokenSource) Verify(ctx context.Context) (AccessToken, error) {
	return t.wait(ctx, "verify", C.OL_VERIFY, 0, "")
}

// wait runs a source call that may block through await.
func (t *TokenSource) wait(ctx context.Context, op string, which C.int, arg uint64, text string) (AccessToken, error) {
	return await(ctx, op, t.key, t.h, func() (AccessToken, error) {
		var c *C.char
		if which == C.OL_REJECT {
			c = C.CString(text)
			defer C.free(unsafe.Pointer(c))
		}
		return t.call(which, arg, c)
	})
}

// call makes one source call (the caller holds a reference on t.h).
func (t *TokenSource) call(which C.int, arg uint64, text *C.char) (AccessToken, error) {
	e := t.last.Load()
	var last C.uintptr_t
	if e != nil {
		last = C.uintptr_t(uintptr(unsafe.Pointer(e.ptr)))
	}
	r := C.ol_source_call(C.uintptr_t(uintptr(unsafe.Pointer(t.ptr))), which, C.uint64_t(arg),
		C.uintptr_t(uintptr(unsafe.Pointer(text))), last)
	if r.code != 0 {
		return AccessToken{}, lastErrorOf(r.code, r.string)
	}
	if r.same != 0 {
		// e (and so the token reference it holds) was alive across the call.
		tok := e.tok
		runtime.KeepAlive(e)
		return tok, nil
	}
	n := &cached{ptr: r.token, tok: tokenOf(r.token), inlineUntil: 1<<63 - 1}
	if !n.tok.ExpiresAt.IsZero() {
		n.inlineUntil = time.Since(epoch) + time.Until(n.tok.ExpiresAt) - t.inline
	}
	runtime.AddCleanup(n, func(p *C.oauth_lock_token) { C.oauth_lock_token_free(p) }, n.ptr)
	t.last.Store(n)
	return n.tok, nil
}
