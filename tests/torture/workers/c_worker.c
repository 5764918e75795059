/* One C process of the mixed torture run (tests/torture/test_torture.py): THREADS threads
 * share one source; each call takes a token, sends it to the mock's /resource and, on a 401,
 * rejects it and retries (a revocation can also catch the token the reject adopted, hence a
 * chain of rejects; see MAX_REJECTS). Prints one JSON line report; exits 1 on any error. tests/c/multiprocess.c
 * --client prints no JSON, no latencies and retries a 401 once, hence this one.
 *
 * Usage: c_worker STORE_DIR KEY MOCK_URL SECONDS THREADS */
#include "support.h"

#include <pthread.h>
#include <time.h>

/* A 401 after this many rejects in one call is an error. One revocation can take several: it
 * kills every token issued before it, and a reject answers with a token other than the
 * rejected one (the process's cached one, the file's, or a refresh answered just before the
 * revocation), which may be such a token too; each reject must at least return another one. */
#define MAX_REJECTS 8
/* Latency samples kept per thread (reservoir sampling). */
#define SAMPLE 4000
#define MAX_THREADS 64
/* Error kinds counted: the library's codes by number (0..127), then HTTP failures. */
#define KINDS 128
#define HTTP_FAILURE 127
/* reject() answered with the token it was given (it must return another one). */
#define SAME_TOKEN 126

static const char *mock, *key;
static double deadline;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct {
  oauth_lock_source *src;
  long calls, ok, unauthorized, rejects, seen;
  int longest; /* the most rejects one call needed */
  long errors[KINDS];
  int last_http; /* the status of the last HTTP failure, for the report */
  long long latencies[SAMPLE];
  int n_latencies;
  unsigned seed;
} tally;

static void latency(tally *t, long long ns) {
  t->seen++;
  if (t->n_latencies < SAMPLE) {
    t->latencies[t->n_latencies++] = ns;
  } else {
    long i = (long)(rand_r(&t->seed) % (unsigned long)t->seen);
    if (i < SAMPLE) t->latencies[i] = ns;
  }
}

static void error(tally *t, oauth_lock_code rc) {
  int kind = rc >= 0 && rc < SAME_TOKEN ? (int)rc : SAME_TOKEN - 1;
  if (t->errors[kind]++ == 0)
    fprintf(stderr, "c pid %d: %s: %s\n", getpid(), oauth_lock_code_name(rc), last_error());
}

static void *loop(void *arg) {
  tally *t = arg;
  while (now_s() < deadline) {
    oauth_lock_token *token = NULL;
    long long started = now_ns();
    oauth_lock_code rc = oauth_lock_source_access_token(t->src, &token);
    latency(t, now_ns() - started);
    t->calls++;
    if (rc != OAUTH_LOCK_OK) {
      error(t, rc);
      continue;
    }
    int status = http(mock, "GET", "/resource", oauth_lock_token_value(token), NULL);
    int rejects = 0, same = 0;
    while (status == 401 && rejects < MAX_REJECTS) {
      t->unauthorized++;
      t->rejects++;
      rejects++;
      if (rejects > t->longest) t->longest = rejects;
      oauth_lock_token *again = NULL;
      rc = oauth_lock_source_reject(t->src, oauth_lock_token_value(token), &again);
      if (rc == OAUTH_LOCK_OK)
        same = strcmp(oauth_lock_token_value(again), oauth_lock_token_value(token)) == 0;
      oauth_lock_token_free(token);
      token = again;
      if (rc != OAUTH_LOCK_OK || same) break;
      status = http(mock, "GET", "/resource", oauth_lock_token_value(token), NULL);
    }
    if (rc != OAUTH_LOCK_OK) {
      error(t, rc);
    } else if (same) {
      if (t->errors[SAME_TOKEN]++ == 0)
        fprintf(stderr, "c pid %d: reject returned the rejected token\n", getpid());
    } else if (status == 200) {
      t->ok++;
    } else {
      if (t->errors[HTTP_FAILURE]++ == 0)
        fprintf(stderr, "c pid %d: /resource answered %d after %d rejects\n", getpid(), status,
                rejects);
      t->last_http = status;
    }
    oauth_lock_token_free(token);
    usleep(1000);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s STORE_DIR KEY MOCK_URL SECONDS THREADS\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  key = argv[2];
  mock = argv[3];
  double seconds = atof(argv[4]);
  int threads = atoi(argv[5]);
  if (threads < 1 || threads > MAX_THREADS) return 2;
  oauth_lock_store *store = NULL;
  oauth_lock_source *src = NULL;
  if (oauth_lock_store_new(dir, &store) != OAUTH_LOCK_OK ||
      oauth_lock_source_new(store, key, NULL, &src) != OAUTH_LOCK_OK) {
    fprintf(stderr, "c pid %d: setup: %s\n", getpid(), last_error());
    return 1;
  }
  deadline = now_s() + seconds;
  static tally t[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  for (int i = 0; i < threads; i++) {
    t[i].src = src;
    t[i].seed = (unsigned)(getpid() * 31 + i);
    pthread_create(&th[i], NULL, loop, &t[i]);
  }
  tally all = {0};
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    all.calls += t[i].calls;
    all.ok += t[i].ok;
    all.unauthorized += t[i].unauthorized;
    all.rejects += t[i].rejects;
    if (t[i].longest > all.longest) all.longest = t[i].longest;
    for (int k = 0; k < KINDS; k++) all.errors[k] += t[i].errors[k];
    if (t[i].last_http) all.last_http = t[i].last_http;
  }
  oauth_lock_source_free(src);
  oauth_lock_store_free(store);

  long errors = 0;
  printf("{\"lang\":\"c\",\"pid\":%d,\"concurrency\":%d,\"calls\":%ld,\"resource_ok\":%ld,"
         "\"resource_unauthorized\":%ld,\"rejects\":%ld,\"max_rejects_per_call\":%d,"
         "\"errors\":{",
         getpid(), threads, all.calls, all.ok, all.unauthorized, all.rejects, all.longest);
  for (int k = 0; k < KINDS; k++) {
    if (!all.errors[k]) continue;
    if (errors) printf(",");
    if (k == HTTP_FAILURE)
      printf("\"http_%d\":%ld", all.last_http, all.errors[k]);
    else if (k == SAME_TOKEN)
      printf("\"RejectReturnedTheRejectedToken\":%ld", all.errors[k]);
    else
      printf("\"%s\":%ld", oauth_lock_code_name((oauth_lock_code)k), all.errors[k]);
    errors += all.errors[k];
  }
  printf("},\"latencies_ns\":[");
  int first = 1;
  for (int i = 0; i < threads; i++)
    for (int j = 0; j < t[i].n_latencies; j++) {
      printf(first ? "%lld" : ",%lld", t[i].latencies[j]);
      first = 0;
    }
  printf("]}\n");
  return errors == 0 && all.calls > 0 ? 0 : 1;
}
