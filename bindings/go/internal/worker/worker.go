// Package worker is one process of the multi-process runs (the package's own test and the
// mixed-language torture run, tests/torture): goroutines share one source; each call takes
// a token, sends it to the mock provider's /resource and, on a 401, rejects it and retries
// (a revocation can also catch the token a reject answered, hence a chain of rejects, at
// most MaxRejects). The report is one JSON object, the shape of the other languages' workers
// (tests/torture/test_torture.py).
package worker

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	oauthlock "github.com/oauth-lock/oauth-lock/bindings/go"
)

// MaxRejects is how many rejects one call may need before its 401 counts as an error.
const MaxRejects = 8

// sample is how many latencies each goroutine keeps (reservoir sampling).
const sample = 4000

// Report is what a worker process prints.
type Report struct {
	Lang              string           `json:"lang"`
	PID               int              `json:"pid"`
	Concurrency       int              `json:"concurrency"`
	Calls             int64            `json:"calls"`
	ResourceOK        int64            `json:"resource_ok"`
	Unauthorized      int64            `json:"resource_unauthorized"`
	Rejects           int64            `json:"rejects"`
	MaxRejectsPerCall int              `json:"max_rejects_per_call"`
	Errors            map[string]int64 `json:"errors"`
	LatenciesNs       []int64          `json:"latencies_ns"`
}

// Run runs goroutines loops on key in the store at dir for d against the mock at mockURL.
// Each call's ctx has a deadline (the Go path that can give up), every other goroutine's,
// so that the inline path is exercised too.
func Run(dir, key, mockURL string, d time.Duration, goroutines int) (Report, error) {
	store, err := oauthlock.Open(dir)
	if err != nil {
		return Report{}, err
	}
	defer store.Close()
	src, err := store.Source(key)
	if err != nil {
		return Report{}, err
	}
	defer src.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(d)
	rep := Report{Lang: "go", PID: os.Getpid(), Concurrency: goroutines, Errors: map[string]int64{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine Report
			mine.Errors = map[string]int64{}
			seen := 0
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(g)))
			fail := func(kind string, err error) {
				if mine.Errors[kind]++; mine.Errors[kind] == 1 {
					fmt.Fprintf(os.Stderr, "go pid %d: %s: %v\n", os.Getpid(), kind, err)
				}
			}
			for time.Now().Before(deadline) {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if g%2 == 1 {
					ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
				}
				started := time.Now()
				tok, err := src.AccessToken(ctx)
				ns := time.Since(started).Nanoseconds()
				if seen++; len(mine.LatenciesNs) < sample {
					mine.LatenciesNs = append(mine.LatenciesNs, ns)
				} else if i := rng.IntN(seen); i < sample {
					mine.LatenciesNs[i] = ns
				}
				mine.Calls++
				if err != nil {
					fail(code(err), err)
					cancel()
					continue
				}
				status, err := get(ctx, client, mockURL+"/resource", tok.Value)
				rejects := 0
				for err == nil && status == http.StatusUnauthorized && rejects < MaxRejects {
					mine.Unauthorized++
					mine.Rejects++
					rejects++
					mine.MaxRejectsPerCall = max(mine.MaxRejectsPerCall, rejects)
					var again oauthlock.AccessToken
					again, err = src.Reject(ctx, tok.Value)
					if err != nil {
						break
					}
					if again.Value == tok.Value {
						err = fmt.Errorf("reject returned the rejected token")
						break
					}
					tok = again
					status, err = get(ctx, client, mockURL+"/resource", tok.Value)
				}
				switch {
				case err != nil:
					fail(code(err), err)
				case status == http.StatusOK:
					mine.ResourceOK++
				default:
					fail(fmt.Sprintf("http_%d", status), fmt.Errorf("/resource answered %d after %d rejects", status, rejects))
				}
				cancel()
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Calls += mine.Calls
			rep.ResourceOK += mine.ResourceOK
			rep.Unauthorized += mine.Unauthorized
			rep.Rejects += mine.Rejects
			rep.MaxRejectsPerCall = max(rep.MaxRejectsPerCall, mine.MaxRejectsPerCall)
			for k, v := range mine.Errors {
				rep.Errors[k] += v
			}
			rep.LatenciesNs = append(rep.LatenciesNs, mine.LatenciesNs...)
		}()
	}
	wg.Wait()
	return rep, nil
}

// code names an error for the report: the library's code, else its text.
func code(err error) string {
	if e, ok := err.(*oauthlock.Error); ok {
		return e.Code.String()
	}
	if err.Error() == "reject returned the rejected token" {
		return "RejectReturnedTheRejectedToken"
	}
	return "other"
}

func get(ctx context.Context, c *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
