package oauthlock

import (
	"context"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// OAuth2 is the source as a golang.org/x/oauth2 TokenSource, for clients built on it
// (oauth2.NewClient, Google's API clients, ...). Each Token call is an AccessToken call with
// context.Background(): do not wrap it in oauth2.ReuseTokenSource (the source's hot path is
// already a cache, and it notices another process's login or logout). oauth2's Transport
// does not retry a 401; Transport below does.
func (t *TokenSource) OAuth2() oauth2.TokenSource { return oauth2Source{t} }

type oauth2Source struct{ t *TokenSource }

func (s oauth2Source) Token() (*oauth2.Token, error) {
	tok, err := s.t.AccessToken(context.Background())
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: tok.Value, TokenType: tok.TokenType, Expiry: tok.ExpiresAt}, nil
}

// Transport is an http.RoundTripper that sends each request with the source's access token
// (Authorization: Bearer ...) and, when the server answers 401, rejects that token
// (TokenSource.Reject: one refresh for everyone who got a 401 with it) and retries once
// with the new one, provided the request body can be sent again (no body, or GetBody set,
// as http.NewRequest does for bytes, strings and their readers). Otherwise the 401 is
// returned as it is. When Reject fails (NeedsLogin, ...), its error is RoundTrip's. The
// request's context bounds the wait for a token.
type Transport struct {
	// Required.
	Source *TokenSource
	// The transport that sends the requests; nil for http.DefaultTransport.
	Base http.RoundTripper
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper; the caller's request is not modified.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	tok, err := t.Source.AccessToken(req.Context())
	if err != nil {
		closeBody()
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	first := req.Clone(req.Context())
	tok.SetAuthHeader(first)
	resp, err := t.base().RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable {
		return resp, err
	}
	again, err := t.Source.Reject(req.Context(), tok.Value)
	if err != nil {
		// No other token (NeedsLogin, InvalidGrant, ...): that is the answer.
		discard(resp)
		return nil, err
	}
	retry := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	discard(resp)
	again.SetAuthHeader(retry)
	return t.base().RoundTrip(retry)
}

// discard reads a little of the body (so the connection can be reused) and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
