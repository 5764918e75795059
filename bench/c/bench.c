/* The C figures of docs/BENCHMARKS.md (scripts/bench-c), written as JSON for bench/report.py:
 * - hot: oauth_lock_source_access_token + reading the value + oauth_lock_token_free per call
 *   on a fresh cached token (what a C caller pays per request), per-round means;
 * - cold_read: the first access_token of a key in this process, the record on disk fresh and
 *   written by "another process" (directly, so this process has never seen it);
 * - handoff: another holder has <stem>.lock (a flock from this process's main thread) while a
 *   thread is blocked in access_token on the expired record; the holder commits a fresh record
 *   and releases; time from the release to the blocked call's return.
 * Figures, not tests: nothing here asserts a time.
 *
 * Usage: bench STORE_DIR OUT_JSON [quick] */
#define _GNU_SOURCE
#include "oauth_lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void die(const char *what) {
  char msg[1024];
  size_t len = 0;
  oauth_lock_last_error(msg, sizeof msg, &len);
  fprintf(stderr, "bench.c: %s: %s\n", what, msg);
  exit(1);
}

/* Writes one measurement (sorted samples and their summary) as a JSON member. */
static void measurement(FILE *out, const char *id, const char *label, double *s, int n,
                        int last) {
  qsort(s, (size_t)n, sizeof(double), cmp);
  int p99 = (int)((n - 1) * 0.99 + 0.5);
  fprintf(out,
          "    \"%s\": {\"label\": \"%s\", \"median_ns\": %.1f, \"p99_ns\": %.1f, "
          "\"min_ns\": %.1f, \"max_ns\": %.1f, \"n\": %d, \"samples_ns\": [",
          id, label, s[n / 2], s[p99], s[0], s[n - 1], n);
  for (int i = 0; i < n; i++) fprintf(out, "%s%.1f", i ? ", " : "", s[i]);
  fprintf(out, "]}%s\n", last ? "" : ",");
  printf("c %-10s median %12.1f ns  p99 %12.1f ns  (n %d)\n", id, s[n / 2], s[p99], n);
}

static char *path_of(oauth_lock_store *store, const char *key) {
  char *p = NULL;
  if (oauth_lock_store_path_of(store, key, &p) != OAUTH_LOCK_OK) die("path_of");
  char *copy = strdup(p);
  oauth_lock_string_free(p);
  return copy;
}

/* A fresh record as another process's commit writes it: temp file, then rename. */
static void write_record(const char *path, const char *key, long long generation) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.bench-tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) die("fopen");
  long long now = wall_ms();
  fprintf(f,
          "{\"format\": 1, \"key\": \"%s\", \"generation\": %lld, \"access_token\": "
          "\"at-%s-%lld\", \"refresh_token\": \"rt\", \"issued_at_ms\": %lld, "
          "\"expires_at_ms\": %lld}",
          key, generation, key, generation, now, now + 3600000);
  fclose(f);
  if (rename(tmp, path) != 0) die("rename");
}

typedef struct {
  oauth_lock_source *source;
  double returned;
} waiter;

static void *wait_for_token(void *arg) {
  waiter *w = arg;
  oauth_lock_token *t = NULL;
  if (oauth_lock_source_access_token(w->source, &t) != OAUTH_LOCK_OK) die("handoff wait");
  w->returned = now_ns();
  oauth_lock_token_free(t);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s STORE_DIR OUT_JSON [quick]\n", argv[0]);
    return 2;
  }
  int quick = argc > 3 && strcmp(argv[3], "quick") == 0;
  int rounds = quick ? 3 : 15, cold_n = quick ? 40 : 400, handoff_n = quick ? 20 : 200;
  long calls = quick ? 100000 : 1000000;
  oauth_lock_set_client_lang("c");
  oauth_lock_store *store = NULL;
  oauth_lock_source *source = NULL;
  if (oauth_lock_store_new(argv[1], &store) != OAUTH_LOCK_OK) die("store");
  if (oauth_lock_store_save(store, "hot",
                            "{\"access_token\":\"at-hot\",\"refresh_token\":\"rt\",\"expires_in\":3600}",
                            0) != OAUTH_LOCK_OK)
    die("save");
  if (oauth_lock_source_new(store, "hot", NULL, &source) != OAUTH_LOCK_OK) die("source");

  oauth_lock_token *token = NULL;
  if (oauth_lock_source_access_token(source, &token) != OAUTH_LOCK_OK) die("warm-up");
  oauth_lock_token_free(token);

  double *hot = malloc(sizeof(double) * (size_t)rounds);
  size_t sink = 0;
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
      if (oauth_lock_source_access_token(source, &token) != OAUTH_LOCK_OK) die("call");
      sink += (size_t)oauth_lock_token_value(token)[0];
      oauth_lock_token_free(token);
    }
    hot[r] = (now_ns() - t0) / (double)calls;
  }
  oauth_lock_source_free(source);

  double *cold = malloc(sizeof(double) * (size_t)cold_n);
  for (int i = 0; i < cold_n; i++) {
    char key[32];
    snprintf(key, sizeof key, "cold-%d", i);
    char *p = path_of(store, key);
    write_record(p, key, 1);
    free(p);
    oauth_lock_source *s = NULL;
    if (oauth_lock_source_new(store, key, NULL, &s) != OAUTH_LOCK_OK) die("cold source");
    double t0 = now_ns();
    if (oauth_lock_source_access_token(s, &token) != OAUTH_LOCK_OK) die("cold read");
    cold[i] = now_ns() - t0;
    sink += (size_t)oauth_lock_token_value(token)[0];
    oauth_lock_token_free(token);
    oauth_lock_source_free(s);
  }

  double *handoff = malloc(sizeof(double) * (size_t)handoff_n);
  for (int i = 0; i < handoff_n; i++) {
    char key[32];
    snprintf(key, sizeof key, "handoff-%d", i);
    if (oauth_lock_store_save(store, key,
                              "{\"access_token\":\"old\",\"refresh_token\":\"rt\",\"expires_in\":0}",
                              0) != OAUTH_LOCK_OK)
      die("handoff save");
    char *record = path_of(store, key);
    char lock[4096];
    snprintf(lock, sizeof lock, "%.*s.lock", (int)(strlen(record) - strlen(".json")), record);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) die("flock");
    waiter w = {0};
    if (oauth_lock_source_new(store, key, NULL, &w.source) != OAUTH_LOCK_OK) die("handoff source");
    pthread_t th;
    pthread_create(&th, NULL, wait_for_token, &w);
    /* No counter of blocked waiters from C: 20 ms is ample for the thread to block in flock. */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    write_record(record, key, 1000);
    double released = now_ns();
    flock(fd, LOCK_UN);
    pthread_join(th, NULL);
    close(fd);
    handoff[i] = w.returned - released;
    oauth_lock_source_free(w.source);
    free(record);
  }
  oauth_lock_store_free(store);

  FILE *out = fopen(argv[2], "w");
  if (!out) die("open OUT_JSON");
  fprintf(out, "{\n  \"lang\": \"c\",\n  \"quick\": %s,\n  \"recorded_at_ms\": %lld,\n",
          quick ? "true" : "false", wall_ms());
  fprintf(out, "  \"versions\": {\"liboauth_lock\": \"%s\"},\n  \"measurements\": {\n",
          oauth_lock_version());
  measurement(out, "hot", "`oauth_lock_source_access_token` + `oauth_lock_token_free`", hot,
              rounds, 0);
  measurement(out, "cold_read", "first `oauth_lock_source_access_token` of a fresh record", cold,
              cold_n, 0);
  measurement(out, "handoff", "release → blocked `oauth_lock_source_access_token` returns", handoff,
              handoff_n, 1);
  fprintf(out, "  },\n  \"sink\": %zu\n}\n", sink % 2);
  fclose(out);
  free(hot);
  free(cold);
  free(handoff);
  return 0;
}
