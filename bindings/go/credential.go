package oauthlock

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Credential is the token fields of a login (Store.Save) or of a refresh (what a Refresher
// returns), in the shape of an OAuth token response.
type Credential struct {
	AccessToken string
	// Empty: none at a login; at a refresh, the provider did not rotate it (the old one is
	// kept).
	RefreshToken string
	TokenType    string
	// The access token's lifetime from now (whole seconds are sent as expires_in; anything
	// finer as an absolute expiry). 0: not given, see ExpiresAt.
	ExpiresIn time.Duration
	// The access token's expiry, when ExpiresIn is 0. Neither: no known expiry.
	ExpiresAt time.Time
	Scope     string
	IDToken   string
	// Other fields of the token response, kept in the record's "extra".
	Extra map[string]any
	// How any process refreshes the credential (saved with a login); nil for none. Not
	// allowed in a Refresher's answer.
	Refresh *OAuth2
}

// String shows no token.
func (c Credential) String() string {
	return fmt.Sprintf("oauthlock.Credential{access token: %t, refresh token: %t}", c.AccessToken != "", c.RefreshToken != "")
}

// GoString (%#v) shows no token.
func (c Credential) GoString() string { return c.String() }

// Format makes every verb print String.
func (c Credential) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue logs no token.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// json is the credential as the C ABI takes it; withRefresh says whether a Refresh config
// may be part of it.
func (c Credential) json(withRefresh bool) ([]byte, error) {
	m := make(map[string]any, len(c.Extra)+8)
	for k, v := range c.Extra {
		m[k] = v
	}
	setNonEmpty(m, "access_token", c.AccessToken)
	setNonEmpty(m, "refresh_token", c.RefreshToken)
	setNonEmpty(m, "token_type", c.TokenType)
	setNonEmpty(m, "scope", c.Scope)
	setNonEmpty(m, "id_token", c.IDToken)
	switch {
	case c.ExpiresIn != 0 && c.ExpiresIn%time.Second == 0:
		m["expires_in"] = int64(c.ExpiresIn / time.Second)
	case c.ExpiresIn != 0:
		m["expires_at_ms"] = time.Now().Add(c.ExpiresIn).UnixMilli()
	case !c.ExpiresAt.IsZero():
		m["expires_at_ms"] = c.ExpiresAt.UnixMilli()
	}
	if c.Refresh != nil {
		if !withRefresh {
			return nil, fmt.Errorf("a refresher's answer cannot carry a refresh config")
		}
		m["refresh"] = c.Refresh.config()
	}
	return json.Marshal(m)
}

// OAuth2 is the built-in OAuth2 refresher's config (RFC 6749 §6, refresh_token grant),
// saved with a login (Credential.Refresh) so that any process in any language can refresh
// the credential by its key alone, or given to one source (WithOAuth2). The library checks
// it: HTTPS only except loopback (Insecure), no missing or bad field (InvalidArgument).
type OAuth2 struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// How ClientSecret is sent: "basic" (HTTP Basic, the default) or "body".
	ClientAuth string
	Scope      string
	// The request body: "form" (RFC 6749's default) or "json" (as Anthropic expects).
	Body        string
	ExtraParams map[string]string
	Headers     map[string]string
	// The token request's timeout; 0 for the library's (30 s).
	Timeout time.Duration
}

// String shows neither the secret nor the headers.
func (o OAuth2) String() string {
	return fmt.Sprintf("oauthlock.OAuth2{TokenURL: %q, ClientID: %q}", o.TokenURL, o.ClientID)
}

// GoString (%#v) shows neither the secret nor the headers.
func (o OAuth2) GoString() string { return o.String() }

// Format makes every verb print String.
func (o OAuth2) Format(f fmt.State, _ rune) { fmt.Fprint(f, o.String()) }

// config is the core's OAuth2Config JSON object.
func (o OAuth2) config() map[string]any {
	m := map[string]any{"token_url": o.TokenURL, "client_id": o.ClientID}
	setNonEmpty(m, "client_secret", o.ClientSecret)
	setNonEmpty(m, "client_auth", o.ClientAuth)
	setNonEmpty(m, "scope", o.Scope)
	setNonEmpty(m, "body", o.Body)
	if len(o.ExtraParams) > 0 {
		m["extra_params"] = o.ExtraParams
	}
	if len(o.Headers) > 0 {
		m["headers"] = o.Headers
	}
	if o.Timeout > 0 {
		m["timeout_ms"] = o.Timeout.Milliseconds()
	}
	return m
}

// setNonEmpty sets m[k] to v unless v is empty (the JSON then has no such field).
func setNonEmpty(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}
