package oauthlock_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

func TestEveryCall(t *testing.T) {
	m := startMock(t, "--lifetime", "1h")
	s := openStore(t)
	dir := must[string](t)(s.Dir())
	if !strings.HasPrefix(pathOf(t, s, "k"), dir) || !strings.HasSuffix(pathOf(t, s, "k"), "k.json") {
		t.Fatalf("path of k: %s in %s", pathOf(t, s, "k"), dir)
	}
	login := m.logIn(t, s, "k", false)

	src := source(t, s, "k")
	if src.Key() != "k" {
		t.Fatal(src.Key())
	}
	tok := must[oauthlock.AccessToken](t)(src.AccessToken(bg))
	if tok.Value != login.AccessToken || tok.TokenType != "Bearer" || tok.Generation != 1 {
		t.Fatalf("first token: %#v", tok)
	}
	sum := sha256.Sum256([]byte(tok.Value))
	if tok.Fingerprint != hex.EncodeToString(sum[:])[:8] {
		t.Fatalf("fingerprint %s", tok.Fingerprint)
	}
	if d := time.Until(tok.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("expires in %v", d)
	}
	if m.resource(t, tok.Value) != 200 {
		t.Fatal("the token does not work")
	}
	again := must[oauthlock.AccessToken](t)(src.AccessToken(bg))
	if again != tok {
		t.Fatal("the hot path answered another token")
	}

	// Printing or logging a token shows its fingerprint only.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("t", "token", tok)
	printed := fmtAll(tok) + logged.String() + fmtAll(login) + fmtAll(*login.Refresh)
	noToken(t, printed, tok.Value, login.RefreshToken)
	if !strings.Contains(printed, tok.Fingerprint) {
		t.Fatal(printed)
	}

	// valid for: the token is valid for an hour already, so no refresh.
	v := must[oauthlock.AccessToken](t)(src.AccessTokenValidFor(bg, 30*time.Minute))
	if v.Value != tok.Value {
		t.Fatal("valid-for refreshed a token valid for an hour")
	}
	// ... and for more than its lifetime: a refresh.
	v2 := must[oauthlock.AccessToken](t)(src.AccessTokenValidFor(bg, 61*time.Minute-time.Second))
	_ = v2
	if got := m.stats(t)["refreshes"]; got != 1 {
		t.Fatalf("valid-for longer than the token: %d refreshes", got)
	}

	// reject: another token, one refresh.
	cur := must[oauthlock.AccessToken](t)(src.AccessToken(bg))
	r := must[oauthlock.AccessToken](t)(src.Reject(bg, cur.Value))
	if r.Value == cur.Value || r.Generation != cur.Generation+1 {
		t.Fatalf("reject: %v after %v", r, cur)
	}
	// rejecting an old token answers the current one with no refresh.
	r2 := must[oauthlock.AccessToken](t)(src.Reject(bg, cur.Value))
	if r2.Value != r.Value {
		t.Fatal("rejecting a stale token refreshed again")
	}
	// verify, on the source and on the store.
	vs := must[oauthlock.AccessToken](t)(src.Verify(bg))
	vst := must[oauthlock.AccessToken](t)(s.Verify(bg, "k"))
	if vst.Generation != vs.Generation+1 || vs.Generation != r.Generation+1 {
		t.Fatalf("verify generations %d %d after %d", vs.Generation, vst.Generation, r.Generation)
	}
	if got := m.stats(t); got["refreshes"] != 4 || got["replays"] != 0 {
		t.Fatalf("stats %v", got)
	}

	// status and list.
	st := must[oauthlock.Status](t)(s.Status("k"))
	if !st.Exists || st.Generation != vst.Generation || st.State != "ok" || !st.HasRefreshToken ||
		!st.HasAccessToken || !st.HasRefreshConfig || st.AccessTokenFingerprint != vst.Fingerprint ||
		st.ExpiresAt.IsZero() || st.UpdatedBy["lang"] != "go" || st.Problem != nil || st.Key != "k" ||
		st.Path != pathOf(t, s, "k") {
		t.Fatalf("status %+v", st)
	}
	missing := must[oauthlock.Status](t)(s.Status("missing"))
	if missing.Exists || missing.Generation != 0 {
		t.Fatalf("status of a missing key %+v", missing)
	}
	m.logIn(t, s, "a", false)
	all := must[[]oauthlock.Status](t)(s.List())
	if len(all) != 2 || all[0].Key != "a" || all[1].Key != "k" {
		t.Fatalf("list %+v", all)
	}

	// clear: a logout; the source then needs a login.
	if !must[bool](t)(s.Clear(bg, "k")) || must[bool](t)(s.Clear(bg, "k")) {
		t.Fatal("clear: existed")
	}
	time.Sleep(1100 * time.Millisecond) // the hot path revalidates at most once a second
	if _, err := src.AccessToken(bg); !errors.Is(err, oauthlock.ErrNeedsLogin) {
		t.Fatalf("after clear: %v", err)
	}
}

func TestSaveWithoutRefreshTokenAndDowngrade(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	if err := s.Save(bg, "plain", oauthlock.Credential{AccessToken: "at-plain", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	tok := must[oauthlock.AccessToken](t)(source(t, s, "plain").AccessToken(bg))
	if tok.Value != "at-plain" || tok.TokenType != "Bearer" {
		t.Fatalf("%#v", tok)
	}
	m.logIn(t, s, "k", false)
	err := s.Save(bg, "k", oauthlock.Credential{AccessToken: "x"})
	if !errors.Is(err, oauthlock.ErrDowngrade) {
		t.Fatal(err)
	}
	if err := s.Save(bg, "k", oauthlock.Credential{AccessToken: "x"}, oauthlock.AllowDowngrade()); err != nil {
		t.Fatal(err)
	}
	if st := must[oauthlock.Status](t)(s.Status("k")); st.HasRefreshToken {
		t.Fatal("allowed downgrade kept the refresh token")
	}
	// SaveJSON takes the C ABI's JSON as it is.
	if err := s.SaveJSON(bg, "j", []byte(`{"access_token":"at-j","expires_in":3600,"account":{"id":7}}`)); err != nil {
		t.Fatal(err)
	}
	if rec := recordJSON(t, s, "j"); rec["extra"] == nil {
		t.Fatalf("extra fields not kept: %v", rec)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	m := startMock(t)
	s, err := oauthlock.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m.logIn(t, s, "k", false)
	src := must[*oauthlock.TokenSource](t)(s.Source("k"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status("k"); !errors.Is(err, oauthlock.ErrClosed) {
		t.Fatalf("status after close: %v", err)
	}
	if _, err := s.Source("k"); !errors.Is(err, oauthlock.ErrClosed) {
		t.Fatalf("source after close: %v", err)
	}
	// A source outlives its store.
	if _, err := src.AccessToken(bg); err != nil {
		t.Fatal(err)
	}
	_ = src.Close()
	_ = src.Close()
	if _, err := src.AccessToken(bg); !errors.Is(err, oauthlock.ErrClosed) {
		t.Fatalf("token after close: %v", err)
	}
}

func TestOptions(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	// WithOAuth2: a record saved without a refresh config, refreshed by the source's.
	c := m.login(t)
	c.Refresh, c.ExpiresIn, c.ExpiresAt = nil, 0, time.Now().Add(-time.Second)
	if err := s.Save(bg, "k", c); err != nil {
		t.Fatal(err)
	}
	if _, err := source(t, s, "k").AccessToken(bg); !errors.Is(err, oauthlock.ErrInvalidArgument) {
		t.Fatalf("no refresher: %v", err)
	}
	src := source(t, s, "k", oauthlock.WithOAuth2(oauthlock.OAuth2{TokenURL: m.tokenURL(), ClientID: "oauth-lock-demo",
		Body: "json", Timeout: 5 * time.Second}), oauthlock.WithRevalidate(10*time.Millisecond),
		oauthlock.WithLockTimeout(time.Second), oauthlock.WithRefreshTimeout(5*time.Second))
	tok := must[oauthlock.AccessToken](t)(src.AccessToken(bg))
	if tok.Generation != 2 || m.resource(t, tok.Value) != 200 {
		t.Fatalf("%#v", tok)
	}
	// WithRevalidate: a logout is seen within 10 ms.
	must[bool](t)(s.Clear(bg, "k"))
	time.Sleep(50 * time.Millisecond)
	if _, err := src.AccessToken(bg); !errors.Is(err, oauthlock.ErrNeedsLogin) {
		t.Fatalf("after a logout: %v", err)
	}
	// WithRefreshMargin: a 1 h token within a 2 h margin (capped at half its lifetime, 30
	// min) is fresh; AccessTokenValidFor(50 min) refreshes it.
	m.logIn(t, s, "m", false)
	ms := source(t, s, "m", oauthlock.WithRefreshMargin(2*time.Hour))
	first := must[oauthlock.AccessToken](t)(ms.AccessToken(bg))
	if first.Generation != 1 {
		t.Fatalf("%#v", first)
	}
	if v := must[oauthlock.AccessToken](t)(ms.AccessTokenValidFor(bg, 70*time.Minute)); v.Generation != 2 {
		t.Fatalf("valid for 70 min of a 1 h token: %#v", v)
	}
	if _, err := ms.AccessTokenValidFor(bg, -time.Second); !errors.Is(err, oauthlock.ErrInvalidArgument) {
		t.Fatal(err)
	}
}
