package oauthlock_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

// pgURL is the PostgreSQL server scripts/test-go starts (scripts/pg-cluster), with a schema
// of this process's own. Never skipped: without a server the test fails.
func pgURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("OAUTH_LOCK_TEST_PG_URL")
	if u == "" {
		t.Fatal("OAUTH_LOCK_TEST_PG_URL is unset: scripts/test-go starts a private PostgreSQL (scripts/pg-cluster)")
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%sschema=go_%d", u, sep, os.Getpid())
}

// The fleet store (DESIGN.md §10): Open hands a postgresql:// URL to the core as it is;
// goroutines on stores of one database at one expiry refresh once.
func TestFleetStoreRefreshesOnce(t *testing.T) {
	u := pgURL(t)
	m := startMock(t, "--lifetime", "1h")
	s, err := oauthlock.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.logIn(t, s, "go:fleet", true)
	var wg sync.WaitGroup
	toks := make([]oauthlock.AccessToken, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := oauthlock.Open(u)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			src, err := st.Source("go:fleet")
			if err != nil {
				errs[i] = err
				return
			}
			defer src.Close()
			toks[i], errs[i] = src.AccessToken(bg)
		}()
	}
	wg.Wait()
	for i := range 8 {
		if errs[i] != nil || toks[i].Value != toks[0].Value || toks[i].Generation != 2 {
			t.Fatalf("goroutine %d: %v %v", i, toks[i], errs[i])
		}
	}
	if st := m.stats(t); st["refreshes"] != 1 || st["replays"] != 0 {
		t.Fatalf("stats %v", st)
	}
	if st := must[oauthlock.Status](t)(s.Status("go:fleet")); st.Generation != 2 || !st.Exists {
		t.Fatalf("%+v", st)
	}
	if !must[bool](t)(s.Clear(bg, "go:fleet")) {
		t.Fatal("clear: no record")
	}
	if _, err := source(t, s, "go:fleet").AccessToken(bg); !errors.Is(err, oauthlock.ErrNeedsLogin) {
		t.Fatal(err)
	}
}

func TestFleetStoreErrorsHideThePassword(t *testing.T) {
	_, err := oauthlock.Open("postgresql://u:hunter2@127.0.0.1/d?sslmode=sometimes")
	e := check(t, err, oauthlock.CodeInvalidArgument, "", "")
	if !strings.Contains(e.Error(), "sslmode") || strings.Contains(e.Error(), "hunter2") {
		t.Fatal(e.Error())
	}
	parts, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	parts.User = url.UserPassword(parts.User.Username(), "wrong-pw-123")
	s, err := oauthlock.Open(parts.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = source(t, s, "k").AccessToken(bg)
	e = check(t, err, oauthlock.CodeInvalidArgument, "", "")
	if strings.Contains(e.Error(), "wrong-pw-123") {
		t.Fatal("the password is in the message")
	}
}
