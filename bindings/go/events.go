package oauthlock

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
)

// The library's decision events (DESIGN.md §8: refreshed, adopted, lock_waited,
// refresh_deferred, invalid_grant, race_recovered, needs_login, downgrade_refused,
// login_without_refresh_token, ...) go to log/slog: to slog.Default() unless SetLogger says
// otherwise. Tokens appear only as fingerprints.

type loggerBox struct{ l *slog.Logger }

var logger atomic.Pointer[loggerBox]

// SetLogger routes the library's events to l; nil stops them. Until it is called, events go
// to slog.Default() (as it is when each event happens). The handler runs on library threads,
// sometimes while a credential's lock is held: it must return quickly and must not call
// this package.
func SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	logger.Store(&loggerBox{l})
}

func currentLogger() *slog.Logger {
	if b := logger.Load(); b != nil {
		return b.l
	}
	return slog.Default()
}

// logEvent logs one event: its message at its level, with the attributes event, key, path
// and fields. Called on library threads; it never calls back into the library.
func logEvent(js string) {
	var e struct {
		Event   string         `json:"event"`
		Level   string         `json:"level"`
		Key     string         `json:"key"`
		Path    string         `json:"path"`
		Message string         `json:"message"`
		Fields  map[string]any `json:"fields"`
	}
	if json.Unmarshal([]byte(js), &e) != nil {
		return
	}
	level := slog.LevelInfo
	switch e.Level {
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	case "debug":
		level = slog.LevelDebug
	}
	l := currentLogger()
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("event", e.Event), slog.String("key", e.Key)}
	if e.Path != "" {
		attrs = append(attrs, slog.String("path", e.Path))
	}
	if len(e.Fields) > 0 {
		attrs = append(attrs, slog.Any("fields", e.Fields))
	}
	msg := e.Message
	if msg == "" {
		msg = e.Event
	}
	l.LogAttrs(ctx, level, "oauth-lock: "+msg, attrs...)
}
