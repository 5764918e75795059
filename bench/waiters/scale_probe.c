/* A store with many credentials, for the scale figures of docs/BENCHMARKS.md ("Waiters wake
 * together"; bench/waiters/waiters.py runs it, scripts/bench-waiters builds it against the
 * release liboauth_lock). Through the C ABI, the core's hot path:
 *
 *   scale_probe SMALL_DIR BIG_DIR N ROUNDS CALLS
 *
 * SMALL_DIR is an empty store; BIG_DIR holds fresh records key-0 … key-(N-1) and "hot".
 * Prints one JSON object: the hot path (per-round means of CALLS calls of
 * oauth_lock_source_access_token + oauth_lock_token_free on "hot") in the one-credential
 * store, in the big store before and after this process opened a source for every one of its
 * N credentials and fetched a token from each (N slots live), and cycling over all N sources;
 * the time to load them all; this process's RSS before and after (VmRSS, kB) and after
 * freeing the sources. Figures, not tests. */
#define _GNU_SOURCE
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

static void die(const char *what) {
  char msg[1024];
  size_t len = 0;
  oauth_lock_last_error(msg, sizeof msg, &len);
  fprintf(stderr, "scale_probe: %s: %s\n", what, msg);
  exit(1);
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

static size_t sink;

static void fetch(oauth_lock_source *s) {
  oauth_lock_token *t = NULL;
  if (oauth_lock_source_access_token(s, &t) != OAUTH_LOCK_OK) die("access_token");
  sink += (size_t)oauth_lock_token_value(t)[0];
  oauth_lock_token_free(t);
}

/* Per-round mean ns per call; sources[i % n] for call i (n = 1: one credential). */
static void rounds_of(FILE *out, const char *name, oauth_lock_source **sources, long n,
                      int rounds, long calls) {
  fprintf(out, "  \"%s\": [", name);
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    long j = 0;
    for (long i = 0; i < calls; i++) {
      fetch(sources[j]);
      if (++j == n) j = 0;
    }
    fprintf(out, "%s%.2f", r ? ", " : "", (now_ns() - t0) / (double)calls);
  }
  fprintf(out, "],\n");
}

static oauth_lock_source *source_of(oauth_lock_store *store, const char *key) {
  oauth_lock_source *s = NULL;
  if (oauth_lock_source_new(store, key, NULL, &s) != OAUTH_LOCK_OK) die("source");
  return s;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s SMALL_DIR BIG_DIR N ROUNDS CALLS\n", argv[0]);
    return 2;
  }
  long n = strtol(argv[3], NULL, 10);
  int rounds = (int)strtol(argv[4], NULL, 10);
  long calls = strtol(argv[5], NULL, 10);
  oauth_lock_set_client_lang("c");
  FILE *out = stdout;
  fprintf(out, "{\n  \"n\": %ld,\n  \"rounds\": %d,\n  \"calls\": %ld,\n", n, rounds, calls);

  oauth_lock_store *small = NULL;
  if (oauth_lock_store_new(argv[1], &small) != OAUTH_LOCK_OK) die("small store");
  if (oauth_lock_store_save(small, "hot",
                            "{\"access_token\":\"at-hot\",\"refresh_token\":\"rt\",\"expires_in\":3600}",
                            0) != OAUTH_LOCK_OK)
    die("save");
  oauth_lock_source *hot = source_of(small, "hot");
  fetch(hot);
  rounds_of(out, "hot_one_credential_ns", &hot, 1, rounds, calls);
  oauth_lock_source_free(hot);
  oauth_lock_store_free(small);

  oauth_lock_store *big = NULL;
  if (oauth_lock_store_new(argv[2], &big) != OAUTH_LOCK_OK) die("big store");
  hot = source_of(big, "hot");
  fetch(hot);
  rounds_of(out, "hot_big_store_ns", &hot, 1, rounds, calls);
  long rss_baseline = rss_kb();

  oauth_lock_source **all = malloc(sizeof(*all) * (size_t)n);
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "key-%ld", i);
    all[i] = source_of(big, key);
    fetch(all[i]);
  }
  double load_ns = now_ns() - t0;
  long rss_loaded = rss_kb();
  rounds_of(out, "hot_all_loaded_ns", &hot, 1, rounds, calls);
  rounds_of(out, "cycle_all_ns", all, n, rounds, calls);
  for (long i = 0; i < n; i++) oauth_lock_source_free(all[i]);
  long rss_freed = rss_kb();
  free(all);
  oauth_lock_source_free(hot);
  oauth_lock_store_free(big);
  fprintf(out,
          "  \"load_all_ns\": %.0f,\n  \"rss_kb\": {\"baseline\": %ld, \"loaded\": %ld, "
          "\"sources_freed\": %ld},\n  \"sink\": %zu\n}\n",
          load_ns, rss_baseline, rss_loaded, rss_freed, sink % 2);
  return 0;
}
