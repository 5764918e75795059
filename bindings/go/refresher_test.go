package oauthlock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

// saveExpired stores a credential with an expired access token and a refresh token, and no
// refresh config: only a Go refresher can refresh it.
func saveExpired(t *testing.T, s *oauthlock.Store, key string) {
	t.Helper()
	if err := s.Save(bg, key, oauthlock.Credential{AccessToken: "at-0", RefreshToken: "rt-0", ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
}

func TestRefresherFunc(t *testing.T) {
	s := openStore(t)
	saveExpired(t, s, "k")
	var calls atomic.Int64
	var seen sync.Map
	refresher := oauthlock.RefresherFunc(func(ctx context.Context, req oauthlock.RefreshRequest) (oauthlock.Credential, error) {
		n := calls.Add(1)
		seen.Store(n, req)
		if _, ok := ctx.Deadline(); !ok {
			return oauthlock.Credential{}, errors.New("no deadline")
		}
		time.Sleep(50 * time.Millisecond) // let every caller pile up behind the lock
		return oauthlock.Credential{
			AccessToken:  fmt.Sprintf("at-%d", n),
			RefreshToken: fmt.Sprintf("rt-%d", n),
			ExpiresIn:    time.Hour,
			Extra:        map[string]any{"account": "a-1"},
		}, nil
	})
	src := source(t, s, "k", oauthlock.WithRefresher(refresher))
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := src.AccessToken(bg)
			if err != nil || tok.Value != "at-1" || tok.Generation != 2 {
				t.Errorf("%v %v", tok, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d refreshes for one expiry", calls.Load())
	}
	req, _ := seen.Load(int64(1))
	r := req.(oauthlock.RefreshRequest)
	if r.Key != "k" || r.RefreshToken != "rt-0" || r.AccessToken != "at-0" || r.Generation != 1 || r.ExpiresAt.IsZero() {
		t.Fatalf("the refresher got %+v (gen %d)", r, r.Generation)
	}
	noToken(t, fmtAll(r), "rt-0", "at-0")
	rec := recordJSON(t, s, "k")
	if rec["refresh_token"] != "rt-1" || rec["extra"].(map[string]any)["account"] != "a-1" {
		t.Fatalf("record %v", rec["extra"])
	}
	// verify forces one more.
	if v := must[oauthlock.AccessToken](t)(src.Verify(bg)); v.Value != "at-2" {
		t.Fatal(v)
	}
}

func TestRefresherErrors(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		panics    bool
		code      oauthlock.Code
		oauth     string
		needLogin bool
	}{
		{name: "invalid grant sentinel", err: oauthlock.ErrInvalidGrant, code: oauthlock.CodeInvalidGrant, needLogin: true},
		{name: "terminal", err: oauthlock.RefreshError(oauthlock.CodeTerminal, "invalid_client", "bad client"), code: oauthlock.CodeTerminal, oauth: "invalid_client"},
		{name: "transient", err: oauthlock.RefreshError(oauthlock.CodeTransient, "", "provider down"), code: oauthlock.CodeTransient},
		{name: "any error", err: errors.New("dial tcp: refused"), code: oauthlock.CodeTransient},
		{name: "panic", panics: true, code: oauthlock.CodeTransient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			saveExpired(t, s, "k")
			src := source(t, s, "k", oauthlock.WithRefresher(oauthlock.RefresherFunc(
				func(context.Context, oauthlock.RefreshRequest) (oauthlock.Credential, error) {
					if c.panics {
						panic("refresher bug")
					}
					return oauthlock.Credential{}, c.err
				})))
			_, err := src.AccessToken(bg)
			e := check(t, err, c.code, "k", "")
			if e.OAuthError != c.oauth && c.oauth != "" {
				t.Fatalf("oauth error %q", e.OAuthError)
			}
			st := must[oauthlock.Status](t)(s.Status("k"))
			if (st.State == "needs_login") != c.needLogin {
				t.Fatalf("state %q", st.State)
			}
		})
	}
	// An answer without an access token, or with a refresh config, is Transient.
	for _, answer := range []oauthlock.Credential{{}, {AccessToken: "a", Refresh: &oauthlock.OAuth2{TokenURL: "https://x", ClientID: "c"}}} {
		s := openStore(t)
		saveExpired(t, s, "k")
		src := source(t, s, "k", oauthlock.WithRefresher(oauthlock.RefresherFunc(
			func(context.Context, oauthlock.RefreshRequest) (oauthlock.Credential, error) { return answer, nil })))
		_, err := src.AccessToken(bg)
		check(t, err, oauthlock.CodeTransient, "k", "")
	}
}

// A Go refresher still running at the refresh timeout: its callers get Transient, the
// refresher's ctx is still alive, and its late answer is committed.
func TestSlowRefresherCommitsLate(t *testing.T) {
	s := openStore(t)
	saveExpired(t, s, "k")
	release := make(chan struct{})
	src := source(t, s, "k", oauthlock.WithRefreshTimeout(200*time.Millisecond), oauthlock.WithRefresher(oauthlock.RefresherFunc(
		func(ctx context.Context, _ oauthlock.RefreshRequest) (oauthlock.Credential, error) {
			<-release
			if ctx.Err() != nil {
				return oauthlock.Credential{}, ctx.Err()
			}
			return oauthlock.Credential{AccessToken: "late", RefreshToken: "rt-late", ExpiresIn: time.Hour}, nil
		})))
	_, err := src.AccessToken(bg)
	check(t, err, oauthlock.CodeTransient, "k", "")
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for recordJSON(t, s, "k")["access_token"] != "late" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rec := recordJSON(t, s, "k"); rec["refresh_token"] != "rt-late" {
		t.Fatalf("the late answer was not committed: gen %v", rec["generation"])
	}
}

// Sources with Go refreshers are released: the handle is deleted by the library's
// free_userdata (a leak would keep the refresher alive; this only checks nothing breaks
// when many come and go).
func TestManyRefresherSources(t *testing.T) {
	s := openStore(t)
	for i := range 100 {
		src, err := s.Source(fmt.Sprintf("k%d", i), oauthlock.WithRefresher(oauthlock.RefresherFunc(
			func(context.Context, oauthlock.RefreshRequest) (oauthlock.Credential, error) {
				return oauthlock.Credential{AccessToken: "x"}, nil
			})))
		if err != nil {
			t.Fatal(err)
		}
		_ = src.Close()
	}
	refresher := oauthlock.RefresherFunc(func(context.Context, oauthlock.RefreshRequest) (oauthlock.Credential, error) {
		return oauthlock.Credential{}, nil
	})
	_, err := s.Source("k", oauthlock.WithRefresher(refresher), oauthlock.WithOAuth2(oauthlock.OAuth2{TokenURL: "https://x", ClientID: "c"}))
	check(t, err, oauthlock.CodeInvalidArgument, "k", "")
	_, err = s.Source("k", oauthlock.WithOAuth2(oauthlock.OAuth2{TokenURL: "https://x"}))
	check(t, err, oauthlock.CodeInvalidArgument, "k", "")
}
