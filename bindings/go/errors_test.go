package oauthlock_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

var sentinels = map[oauthlock.Code]error{
	oauthlock.CodeNeedsLogin:        oauthlock.ErrNeedsLogin,
	oauthlock.CodeInvalidGrant:      oauthlock.ErrInvalidGrant,
	oauthlock.CodeTerminal:          oauthlock.ErrTerminal,
	oauthlock.CodeTransient:         oauthlock.ErrTransient,
	oauthlock.CodeBusy:              oauthlock.ErrBusy,
	oauthlock.CodeDowngrade:         oauthlock.ErrDowngrade,
	oauthlock.CodeCorrupt:           oauthlock.ErrCorrupt,
	oauthlock.CodeUnsupportedFormat: oauthlock.ErrUnsupportedFormat,
	oauthlock.CodeIo:                oauthlock.ErrIo,
	oauthlock.CodeInvalidArgument:   oauthlock.ErrInvalidArgument,
	oauthlock.CodeInsecure:          oauthlock.ErrInsecure,
}

// check asserts err is an *oauthlock.Error of exactly code, matching its sentinel and no
// other, naming key and location (when not empty) in its fields and its message.
func check(t *testing.T, err error, code oauthlock.Code, key, location string) *oauthlock.Error {
	t.Helper()
	var e *oauthlock.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a %v *oauthlock.Error, got %T %v", code, err, err)
	}
	if e.Code != code {
		t.Fatalf("want %v, got %v: %v", code, e.Code, err)
	}
	for c, s := range sentinels {
		if errors.Is(err, s) != (c == code) {
			t.Fatalf("errors.Is(%v, Err%v) = %v", err, c, errors.Is(err, s))
		}
	}
	if key != "" && (e.Key != key || !strings.Contains(e.Error(), key)) {
		t.Fatalf("the error does not name key %q: %#v", key, e)
	}
	if location != "" && (e.Location != location || !strings.Contains(e.Error(), location)) {
		t.Fatalf("the error does not name %s: %#v", location, e)
	}
	if !strings.HasPrefix(e.Error(), "oauthlock: "+code.String()+": ") {
		t.Fatalf("message %q", e.Error())
	}
	return e
}

func sameBytes(t *testing.T, before, after []byte, what string) {
	t.Helper()
	if !bytes.Equal(before, after) {
		t.Fatalf("%s: the record changed:\n%s\n%s", what, before, after)
	}
}

// tokens is what a failed refresh must never change (G5 marks the record needs_login; the
// tokens stay).
func tokens(t *testing.T, s *oauthlock.Store, key string) map[string]any {
	r := recordJSON(t, s, key)
	return map[string]any{"access_token": r["access_token"], "refresh_token": r["refresh_token"], "expires_at_ms": r["expires_at_ms"]}
}

// onlyBackoffAdded: a failed refresh changed nothing but the shared backoff (DESIGN.md §4
// step 9) and the stamp of that write.
func onlyBackoffAdded(t *testing.T, before, after []byte) {
	t.Helper()
	lasting := func(b []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"generation", "updated_at_ms", "updated_by", "backoff"} {
			delete(m, k)
		}
		return m
	}
	if !reflect.DeepEqual(lasting(before), lasting(after)) {
		t.Fatalf("a failed refresh changed the record:\n%s\n%s", before, after)
	}
	var m map[string]any
	_ = json.Unmarshal(after, &m)
	if m["backoff"] == nil {
		t.Fatalf("no backoff recorded: %s", after)
	}
}

func TestCodesAreNumberedInDesignOrder(t *testing.T) {
	names := []string{"NeedsLogin", "InvalidGrant", "Terminal", "Transient", "Busy", "Downgrade",
		"Corrupt", "UnsupportedFormat", "Io", "InvalidArgument", "Insecure"}
	for i, n := range names {
		c := oauthlock.Code(i + 1)
		if c.String() != n || sentinels[c].(*oauthlock.Error).Code != c {
			t.Fatalf("code %d is %v, want %s", i+1, c, n)
		}
		if (&oauthlock.Error{Code: c}).Retryable() != (c == oauthlock.CodeTransient || c == oauthlock.CodeBusy) {
			t.Fatalf("%v retryable", c)
		}
	}
}

func TestNeedsLogin(t *testing.T) {
	s := openStore(t)
	_, err := source(t, s, "missing").AccessToken(bg)
	check(t, err, oauthlock.CodeNeedsLogin, "missing", pathOf(t, s, "missing"))
	if record(t, s, "missing") != nil {
		t.Fatal("a record was made")
	}
	if err := s.Save(bg, "k", oauthlock.Credential{AccessToken: "at", ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	before := record(t, s, "k")
	_, err = source(t, s, "k").AccessToken(bg)
	check(t, err, oauthlock.CodeNeedsLogin, "k", pathOf(t, s, "k"))
	sameBytes(t, before, record(t, s, "k"), "NeedsLogin")
}

func TestInvalidGrant(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	c := m.logIn(t, s, "k", true)
	before := tokens(t, s, "k")
	// Someone outside oauth-lock spends the stored refresh token.
	if status, _ := m.send(t, "POST", "/oauth/token", map[string]any{"grant_type": "refresh_token",
		"client_id": "oauth-lock-demo", "refresh_token": c.RefreshToken}, ""); status != 200 {
		t.Fatal(status)
	}
	_, err := source(t, s, "k").AccessToken(bg)
	e := check(t, err, oauthlock.CodeInvalidGrant, "k", pathOf(t, s, "k"))
	if e.OAuthError != "invalid_grant" || e.Retryable() {
		t.Fatalf("%#v", e)
	}
	noToken(t, e.Error(), c.AccessToken, c.RefreshToken)
	if !reflect.DeepEqual(before, tokens(t, s, "k")) {
		t.Fatal("the tokens changed")
	}
	st := must[oauthlock.Status](t)(s.Status("k"))
	if st.State != "needs_login" || st.LastError == nil || st.LastError.Code != "invalid_grant" {
		t.Fatalf("%+v", st)
	}
	dead := record(t, s, "k")
	_, err = source(t, s, "k").AccessToken(bg) // dead is dead once: no second request
	check(t, err, oauthlock.CodeNeedsLogin, "k", pathOf(t, s, "k"))
	sameBytes(t, dead, record(t, s, "k"), "NeedsLogin after InvalidGrant")
	if got := m.stats(t)["invalid_grants"]; got != 1 {
		t.Fatalf("%d invalid_grants", got)
	}
}

func TestTerminal(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	c := m.login(t)
	c.ExpiresIn, c.ExpiresAt, c.Refresh = 0, time.Now().Add(-time.Second), m.refresh("someone-else")
	if err := s.Save(bg, "k", c); err != nil {
		t.Fatal(err)
	}
	before := tokens(t, s, "k")
	_, err := source(t, s, "k").AccessToken(bg)
	e := check(t, err, oauthlock.CodeTerminal, "k", pathOf(t, s, "k"))
	if e.OAuthError != "invalid_client" || e.Retryable() {
		t.Fatalf("%#v", e)
	}
	if !reflect.DeepEqual(before, tokens(t, s, "k")) {
		t.Fatal("the tokens changed")
	}
}

func TestTransient(t *testing.T) {
	for _, flag := range []string{"--fail-every", "--malformed-every"} {
		t.Run(flag, func(t *testing.T) {
			m := startMock(t, flag, "1")
			s := openStore(t)
			m.logIn(t, s, "k", true)
			before := record(t, s, "k")
			_, err := source(t, s, "k").AccessToken(bg)
			if e := check(t, err, oauthlock.CodeTransient, "k", pathOf(t, s, "k")); !e.Retryable() {
				t.Fatal("Transient is retryable")
			}
			onlyBackoffAdded(t, before, record(t, s, "k"))
		})
	}
}

// holdLock takes the credential's lock (<key>.lock, flock LOCK_EX) as another process would.
func holdLock(t *testing.T, s *oauthlock.Store, key string) (path string, unlock func()) {
	t.Helper()
	path = filepath.Join(filepath.Dir(pathOf(t, s, key)), key+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var once bool
	unlock = func() {
		if !once {
			once = true
			_ = f.Close()
		}
	}
	t.Cleanup(unlock)
	return path, unlock
}

func TestBusy(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	m.logIn(t, s, "k", true)
	before := record(t, s, "k")
	lock, _ := holdLock(t, s, "k")
	_, err := source(t, s, "k", oauthlock.WithLockTimeout(200*time.Millisecond)).AccessToken(bg)
	if e := check(t, err, oauthlock.CodeBusy, "k", lock); !e.Retryable() {
		t.Fatal("Busy is retryable")
	}
	sameBytes(t, before, record(t, s, "k"), "Busy")
	if got := m.stats(t)["token_requests"]; got != 0 {
		t.Fatalf("%d token requests", got)
	}
}

func TestDowngrade(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	m.logIn(t, s, "k", false)
	before := record(t, s, "k")
	err := s.Save(bg, "k", oauthlock.Credential{AccessToken: "no-refresh-token"})
	check(t, err, oauthlock.CodeDowngrade, "k", pathOf(t, s, "k"))
	sameBytes(t, before, record(t, s, "k"), "Downgrade")
}

func TestCorrupt(t *testing.T) {
	s := openStore(t)
	garbage := []byte(`{"format": 1, "key": "k", "generation": `)
	if err := os.WriteFile(pathOf(t, s, "k"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := source(t, s, "k").AccessToken(bg)
	check(t, err, oauthlock.CodeCorrupt, "k", pathOf(t, s, "k"))
	sameBytes(t, garbage, record(t, s, "k"), "Corrupt")
	st := must[oauthlock.Status](t)(s.Status("k"))
	if st.Problem == nil || st.Problem.Code != oauthlock.CodeCorrupt || !st.Exists {
		t.Fatalf("%+v", st)
	}
}

func TestUnsupportedFormat(t *testing.T) {
	s := openStore(t)
	future := []byte(`{"format": 2, "key": "later", "generation": 1, "access_token": "at"}`)
	if err := os.WriteFile(pathOf(t, s, "later"), future, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := source(t, s, "later").AccessToken(bg)
	check(t, err, oauthlock.CodeUnsupportedFormat, "later", pathOf(t, s, "later"))
	_, err = s.Verify(bg, "later")
	check(t, err, oauthlock.CodeUnsupportedFormat, "later", pathOf(t, s, "later"))
	sameBytes(t, future, record(t, s, "later"), "UnsupportedFormat")
}

func TestIo(t *testing.T) {
	s := openStore(t)
	if err := os.Mkdir(pathOf(t, s, "k"), 0o700); err != nil { // the record is a directory
		t.Fatal(err)
	}
	_, err := source(t, s, "k").AccessToken(bg)
	check(t, err, oauthlock.CodeIo, "k", pathOf(t, s, "k"))
	if fi, err := os.Stat(pathOf(t, s, "k")); err != nil || !fi.IsDir() {
		t.Fatal("the directory changed")
	}
	aFile := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(aFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = oauthlock.Open(aFile)
	check(t, err, oauthlock.CodeIo, "", "")
	if b, _ := os.ReadFile(aFile); string(b) != "x" {
		t.Fatal("the file changed")
	}
}

func TestInvalidArgument(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	for _, bad := range []string{"", ".hidden", "..", strings.Repeat("x", 65), "tab\tkey", "é"} {
		_, err := s.Source(bad)
		check(t, err, oauthlock.CodeInvalidArgument, "", "")
		_, err = s.Status(bad)
		check(t, err, oauthlock.CodeInvalidArgument, "", "")
	}
	_, err := s.Source("k", oauthlock.WithLockTimeout(-time.Second))
	check(t, err, oauthlock.CodeInvalidArgument, "k", "")
	m.logIn(t, s, "k", false)
	before := record(t, s, "k")
	for _, bad := range []oauthlock.Credential{
		{AccessToken: "a", RefreshToken: "r", Refresh: &oauthlock.OAuth2{TokenURL: m.tokenURL()}},
		{AccessToken: "a", RefreshToken: "r", Refresh: &oauthlock.OAuth2{TokenURL: m.tokenURL(), ClientID: "c", Body: "xml"}},
		{AccessToken: "a", RefreshToken: "r", Extra: map[string]any{"expires_in": "soon"}},
		{TokenType: "Bearer"},
	} {
		check(t, s.Save(bg, "k", bad), oauthlock.CodeInvalidArgument, "k", "")
	}
	for _, bad := range []string{`{"access_token":"a","refresh_token":"r","refresh":{"token_url":"` + m.tokenURL() + `","client_id":"c","nope":1}}`,
		`{"access_token":"a"`, `[]`, `not json`} {
		check(t, s.SaveJSON(bg, "k", []byte(bad)), oauthlock.CodeInvalidArgument, "k", "")
	}
	sameBytes(t, before, record(t, s, "k"), "InvalidArgument")
}

func TestInsecure(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	m.logIn(t, s, "k", false)
	before := record(t, s, "k")
	plain := oauthlock.OAuth2{TokenURL: "http://auth.example.com/oauth/token", ClientID: "my-app"}
	err := s.Save(bg, "k", oauthlock.Credential{AccessToken: "a", RefreshToken: "r", Refresh: &plain})
	check(t, err, oauthlock.CodeInsecure, "k", pathOf(t, s, "k"))
	_, err = s.Source("k", oauthlock.WithOAuth2(plain))
	check(t, err, oauthlock.CodeInsecure, "k", "")
	sameBytes(t, before, record(t, s, "k"), "Insecure")
}
