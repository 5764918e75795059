package oauthlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Refresher refreshes a credential for providers the built-in OAuth2 refresher cannot talk
// to (WithRefresher). Refresh spends req.RefreshToken at the provider and returns the new
// token fields (Credential.RefreshToken empty: the provider did not rotate it), or an error:
// ErrInvalidGrant (the provider rejected the refresh token), an *Error with Code
// CodeTerminal and OAuthError set (another terminal OAuth error), or anything else
// (Transient: the old access token is still used while it is valid). RefreshError builds
// such errors.
//
// It runs under the credential's lock, on a thread of the library's (never the caller's
// goroutine), possibly for several keys at once. It must not use a TokenSource of the same
// key (it would wait on itself until the refresh timeout). ctx ends when the library stops
// waiting for the answer (the refresh timeout plus its 4 s hard cap); an answer that comes
// after the refresh timeout but before that is still committed. A panic is recovered and
// counts as Transient.
type Refresher interface {
	Refresh(ctx context.Context, req RefreshRequest) (Credential, error)
}

// RefresherFunc adapts a function to Refresher.
type RefresherFunc func(ctx context.Context, req RefreshRequest) (Credential, error)

// Refresh calls f.
func (f RefresherFunc) Refresh(ctx context.Context, req RefreshRequest) (Credential, error) {
	return f(ctx, req)
}

// RefreshRequest is the credential as read under the lock, handed to a Refresher. It holds
// the refresh token: its String, Format and LogValue show neither token.
type RefreshRequest struct {
	Key          string
	Generation   uint64
	AccessToken  string
	TokenType    string
	ExpiresAt    time.Time
	RefreshToken string
	Scope        string
	IDToken      string
	Extra        map[string]any
}

// String shows the key and generation only.
func (r RefreshRequest) String() string {
	return fmt.Sprintf("oauthlock.RefreshRequest{Key: %q, Generation: %d}", r.Key, r.Generation)
}

// GoString (%#v) shows the key and generation only.
func (r RefreshRequest) GoString() string { return r.String() }

// Format makes every verb print String.
func (r RefreshRequest) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue logs the key and generation only.
func (r RefreshRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// RefreshError is an error for a Refresher to return: code is CodeInvalidGrant,
// CodeTerminal or CodeTransient, oauthError the provider's OAuth error string (may be ""),
// description why (never a token).
func RefreshError(code Code, oauthError, description string) error {
	return &Error{Code: code, OAuthError: oauthError, Message: description}
}

// goRefresher is what a source's cgo.Handle holds.
type goRefresher struct {
	r       Refresher
	timeout time.Duration
}

// refresh runs the Go refresher on the library's credential JSON; the answer as the C ABI
// takes it: the token fields' JSON, or a code with an OAuth error and a description.
func (g *goRefresher) refresh(credentialJSON string) (answer []byte, code Code, oauthError, description string) {
	var j struct {
		Key          string         `json:"key"`
		Generation   uint64         `json:"generation"`
		AccessToken  *string        `json:"access_token"`
		TokenType    *string        `json:"token_type"`
		ExpiresAtMs  *int64         `json:"expires_at_ms"`
		RefreshToken *string        `json:"refresh_token"`
		Scope        *string        `json:"scope"`
		IDToken      *string        `json:"id_token"`
		Extra        map[string]any `json:"extra"`
	}
	if err := json.Unmarshal([]byte(credentialJSON), &j); err != nil {
		return nil, CodeTransient, "", "the credential handed to the Go refresher does not parse"
	}
	req := RefreshRequest{
		Key: j.Key, Generation: j.Generation, AccessToken: str(j.AccessToken),
		TokenType: str(j.TokenType), ExpiresAt: ms(j.ExpiresAtMs), RefreshToken: str(j.RefreshToken),
		Scope: str(j.Scope), IDToken: str(j.IDToken), Extra: j.Extra,
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	cred, err := func() (c Credential, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the Go refresher panicked: %v", p)
			}
		}()
		return g.r.Refresh(ctx, req)
	}()
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Code == CodeInvalidGrant || e.Code == CodeTerminal || e.Code == CodeTransient) {
			desc := e.Message
			if e.sentinel {
				desc = ""
			}
			return nil, e.Code, e.OAuthError, desc
		}
		return nil, CodeTransient, "", err.Error()
	}
	js, err := cred.json(false)
	if err != nil {
		return nil, CodeTransient, "", "the Go refresher's answer: " + err.Error()
	}
	return js, 0, "", ""
}
