package oauthlock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
	"github.com/oauth-lock/oauth-lock/bindings/go/internal/worker"
)

// A caller whose ctx ends while the credential's lock is held elsewhere returns at once
// with ctx's error; its call goes on in the background and, once the lock is released,
// refreshes (once) and commits.
func TestContextEndsWhileTheLockIsHeld(t *testing.T) {
	m := startMock(t)
	s := openStore(t)
	m.logIn(t, s, "k", true)
	src := source(t, s, "k")
	_, unlock := holdLock(t, s, "k")

	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := src.AccessToken(ctx)
	took := time.Since(started)
	if !errors.Is(err, context.DeadlineExceeded) || took > time.Second {
		t.Fatalf("after %v: %v", took, err)
	}
	var e *oauthlock.Error
	if errors.As(err, &e) {
		t.Fatalf("a ctx error is not an *oauthlock.Error: %v", err)
	}
	// Cancelled by hand, the same; an already cancelled ctx does not even start.
	ctx2, cancel2 := context.WithCancel(bg)
	go func() { time.Sleep(100 * time.Millisecond); cancel2() }()
	if _, err := src.Reject(ctx2, "whatever"); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := src.AccessToken(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := m.stats(t)["token_requests"]; got != 0 {
		t.Fatalf("%d token requests under a held lock", got)
	}
	// The source may be closed while its calls wait: it is freed when they return.
	_ = src.Close()

	unlock()
	deadline := time.Now().Add(10 * time.Second)
	for must[oauthlock.Status](t)(s.Status("k")).Generation < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	tok := must[oauthlock.AccessToken](t)(source(t, s, "k").AccessToken(bg))
	if tok.Generation != 2 || m.resource(t, tok.Value) != 200 {
		t.Fatalf("after the lock: %#v", tok)
	}
	if st := m.stats(t); st["refreshes"] != 1 || st["replays"] != 0 {
		t.Fatalf("stats %v", st)
	}
}

// G3: a refresh already sent when the caller's ctx ends is committed, and nobody spends
// that refresh token again.
func TestContextEndsDuringARefreshWhichCommits(t *testing.T) {
	m := startMock(t, "--latency", "1s")
	s := openStore(t)
	m.logIn(t, s, "k", true)
	src := source(t, s, "k")
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	started := time.Now()
	if _, err := src.AccessToken(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(started) > 800*time.Millisecond {
		t.Fatalf("after %v: %v", time.Since(started), err)
	}
	// A second caller joins the refresh in flight.
	tok := must[oauthlock.AccessToken](t)(src.AccessToken(bg))
	if tok.Generation != 2 || must[oauthlock.Status](t)(s.Status("k")).Generation != 2 {
		t.Fatalf("%#v", tok)
	}
	if st := m.stats(t); st["refreshes"] != 1 || st["token_requests"] != 1 || st["replays"] != 0 {
		t.Fatalf("stats %v", st)
	}
}

// G2: 200 goroutines that need a token at one expiry cause exactly one refresh.
func TestTwoHundredGoroutinesAtExpiryRefreshOnce(t *testing.T) {
	m := startMock(t, "--latency", "50ms")
	s := openStore(t)
	m.logIn(t, s, "k", true)
	src := source(t, s, "k")
	const n = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	toks := make([]oauthlock.AccessToken, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := bg
			if i%2 == 0 { // half of them on the path that can give up
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(bg, time.Minute)
				defer cancel()
			}
			<-start
			toks[i], errs[i] = src.AccessToken(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i].Value != toks[0].Value || toks[i].Generation != 2 {
			t.Fatalf("goroutine %d: %v %v", i, toks[i], errs[i])
		}
	}
	if st := m.stats(t); st["refreshes"] != 1 || st["token_requests"] != 1 {
		t.Fatalf("200 goroutines at expiry: %v", st)
	}
}

// 8 processes x 16 goroutines on one credential for 20 s (3 s with -short) against the
// strict mock with 1 s tokens and revocations: 0 replays, 0 revoked families, refreshes ==
// rotations (counted at the provider and in the record's generation), no client error.
func TestProcessesAgainstTheStrictMock(t *testing.T) {
	const procs, goroutines = 8, 16
	seconds := 20.0
	if testing.Short() {
		seconds = 3
	}
	m := startMock(t, "--lifetime", "1s")
	dir := t.TempDir()
	s, err := oauthlock.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.logIn(t, s, "k", false)
	gen0 := must[oauthlock.Status](t)(s.Status("k")).Generation

	type proc struct {
		cmd *exec.Cmd
		out bytes.Buffer
		err bytes.Buffer
	}
	ps := make([]*proc, procs)
	for i := range ps {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
		p.cmd.Env = append(os.Environ(), fmt.Sprintf("OAUTHLOCK_TEST_WORKER=%s|k|%s|%g|%d", dir, m.url, seconds, goroutines))
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	stop := make(chan struct{})
	revoked := make(chan int)
	go func() { // the provider revokes every access token now and then: 401s, rejects
		n := 0
		for {
			select {
			case <-stop:
				revoked <- n
				return
			case <-time.After(time.Duration(seconds/5*1000) * time.Millisecond):
				m.send(t, "POST", "/admin/revoke-access", map[string]any{}, "")
				n++
			}
		}
	}()
	var total worker.Report
	for i, p := range ps {
		werr := p.cmd.Wait()
		var rep worker.Report
		if err := json.Unmarshal(bytes.TrimSpace(p.out.Bytes()), &rep); err != nil || werr != nil {
			t.Errorf("process %d exited %v, report %q: %s", i, werr, p.out.String(), p.err.String())
			continue
		}
		if rep.Calls == 0 || len(rep.Errors) > 0 {
			t.Errorf("process %d: %d calls, errors %v: %s", i, rep.Calls, rep.Errors, p.err.String())
		}
		total.Calls += rep.Calls
		total.Rejects += rep.Rejects
		total.ResourceOK += rep.ResourceOK
	}
	close(stop)
	revocations := <-revoked
	st := m.stats(t)
	rotations := int(must[oauthlock.Status](t)(s.Status("k")).Generation - gen0)
	t.Logf("%d processes x %d goroutines, %g s, 1 s tokens: %d calls, %d resource 200s, %d rejects, %d revocations; provider %v; rotations %d",
		procs, goroutines, seconds, total.Calls, total.ResourceOK, total.Rejects, revocations, st, rotations)
	if st["replays"] != 0 || st["revoked_families"] != 0 || st["invalid_grants"] != 0 || st["bad_requests"] != 0 {
		t.Fatalf("the provider saw misuse: %v", st)
	}
	if st["refreshes"] != rotations || st["token_requests"] != st["refreshes"] {
		t.Fatalf("%d refreshes (%d token requests) for %d rotations", st["refreshes"], st["token_requests"], rotations)
	}
	if rotations < int(seconds/2) {
		t.Fatalf("only %d rotations in %g s of 1 s tokens", rotations, seconds)
	}
}
