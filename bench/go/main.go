// Command bench is the Go figures of docs/BENCHMARKS.md (scripts/bench-go), written as JSON
// in the shape of the other languages' results:
//   - hot: TokenSource.AccessToken(ctx) on a fresh cached token, measured with testing.B
//     (context.Background(), and a ctx that can be cancelled), including the cgo crossing;
//   - peer: what Go programs write by hand: a sync.Mutex plus syscall.Flock on a lock file,
//     re-read and parse the JSON file and check the expiry, on every call (testing.B);
//   - cold_read: the first AccessToken of a key in this process, the fresh record written
//     on disk by "another process" (directly);
//   - handoff: another holder has <stem>.lock (a flock from this process) while a goroutine
//     is blocked in AccessToken on the expired record; the holder commits a fresh record and
//     releases; time from the release to the blocked call's return. And the same for the
//     peer: a goroutine blocked in its flock, re-reading after the release.
//
// Figures, not tests: nothing here asserts a time.
//
// Usage: bench STORE_DIR OUT_JSON [quick]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

type measurement struct {
	Label     string    `json:"label"`
	MedianNs  float64   `json:"median_ns"`
	P99Ns     float64   `json:"p99_ns"`
	MinNs     float64   `json:"min_ns"`
	MaxNs     float64   `json:"max_ns"`
	N         int       `json:"n"`
	SamplesNs []float64 `json:"samples_ns"`
}

func summarize(label string, s []float64) measurement {
	sort.Float64s(s)
	n := len(s)
	m := measurement{Label: label, MedianNs: s[n/2], P99Ns: s[int(float64(n-1)*0.99+0.5)], MinNs: s[0], MaxNs: s[n-1], N: n, SamplesNs: s}
	fmt.Printf("go %-26s median %12.1f ns  p99 %12.1f ns  (n %d)\n", label, m.MedianNs, m.P99Ns, n)
	return m
}

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "bench/go: %s: %v\n", what, err)
	os.Exit(1)
}

// writeRecord writes a fresh record as another process's commit does: temp file, rename.
func writeRecord(path, key string, generation int64, expiresIn time.Duration) {
	now := time.Now().UnixMilli()
	body := fmt.Sprintf(`{"format": 1, "key": %q, "generation": %d, "access_token": "at-%s-%d", "refresh_token": "rt", "issued_at_ms": %d, "expires_at_ms": %d}`,
		key, generation, key, generation, now, now+expiresIn.Milliseconds())
	tmp := path + ".bench-tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		die("write", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		die("rename", err)
	}
}

func lockPath(record string) string { return strings.TrimSuffix(record, ".json") + ".lock" }

func flockOpen(path string) *os.File {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		die("open lock", err)
	}
	return f
}

// peer is the hand-written Go routine: one mutex for the goroutines, flock for the
// processes, and the record re-read and parsed on every call.
type peer struct {
	mu     sync.Mutex
	lock   *os.File
	record string
}

type peerToken struct {
	AccessToken string `json:"access_token"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

func (p *peer) token() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd := int(p.lock.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	b, err := os.ReadFile(p.record)
	if err != nil {
		return "", err
	}
	var t peerToken
	if err := json.Unmarshal(b, &t); err != nil {
		return "", err
	}
	if time.Until(time.UnixMilli(t.ExpiresAtMs)) < 5*time.Minute {
		return "", fmt.Errorf("expired: a refresh would go here")
	}
	return t.AccessToken, nil
}

// rounds runs f (a testing.B benchmark) n times; ns/op of each round.
func rounds(n int, f func(b *testing.B)) []float64 {
	out := make([]float64, 0, n)
	for range n {
		r := testing.Benchmark(f)
		out = append(out, float64(r.T.Nanoseconds())/float64(r.N))
		if os.Getenv("BENCH_GO_VERBOSE") != "" {
			fmt.Printf("  round: %v, %d allocs/op\n", r, r.MemAllocs/uint64(r.N))
		}
	}
	return out
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bench STORE_DIR OUT_JSON [quick]")
		os.Exit(2)
	}
	quick := len(os.Args) > 3 && os.Args[3] == "quick"
	nRounds, coldN, handoffN, peerHandoffN := 15, 400, 200, 200
	if quick {
		nRounds, coldN, handoffN, peerHandoffN = 3, 40, 20, 20
	}
	oauthlock.SetLogger(nil)
	if p := os.Getenv("BENCH_GO_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			die("profile", err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	store, err := oauthlock.Open(os.Args[1])
	if err != nil {
		die("open", err)
	}
	bg := context.Background()
	if err := store.Save(bg, "hot", oauthlock.Credential{AccessToken: "at-hot", RefreshToken: "rt", ExpiresIn: time.Hour}); err != nil {
		die("save", err)
	}
	src, err := store.Source("hot")
	if err != nil {
		die("source", err)
	}
	if _, err := src.AccessToken(bg); err != nil {
		die("warm-up", err)
	}
	var sink int
	results := map[string]measurement{}

	hot := func(ctx context.Context) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				t, err := src.AccessToken(ctx)
				if err != nil {
					die("hot", err)
				}
				sink += len(t.Value)
			}
		}
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	record, err := store.PathOf("hot")
	if err != nil {
		die("path", err)
	}
	p := &peer{lock: flockOpen(lockPath(record)), record: record}
	// The measurements take turns within each round, so that the load of a shared machine
	// falls on all of them alike.
	type kind struct {
		id, label string
		round     func() float64
	}
	bench := func(f func(b *testing.B)) func() float64 {
		return func() float64 { return rounds(1, f)[0] }
	}
	kinds := []kind{
		{"hot", "AccessToken(context.Background())", bench(hot(bg))},
		{"hot_cancellable", "AccessToken(ctx with cancel)", bench(hot(ctx))},
		{"hot_parallel", fmt.Sprintf("AccessToken, %d goroutines", runtime.GOMAXPROCS(0)), bench(func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := src.AccessToken(bg); err != nil {
						die("hot parallel", err)
					}
				}
			})
		})},
		{"c_hot", "C ABI hot path from C", func() float64 {
			ns, err := cHot(os.Args[1], "hot", 1_000_000)
			if err != nil {
				die("C baseline", err)
			}
			return ns
		}},
		{"cgo_call", "one empty cgo call", bench(emptyCall)},
		{"peer", "peer: Mutex+Flock+read+parse", bench(func(b *testing.B) {
			for b.Loop() {
				t, err := p.token()
				if err != nil {
					die("peer", err)
				}
				sink += len(t)
			}
		})},
	}
	samples := map[string][]float64{}
	for range nRounds {
		for _, k := range kinds {
			samples[k.id] = append(samples[k.id], k.round())
		}
	}
	for _, k := range kinds {
		results[k.id] = summarize(k.label, samples[k.id])
	}
	_ = p.lock.Close()
	_ = src.Close()

	cold := make([]float64, 0, coldN)
	for i := range coldN {
		key := fmt.Sprintf("cold-%d", i)
		path, _ := store.PathOf(key)
		writeRecord(path, key, 1, time.Hour)
		s, err := store.Source(key)
		if err != nil {
			die("cold source", err)
		}
		t0 := time.Now()
		t, err := s.AccessToken(bg)
		cold = append(cold, float64(time.Since(t0).Nanoseconds()))
		if err != nil {
			die("cold read", err)
		}
		sink += len(t.Value)
		_ = s.Close()
	}
	results["cold_read"] = summarize("cold read", cold)

	handoff := func(n int, wait func(key, record string) func() time.Time) []float64 {
		out := make([]float64, 0, n)
		for i := range n {
			key := fmt.Sprintf("handoff-%d-%d", len(results), i)
			if err := store.Save(bg, key, oauthlock.Credential{AccessToken: "old", RefreshToken: "rt", ExpiresAt: time.Now()}); err != nil {
				die("handoff save", err)
			}
			record, _ := store.PathOf(key)
			holder := flockOpen(lockPath(record))
			if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
				die("flock", err)
			}
			returned := make(chan time.Time, 1)
			w := wait(key, record)
			go func() { returned <- w() }()
			time.Sleep(20 * time.Millisecond) // ample for the waiter to block in flock
			writeRecord(record, key, 1000, time.Hour)
			released := time.Now()
			_ = syscall.Flock(int(holder.Fd()), syscall.LOCK_UN)
			out = append(out, float64((<-returned).Sub(released).Nanoseconds()))
			_ = holder.Close()
		}
		return out
	}
	results["handoff"] = summarize("hand-off", handoff(handoffN, func(key, _ string) func() time.Time {
		s, err := store.Source(key)
		if err != nil {
			die("handoff source", err)
		}
		return func() time.Time {
			defer s.Close()
			if _, err := s.AccessToken(bg); err != nil {
				die("handoff wait", err)
			}
			return time.Now()
		}
	}))
	results["peer_handoff"] = summarize("peer: hand-off", handoff(peerHandoffN, func(_, record string) func() time.Time {
		pp := &peer{lock: flockOpen(lockPath(record)), record: record}
		return func() time.Time {
			defer pp.lock.Close()
			if _, err := pp.token(); err != nil {
				die("peer handoff wait", err)
			}
			return time.Now()
		}
	}))
	_ = store.Close()

	out := map[string]any{
		"lang":           "go",
		"quick":          quick,
		"recorded_at_ms": time.Now().UnixMilli(),
		"versions":       map[string]string{"go": runtime.Version(), "gomaxprocs": fmt.Sprint(runtime.GOMAXPROCS(0))},
		"measurements":   results,
		"ratios": map[string]float64{
			"peer_over_hot":          results["peer"].MedianNs / results["hot"].MedianNs,
			"peer_handoff_over_ours": results["peer_handoff"].MedianNs / results["handoff"].MedianNs,
		},
		"sink": sink % 2,
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(os.Args[2], b, 0o644); err != nil {
		die("write results", err)
	}
	fmt.Printf("go peer/hot %.0fx, peer hand-off/hand-off %.2fx -> %s\n",
		results["peer"].MedianNs/results["hot"].MedianNs, results["peer_handoff"].MedianNs/results["handoff"].MedianNs, filepath.Base(os.Args[2]))
}
