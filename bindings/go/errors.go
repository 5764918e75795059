package oauthlock

// #include "helpers.h"
// #include <stdlib.h>
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Code is an error code of DESIGN.md §5, with the stable numbers of the C ABI's
// oauth_lock_code (1 to 11), plus the C ABI's own NullParameter and Panic.
type Code int

// The codes, in DESIGN.md §5's order.
const (
	CodeNeedsLogin        Code = 1
	CodeInvalidGrant      Code = 2
	CodeTerminal          Code = 3
	CodeTransient         Code = 4
	CodeBusy              Code = 5
	CodeDowngrade         Code = 6
	CodeCorrupt           Code = 7
	CodeUnsupportedFormat Code = 8
	CodeIo                Code = 9
	CodeInvalidArgument   Code = 10
	CodeInsecure          Code = 11
	// A NULL pointer reached the C ABI: a bug in this package.
	CodeNullParameter Code = 100
	// A panic inside the library, caught at the boundary: a bug in oauth-lock.
	CodePanic Code = 101
)

var codeNames = map[Code]string{
	CodeNeedsLogin:        "NeedsLogin",
	CodeInvalidGrant:      "InvalidGrant",
	CodeTerminal:          "Terminal",
	CodeTransient:         "Transient",
	CodeBusy:              "Busy",
	CodeDowngrade:         "Downgrade",
	CodeCorrupt:           "Corrupt",
	CodeUnsupportedFormat: "UnsupportedFormat",
	CodeIo:                "Io",
	CodeInvalidArgument:   "InvalidArgument",
	CodeInsecure:          "Insecure",
	CodeNullParameter:     "NullParameter",
	CodePanic:             "Panic",
}

// String is the code's DESIGN.md name ("NeedsLogin", ...), the same in every language.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// codeNamed is the code called name ("Corrupt", ...), 0 if none.
func codeNamed(name string) Code {
	for c, n := range codeNames {
		if n == name {
			return c
		}
	}
	return 0
}

// Error is every error of the library: its code, the key and the location it is about
// (the record's path, or the lock's for Busy), the provider's OAuth error string where there
// is one, and the library's message. Messages never hold a token.
//
// Match a kind with errors.Is(err, oauthlock.ErrNeedsLogin) (and the other sentinels), or
// get the details with errors.As(err, &e) for e of type *oauthlock.Error.
type Error struct {
	Code Code
	// The credential's key, if the error is about one.
	Key string
	// The record's path (the lock's for Busy), if any.
	Location string
	// The provider's OAuth error ("invalid_grant", "invalid_client", ...), if any.
	OAuthError string
	// What was wrong, naming the key and the location.
	Message  string
	sentinel bool
}

// Error is "oauthlock: <Code>: <message>".
func (e *Error) Error() string {
	if e.Message == "" {
		return "oauthlock: " + e.Code.String()
	}
	return "oauthlock: " + e.Code.String() + ": " + e.Message
}

// Is matches the sentinel of the error's code: errors.Is(err, oauthlock.ErrBusy).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel && t.Code == e.Code
}

// Retryable says whether the same call may succeed later without a fix or a login
// (Transient and Busy).
func (e *Error) Retryable() bool {
	return e.Code == CodeTransient || e.Code == CodeBusy
}

func sentinel(c Code) *Error { return &Error{Code: c, sentinel: true} }

// The sentinels, one per code of DESIGN.md §5, for errors.Is.
var (
	// No record, no refresh token, or the record is marked dead: log in again.
	ErrNeedsLogin = sentinel(CodeNeedsLogin)
	// The provider rejected the refresh token and no other writer rotated it: log in again.
	ErrInvalidGrant = sentinel(CodeInvalidGrant)
	// Another terminal OAuth error (invalid_client, invalid_scope, ...; see OAuthError).
	ErrTerminal = sentinel(CodeTerminal)
	// Network error, timeout, HTTP 5xx or 429, a body that is not an OAuth response: retry.
	ErrTransient = sentinel(CodeTransient)
	// The credential's lock was not obtained in time: retry.
	ErrBusy = sentinel(CodeBusy)
	// A save refused because it would drop a refresh token (see AllowDowngrade).
	ErrDowngrade = sentinel(CodeDowngrade)
	// The record does not parse; it is left untouched.
	ErrCorrupt = sentinel(CodeCorrupt)
	// The record is of a newer format than this library; it is left untouched.
	ErrUnsupportedFormat = sentinel(CodeUnsupportedFormat)
	// A file-system error.
	ErrIo = sentinel(CodeIo)
	// A bad key, option, config or credential.
	ErrInvalidArgument = sentinel(CodeInvalidArgument)
	// A plain-http token URL other than loopback.
	ErrInsecure = sentinel(CodeInsecure)
)

// ErrClosed is returned by calls on a Store or TokenSource after its Close.
var ErrClosed = errors.New("oauthlock: closed")

// errorOf turns a failed call's oauth_lock_error into an *Error and frees it.
func errorOf(code C.int, e *C.oauth_lock_error) error {
	defer C.oauth_lock_error_free(e)
	if e == nil {
		return &Error{Code: Code(code), Message: "no error was reported"}
	}
	return errorFromJSON(code, C.GoString(C.oauth_lock_error_json(e)))
}

// lastErrorOf turns the last-error JSON a helper read right after a failed call into an
// *Error and frees it.
func lastErrorOf(code C.int, js *C.char) error {
	defer C.oauth_lock_string_free(js)
	return errorFromJSON(code, C.GoString(js))
}

// errorFromJSON reads the library's error JSON {"code", "code_number", "message", "key",
// "path", "oauth_error"}.
func errorFromJSON(code C.int, js string) error {
	out := &Error{Code: Code(code)}
	var j struct {
		Message    string  `json:"message"`
		Key        *string `json:"key"`
		Path       *string `json:"path"`
		OAuthError *string `json:"oauth_error"`
	}
	if json.Unmarshal([]byte(js), &j) != nil {
		out.Message = "the library's error does not parse"
		return out
	}
	out.Message, out.Key, out.Location, out.OAuthError = j.Message, str(j.Key), str(j.Path), str(j.OAuthError)
	return out
}

// invalid is an InvalidArgument raised on the Go side (before any call into the library).
func invalid(key, format string, args ...any) error {
	return &Error{Code: CodeInvalidArgument, Key: key, Message: fmt.Sprintf(format, args...)}
}

// ctxError wraps the context's error when a call gives up waiting.
type ctxError struct {
	op, key string
	err     error
}

func (e *ctxError) Error() string {
	return fmt.Sprintf("oauthlock: %s %q: %v (a refresh already running goes on and commits)", e.op, e.key, e.err)
}

func (e *ctxError) Unwrap() error { return e.err }
