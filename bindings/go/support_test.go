package oauthlock_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
	"github.com/oauth-lock/oauth-lock/bindings/go/internal/worker"
)

// cli is the oauth-lock CLI (the strict mock provider): $OAUTH_LOCK_CLI, which
// scripts/test-go sets, else the workspace's debug build.
func cli(t testing.TB) string {
	p := os.Getenv("OAUTH_LOCK_CLI")
	if p == "" {
		target := os.Getenv("CARGO_TARGET_DIR")
		if target == "" {
			target = filepath.Join("..", "..", "target")
		}
		p = filepath.Join(target, "debug", "oauth-lock")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the oauth-lock CLI is missing (%v): run scripts/test-go", err)
	}
	return p
}

// mock is the strict mock provider (oauth-lock mock-server) as a process on 127.0.0.1.
type mock struct {
	url string
}

func startMock(t testing.TB, args ...string) *mock {
	t.Helper()
	cmd := exec.Command(cli(t), append([]string{"mock-server", "--port", "0"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if url, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return &mock{url: strings.TrimSpace(url)}
		}
	}
	t.Fatal("the mock provider did not start")
	return nil
}

func (m *mock) tokenURL() string { return m.url + "/oauth/token" }

func (m *mock) refresh(clientID string) *oauthlock.OAuth2 {
	return &oauthlock.OAuth2{TokenURL: m.tokenURL(), ClientID: clientID}
}

func (m *mock) send(t testing.TB, method, path string, body any, bearer string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, m.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// login is a fresh login at the provider, as a Credential refreshed at the mock.
func (m *mock) login(t testing.TB) oauthlock.Credential {
	t.Helper()
	status, r := m.send(t, "POST", "/login", map[string]any{}, "")
	if status != 200 {
		t.Fatalf("login: %d", status)
	}
	return oauthlock.Credential{
		AccessToken:  r["access_token"].(string),
		RefreshToken: r["refresh_token"].(string),
		TokenType:    "Bearer",
		ExpiresIn:    time.Duration(r["expires_in"].(float64)) * time.Second,
		Refresh:      m.refresh("oauth-lock-demo"),
	}
}

// logIn saves a fresh login under key; expired makes its access token already expired.
func (m *mock) logIn(t testing.TB, s *oauthlock.Store, key string, expired bool) oauthlock.Credential {
	t.Helper()
	c := m.login(t)
	if expired {
		c.ExpiresIn, c.ExpiresAt = 0, time.Now().Add(-time.Second)
	}
	if err := s.Save(context.Background(), key, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (m *mock) stats(t testing.TB) map[string]int {
	t.Helper()
	_, r := m.send(t, "GET", "/stats", nil, "")
	out := map[string]int{}
	for k, v := range r {
		if f, ok := v.(float64); ok {
			out[k] = int(f)
		}
	}
	return out
}

// resource is GET /resource with the token: 200 when valid, 401 otherwise.
func (m *mock) resource(t testing.TB, token string) int {
	status, _ := m.send(t, "GET", "/resource", nil, token)
	return status
}

func openStore(t testing.TB) *oauthlock.Store {
	t.Helper()
	s, err := oauthlock.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func source(t testing.TB, s *oauthlock.Store, key string, opts ...oauthlock.SourceOption) *oauthlock.TokenSource {
	t.Helper()
	src, err := s.Source(key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

func pathOf(t testing.TB, s *oauthlock.Store, key string) string {
	t.Helper()
	p, err := s.PathOf(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// record is the record file's bytes (nil when it does not exist).
func record(t testing.TB, s *oauthlock.Store, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(pathOf(t, s, key))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

func recordJSON(t testing.TB, s *oauthlock.Store, key string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(record(t, s, key), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// noToken fails when text holds a token of the record (access or refresh).
func noToken(t testing.TB, text string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if tok != "" && strings.Contains(text, tok) {
			t.Fatalf("a token is printed: %s", strings.ReplaceAll(text, tok, "<TOKEN>"))
		}
	}
}

var bg = context.Background()

// TestMain runs a worker process of TestProcessesAgainstTheStrictMock when
// OAUTHLOCK_TEST_WORKER is set (STORE|KEY|URL|SECONDS|GOROUTINES), else the tests, with the
// library's events captured (events_test.go).
func TestMain(m *testing.M) {
	if spec := os.Getenv("OAUTHLOCK_TEST_WORKER"); spec != "" {
		oauthlock.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		var dir, key, url string
		var seconds float64
		var n int
		parts := strings.Split(spec, "|")
		dir, key, url = parts[0], parts[1], parts[2]
		_, _ = fmt.Sscan(parts[3], &seconds)
		_, _ = fmt.Sscan(parts[4], &n)
		rep, err := worker.Run(dir, key, url, time.Duration(seconds*float64(time.Second)), n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out, _ := json.Marshal(rep)
		fmt.Println(string(out))
		os.Exit(0)
	}
	oauthlock.SetLogger(slog.New(captured))
	os.Exit(m.Run())
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func fmtAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v)
}
