package main

// The baselines measured in the same run: the C ABI's hot path called from C (what
// bench/c measures), and one empty cgo call (Go's fixed cost per crossing).

/*
#cgo pkg-config: oauth-lock-static
#include <oauth_lock.h>
#include <stdlib.h>
#include <time.h>

// ns per oauth_lock_source_access_token + oauth_lock_token_free on key's cached token,
// called from C; -1 on an error.
static double c_hot(const char *dir, const char *key, long n) {
  oauth_lock_store *store = NULL;
  oauth_lock_source *source = NULL;
  oauth_lock_token *t = NULL;
  if (oauth_lock_store_new(dir, &store) != OAUTH_LOCK_OK) return -1;
  if (oauth_lock_source_new(store, key, NULL, &source) != OAUTH_LOCK_OK) return -1;
  if (oauth_lock_source_access_token(source, &t) != OAUTH_LOCK_OK) return -1;
  oauth_lock_token_free(t);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    if (oauth_lock_source_access_token(source, &t) != OAUTH_LOCK_OK) return -1;
    oauth_lock_token_free(t);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  oauth_lock_source_free(source);
  oauth_lock_store_free(store);
  return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
}

static int c_noop(void) { return 0; }
*/
import "C"

import (
	"errors"
	"testing"
	"unsafe"
)

// cHot is the C ABI's hot path from C, one round of n calls.
func cHot(dir, key string, n int) (float64, error) {
	d, k := C.CString(dir), C.CString(key)
	defer C.free(unsafe.Pointer(d))
	defer C.free(unsafe.Pointer(k))
	ns := float64(C.c_hot(d, k, C.long(n)))
	if ns < 0 {
		return 0, errors.New("the C baseline failed")
	}
	return ns, nil
}

// emptyCall is one empty cgo call.
func emptyCall(b *testing.B) {
	for b.Loop() {
		C.c_noop()
	}
}
