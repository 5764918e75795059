/* One C process beside the JVMs in MultiProcessTest: THREADS threads share one source for
 * KEY and, until SECONDS have passed, take a token, call the mock's /resource with it, and
 * after a 401 reject it and retry once. Prints its counts; exits 1 on any error.
 *
 * Usage: soak_loop STORE_DIR MOCK_URL KEY THREADS SECONDS */
#include "support.h"

#include <pthread.h>
#include <time.h>

static const char *mock;
static double deadline;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
  oauth_lock_source *src;
  long calls, ok, recovered, errors;
} counts;

static void *client(void *arg) {
  counts *c = arg;
  while (now_s() < deadline) {
    oauth_lock_token *t = NULL;
    c->calls++;
    oauth_lock_code rc = oauth_lock_source_access_token(c->src, &t);
    if (rc != OAUTH_LOCK_OK) {
      fprintf(stderr, "c pid %d: %s: %s\n", getpid(), oauth_lock_code_name(rc), last_error());
      c->errors++;
      continue;
    }
    int status = http(mock, "GET", "/resource", oauth_lock_token_value(t), NULL);
    if (status == 200) {
      c->ok++;
    } else if (status == 401) {
      oauth_lock_token *again = NULL;
      if (oauth_lock_source_reject(c->src, oauth_lock_token_value(t), &again) == OAUTH_LOCK_OK &&
          http(mock, "GET", "/resource", oauth_lock_token_value(again), NULL) == 200) {
        c->recovered++;
      } else {
        c->errors++;
      }
      oauth_lock_token_free(again);
    } else {
      c->errors++;
    }
    oauth_lock_token_free(t);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s STORE_DIR MOCK_URL KEY THREADS SECONDS\n", argv[0]);
    return 2;
  }
  mock = argv[2];
  int threads = atoi(argv[4]);
  if (threads < 1 || threads > 64) return 2;
  oauth_lock_store *store = NULL;
  oauth_lock_source *src = NULL;
  if (oauth_lock_store_new(argv[1], &store) != OAUTH_LOCK_OK ||
      oauth_lock_source_new(store, argv[3], NULL, &src) != OAUTH_LOCK_OK) {
    fprintf(stderr, "setup: %s\n", last_error());
    return 1;
  }
  deadline = now_s() + atof(argv[5]);
  pthread_t th[64];
  counts c[64];
  for (int i = 0; i < threads; i++) {
    c[i] = (counts){.src = src};
    pthread_create(&th[i], NULL, client, &c[i]);
  }
  counts sum = {0};
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    sum.calls += c[i].calls;
    sum.ok += c[i].ok;
    sum.recovered += c[i].recovered;
    sum.errors += c[i].errors;
  }
  printf("c pid %d: calls %ld ok %ld recovered %ld errors %ld\n", getpid(), sum.calls, sum.ok,
         sum.recovered, sum.errors);
  oauth_lock_source_free(src);
  oauth_lock_store_free(store);
  return sum.errors == 0 && sum.calls > 0 ? 0 : 1;
}
