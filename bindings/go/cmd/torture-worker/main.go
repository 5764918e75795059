// Command torture-worker is the Go process of the mixed-language torture run
// (tests/torture/test_torture.py): GOROUTINES goroutines share one source of KEY in the
// store STORE_DIR for SECONDS against the strict mock provider at MOCK_URL, and it prints
// one JSON report line (internal/worker). Exits 1 on any error.
//
// Usage: torture-worker STORE_DIR KEY MOCK_URL SECONDS GOROUTINES
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
	"github.com/oauth-lock/oauth-lock/bindings/go/internal/worker"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: torture-worker STORE_DIR KEY MOCK_URL SECONDS GOROUTINES")
		os.Exit(2)
	}
	seconds, err1 := strconv.ParseFloat(os.Args[4], 64)
	n, err2 := strconv.Atoi(os.Args[5])
	if err1 != nil || err2 != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "torture-worker: bad SECONDS or GOROUTINES")
		os.Exit(2)
	}
	// Warnings only on stderr (the decisions of a 50 s run are many).
	oauthlock.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	rep, err := worker.Run(os.Args[1], os.Args[2], os.Args[3], time.Duration(seconds*float64(time.Second)), n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go pid %d: setup: %v\n", os.Getpid(), err)
		os.Exit(1)
	}
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	if len(rep.Errors) > 0 || rep.Calls == 0 {
		os.Exit(1)
	}
}
