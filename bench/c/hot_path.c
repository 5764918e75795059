/* The C hot path: oauth_lock_source_access_token + oauth_lock_token_free per call on a
 * fresh cached token (what a C caller pays per request), median ns over repeated rounds.
 * A figure, not a test: nothing here asserts a time.
 *
 * Usage: hot_path STORE_DIR [ROUNDS [CALLS_PER_ROUND]] */
#define _POSIX_C_SOURCE 200809L
#include "oauth_lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int die(const char *what) {
  char msg[1024];
  size_t len = 0;
  oauth_lock_last_error(msg, sizeof msg, &len);
  fprintf(stderr, "%s: %s\n", what, msg);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s STORE_DIR [ROUNDS [CALLS_PER_ROUND]]\n", argv[0]);
    return 2;
  }
  int rounds = argc > 2 ? atoi(argv[2]) : 15;
  long calls = argc > 3 ? atol(argv[3]) : 1000000;
  if (rounds < 1 || rounds > 1000 || calls < 1) return 2;
  oauth_lock_store *store = NULL;
  oauth_lock_source *source = NULL;
  if (oauth_lock_store_new(argv[1], &store) != OAUTH_LOCK_OK) return die("store");
  if (oauth_lock_store_save(store, "hot",
                            "{\"access_token\":\"at-hot\",\"refresh_token\":\"rt\",\"expires_in\":3600}",
                            0) != OAUTH_LOCK_OK)
    return die("save");
  if (oauth_lock_source_new(store, "hot", NULL, &source) != OAUTH_LOCK_OK) return die("source");

  oauth_lock_token *token = NULL;
  if (oauth_lock_source_access_token(source, &token) != OAUTH_LOCK_OK) return die("warm-up");
  oauth_lock_token_free(token);

  double *per_call = malloc(sizeof(double) * (size_t)rounds);
  size_t sink = 0;
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
      if (oauth_lock_source_access_token(source, &token) != OAUTH_LOCK_OK) return die("call");
      sink += (size_t)oauth_lock_token_value(token)[0];
      oauth_lock_token_free(token);
    }
    per_call[r] = (now_ns() - t0) / (double)calls;
  }
  qsort(per_call, (size_t)rounds, sizeof(double), cmp);
  /* One line for scripts/bench-c; `sink` keeps the loop from being optimised away. */
  printf("c_hot_path_ns %.1f min %.1f max %.1f rounds %d calls %ld sink %zu\n",
         per_call[rounds / 2], per_call[0], per_call[rounds - 1], rounds, calls, sink % 2);
  free(per_call);
  oauth_lock_source_free(source);
  oauth_lock_store_free(store);
  return 0;
}
