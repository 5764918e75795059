package oauthlock_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
	"golang.org/x/oauth2"
)

// api is an httptest server that answers 401 to the first request it sees with a given
// token and 200 (echoing the body) afterwards, and counts what it saw.
type api struct {
	mu       sync.Mutex
	seen     []string // the Authorization headers, in order
	bodies   []string
	rejected map[string]bool
	srv      *httptest.Server
}

func newAPI(t *testing.T) *api {
	a := &api{rejected: map[string]bool{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		defer a.mu.Unlock()
		auth := r.Header.Get("Authorization")
		a.seen = append(a.seen, auth)
		a.bodies = append(a.bodies, string(body))
		if len(a.seen) == 1 { // the first token it sees is revoked
			a.rejected[auth] = true
		}
		if a.rejected[auth] {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func TestOAuth2TokenSource(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	c := m.logIn(t, s, "k", false)
	src := source(t, s, "k")
	tok, err := src.OAuth2().Token()
	if err != nil || tok.AccessToken != c.AccessToken || tok.TokenType != "Bearer" || !tok.Valid() || tok.Expiry.IsZero() {
		t.Fatalf("%v %v", tok, err)
	}
	// oauth2.NewClient sends it.
	client := oauth2.NewClient(bg, src.OAuth2())
	resp, err := client.Get(m.url + "/resource")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	// Errors come through as *oauthlock.Error.
	_, err = source(t, s, "nobody").OAuth2().Token()
	if !errors.Is(err, oauthlock.ErrNeedsLogin) {
		t.Fatal(err)
	}
}

func TestTransportRejectsAndRetriesOnce(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	m.logIn(t, s, "k", false)
	src := source(t, s, "k")
	a := newAPI(t)
	client := &http.Client{Transport: &oauthlock.Transport{Source: src}}

	// A POST with a replayable body: 401, reject, one retry with the new token and the body.
	req, _ := http.NewRequest("POST", a.srv.URL, strings.NewReader("payload"))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "payload" || len(a.seen) != 2 || a.seen[0] == a.seen[1] {
		t.Fatalf("%d %q seen %d", resp.StatusCode, body, len(a.seen))
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("the caller's request was modified")
	}
	cur := must[oauthlock.AccessToken](t)(src.AccessToken(bg))
	if a.seen[1] != "Bearer "+cur.Value || cur.Generation != 2 || m.stats(t)["refreshes"] != 1 {
		t.Fatalf("the retry did not carry the refreshed token (gen %d)", cur.Generation)
	}
	// Now the token works: one request, no refresh.
	resp, err = client.Get(a.srv.URL)
	if err != nil || resp.StatusCode != 200 || len(a.seen) != 3 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()

	// A body that cannot be sent again: the 401 is the answer, no retry.
	a.rejected["Bearer "+cur.Value] = true
	req, _ = http.NewRequest("POST", a.srv.URL, io.NopCloser(strings.NewReader("once")))
	req.GetBody = nil
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != 401 || len(a.seen) != 4 {
		t.Fatalf("%v %v seen %d", resp, err, len(a.seen))
	}
	resp.Body.Close()

	// A retry that gets 401 again is returned as it is (retried once only).
	a.mu.Lock()
	a.rejected = map[string]bool{}
	a.mu.Unlock()
	srv401 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv401.Close()
	before := m.stats(t)["refreshes"]
	resp, err = client.Get(srv401.URL)
	if err != nil || resp.StatusCode != 401 || m.stats(t)["refreshes"] != before+1 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()

	// No login: the reject's error is the request's.
	c2 := &http.Client{Transport: &oauthlock.Transport{Source: source(t, s, "nobody")}}
	if _, err := c2.Get(a.srv.URL); !errors.Is(err, oauthlock.ErrNeedsLogin) {
		t.Fatal(err)
	}
}
