package oauthlock_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

// capture is the slog handler the tests install (TestMain): it keeps every event's text.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

var captured = &capture{}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := slog.NewTextHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	return h.Handle(context.Background(), r)
}

func (c *capture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// The library's decisions reach log/slog with their event name, key and path, and never a
// token.
func TestEventsGoToSlog(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	c := m.logIn(t, s, "events-k", true)
	tok := must[oauthlock.AccessToken](t)(source(t, s, "events-k").AccessToken(bg))
	_ = s.Save(bg, "events-k", oauthlock.Credential{AccessToken: "x"}) // downgrade refused
	text := captured.text()
	for _, want := range []string{"event=refreshed key=events-k", "event=downgrade_refused key=events-k", "level=WARN", pathOf(t, s, "events-k")} {
		if !strings.Contains(text, want) {
			t.Fatalf("no %q in the events:\n%s", want, text)
		}
	}
	noToken(t, text, c.AccessToken, c.RefreshToken, tok.Value)

	// SetLogger(nil) stops them; another logger gets them.
	var mine bytes.Buffer
	oauthlock.SetLogger(slog.New(slog.NewJSONHandler(&mine, nil)))
	defer oauthlock.SetLogger(slog.New(captured))
	must[oauthlock.AccessToken](t)(source(t, s, "events-k").Verify(bg))
	if !strings.Contains(mine.String(), `"event":"refreshed"`) {
		t.Fatalf("events: %s", mine.String())
	}
	oauthlock.SetLogger(nil)
	before := len(captured.text())
	must[oauthlock.AccessToken](t)(source(t, s, "events-k").Verify(bg))
	if len(captured.text()) != before {
		t.Fatal("an event after SetLogger(nil)")
	}
}
