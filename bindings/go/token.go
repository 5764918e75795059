package oauthlock

// #include "helpers.h"
import "C"

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// AccessToken is a valid access token. Its String, GoString, Format (every fmt verb) and
// LogValue (log/slog) show only the fingerprint, never the value: a token printed or
// logged by mistake does not leak. Send Value; log Fingerprint.
type AccessToken struct {
	// The token to send (Authorization: <TokenType> <Value>). A secret.
	Value string
	// "Bearer" unless the provider said otherwise.
	TokenType string
	// When it expires; the zero Time when the provider gave no expiry (such a token is used
	// until rejected).
	ExpiresAt time.Time
	// The record generation it came from (it rises by one on every write of the record).
	Generation uint64
	// The first 8 hex digits of the value's SHA-256: safe to log.
	Fingerprint string
}

// tokenOf copies what the library's token holds (one crossing; the token stays the
// caller's to free).
func tokenOf(t *C.oauth_lock_token) AccessToken {
	i := C.ol_token_read(t)
	tok := AccessToken{
		Value:       C.GoString(i.value),
		TokenType:   C.GoString(i._type),
		Generation:  uint64(i.generation),
		Fingerprint: C.GoString(i.fingerprint),
	}
	if ms := int64(i.expires_at_ms); ms != 0 {
		tok.ExpiresAt = time.UnixMilli(ms)
	}
	return tok
}

// String shows the fingerprint only: "token 1a2b3c4d".
func (t AccessToken) String() string {
	if t.Fingerprint == "" {
		return "token (none)"
	}
	return "token " + t.Fingerprint
}

// GoString (%#v) shows the fingerprint only.
func (t AccessToken) GoString() string {
	return fmt.Sprintf("oauthlock.AccessToken{Fingerprint: %q, Generation: %d}", t.Fingerprint, t.Generation)
}

// Format makes every verb (%v, %+v, %s, %q, %x, ...) print String (GoString for %#v).
func (t AccessToken) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, t.GoString())
		return
	}
	fmt.Fprint(f, t.String())
}

// LogValue logs the fingerprint, generation and expiry, never the value.
func (t AccessToken) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("fingerprint", t.Fingerprint),
		slog.Uint64("generation", t.Generation),
		slog.Time("expires_at", t.ExpiresAt),
	)
}

// SetAuthHeader sets the request's Authorization header: "<TokenType> <Value>".
func (t AccessToken) SetAuthHeader(r *http.Request) {
	kind := t.TokenType
	if kind == "" || kind == "bearer" {
		kind = "Bearer"
	}
	r.Header.Set("Authorization", kind+" "+t.Value)
}
