/* Many C processes × threads share one credential against the strict mock provider
 * (`oauth-lock mock-server --lifetime 1s`, which rotates on every refresh and revokes the
 * family on any replay). Asserted at the provider's /stats: 0 replays, 0 revoked families,
 * 0 invalid_grant, and exactly one refresh per rotation committed to the record.
 *
 * Usage: multiprocess STORE_DIR MOCK_URL PROCESSES THREADS SECONDS
 *        multiprocess --client STORE_DIR MOCK_URL THREADS SECONDS
 * The second form is one client process, no login and no assertions at the provider: the
 * C process beside the JVMs in bindings/jvm's MultiProcessTest, which asserts the counts. */
#include "support.h"

#include <pthread.h>
#include <sys/wait.h>
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
  long calls, resource_ok, recovered_401, errors;
} counts;

/* Every call: a token, then a request with it; after a 401, reject it and retry once. */
static void *client(void *arg) {
  counts *c = arg;
  while (now_s() < deadline) {
    oauth_lock_token *t = NULL;
    oauth_lock_code rc = oauth_lock_source_access_token(c->src, &t);
    c->calls++;
    if (rc != OAUTH_LOCK_OK) {
      fprintf(stderr, "pid %d: access_token: %s: %s\n", getpid(), oauth_lock_code_name(rc),
              last_error());
      c->errors++;
      continue;
    }
    int status = http(mock, "GET", "/resource", oauth_lock_token_value(t), NULL);
    if (status == 401) {
      oauth_lock_token *again = NULL;
      rc = oauth_lock_source_reject(c->src, oauth_lock_token_value(t), &again);
      if (rc == OAUTH_LOCK_OK &&
          http(mock, "GET", "/resource", oauth_lock_token_value(again), NULL) == 200) {
        c->recovered_401++;
      } else {
        fprintf(stderr, "pid %d: still unauthorized after reject (%s)\n", getpid(),
                oauth_lock_code_name(rc));
        c->errors++;
      }
      oauth_lock_token_free(again);
    } else if (status == 200) {
      c->resource_ok++;
    } else {
      fprintf(stderr, "pid %d: /resource answered %d\n", getpid(), status);
      c->errors++;
    }
    oauth_lock_token_free(t);
  }
  return NULL;
}

/* One process: its own store handle and source, `threads` threads sharing the source. */
static counts run_process(const char *dir, int threads) {
  counts total = {0};
  oauth_lock_store *store = NULL;
  oauth_lock_source *src = NULL;
  if (oauth_lock_store_new(dir, &store) != OAUTH_LOCK_OK ||
      oauth_lock_source_new(store, "soak", NULL, &src) != OAUTH_LOCK_OK) {
    fprintf(stderr, "pid %d: setup: %s\n", getpid(), last_error());
    total.errors = 1;
    return total;
  }
  pthread_t th[64];
  counts c[64];
  for (int i = 0; i < threads; i++) {
    c[i] = (counts){.src = src};
    pthread_create(&th[i], NULL, client, &c[i]);
  }
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    total.calls += c[i].calls;
    total.resource_ok += c[i].resource_ok;
    total.recovered_401 += c[i].recovered_401;
    total.errors += c[i].errors;
  }
  oauth_lock_source_free(src);
  oauth_lock_store_free(store);
  return total;
}

static long long generation(oauth_lock_store *store) {
  char *status = NULL;
  if (oauth_lock_store_status(store, "soak", &status) != OAUTH_LOCK_OK) return -1;
  long long g = json_int(status, "generation");
  oauth_lock_string_free(status);
  return g;
}

/* One client process beside other languages' processes: prints its counts; exit 1 on errors. */
static int client_only(const char *dir, const char *mock_url, int threads, double seconds) {
  if (threads < 1 || threads > 64) return 2;
  mock = mock_url;
  deadline = now_s() + seconds;
  counts c = run_process(dir, threads);
  printf("c pid %d: calls %ld ok %ld recovered %ld errors %ld\n", getpid(), c.calls,
         c.resource_ok, c.recovered_401, c.errors);
  return c.errors == 0 && c.calls > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "--client") == 0) {
    return client_only(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
  }
  if (argc != 6) {
    fprintf(stderr, "usage: %s STORE_DIR MOCK_URL PROCESSES THREADS SECONDS\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  mock = argv[2];
  int procs = atoi(argv[3]), threads = atoi(argv[4]);
  double seconds = atof(argv[5]);
  if (threads < 1 || threads > 64 || procs < 1) return 2;

  oauth_lock_store *store = NULL;
  char *cred = mock_login_credential(mock);
  if (!cred || oauth_lock_store_new(dir, &store) != OAUTH_LOCK_OK ||
      oauth_lock_store_save(store, "soak", cred, 0) != OAUTH_LOCK_OK) {
    fprintf(stderr, "login failed: %s\n", last_error());
    return 1;
  }
  free(cred);
  long long gen0 = generation(store);
  deadline = now_s() + seconds;

  int pipes[256][2];
  pid_t pids[256];
  if (procs > 256) return 2;
  for (int p = 0; p < procs; p++) {
    if (pipe(pipes[p]) != 0) return 1;
    pids[p] = fork();
    if (pids[p] == 0) {
      counts c = run_process(dir, threads);
      ssize_t w = write(pipes[p][1], &c, sizeof c);
      _exit(w == (ssize_t)sizeof c ? 0 : 1);
    }
    close(pipes[p][1]);
  }
  counts sum = {0};
  int failed_children = 0;
  for (int p = 0; p < procs; p++) {
    counts c;
    if (read(pipes[p][0], &c, sizeof c) != (ssize_t)sizeof c) {
      failed_children++;
    } else {
      sum.calls += c.calls;
      sum.resource_ok += c.resource_ok;
      sum.recovered_401 += c.recovered_401;
      sum.errors += c.errors;
    }
    close(pipes[p][0]);
    int status = 0;
    waitpid(pids[p], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed_children++;
  }

  long long rotations = generation(store) - gen0;
  char *stats = NULL;
  if (http(mock, "GET", "/stats", NULL, &stats) != 200) {
    fprintf(stderr, "cannot read /stats\n");
    return 1;
  }
  long long refreshes = json_int(stats, "refreshes"), replays = json_int(stats, "replays"),
            revoked = json_int(stats, "revoked_families"),
            invalid_grants = json_int(stats, "invalid_grants");
  printf("c multiprocess: %d processes x %d threads for %.0f s: %ld token calls, %ld resource "
         "ok, %ld recovered 401s, %ld errors; provider: %lld refreshes, %lld rotations, %lld "
         "replays, %lld revoked families, %lld invalid_grant\n",
         procs, threads, seconds, sum.calls, sum.resource_ok, sum.recovered_401, sum.errors,
         refreshes, rotations, replays, revoked, invalid_grants);
  int ok = 1;
#define EXPECT(cond)                                            \
  if (!(cond)) {                                                \
    fprintf(stderr, "FAIL multiprocess: %s\n%s\n", #cond, stats); \
    ok = 0;                                                     \
  }
  EXPECT(failed_children == 0);
  EXPECT(sum.errors == 0);
  EXPECT(replays == 0);
  EXPECT(revoked == 0);
  EXPECT(invalid_grants == 0);
  EXPECT(refreshes == rotations);
  EXPECT(rotations >= (long long)seconds); /* 1 s tokens rotate at least once a second */
  EXPECT(sum.calls > 1000);
  free(stats);
  oauth_lock_store_free(store);
  return ok ? 0 : 1;
}
