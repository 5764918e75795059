/* What every C test program shares: a tiny test runner, checks that assert the exact
 * oauth_lock_code and the last-error message, file helpers for "byte-for-byte unchanged",
 * and a minimal HTTP/1.1 client for the loopback mock provider (no curl needed). */
#ifndef OAUTH_LOCK_TEST_SUPPORT_H
#define OAUTH_LOCK_TEST_SUPPORT_H

#define _GNU_SOURCE
#include "oauth_lock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- runner ---------------------------------------------------------------------------- */

static int t_failed_now; /* the running test has failed */
static int t_passed, t_failed;

#define FAIL(...)                                                                         \
  do {                                                                                    \
    fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                                \
    fprintf(stderr, __VA_ARGS__);                                                         \
    fprintf(stderr, "\n");                                                                \
    t_failed_now = 1;                                                                     \
    return;                                                                               \
  } while (0)

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) FAIL("%s", #cond);                                                       \
  } while (0)

/* The thread's last error message (static buffer: tests are single-threaded here). */
static inline const char *last_error(void) {
  static char buf[4096];
  size_t n = 0;
  if (oauth_lock_last_error(buf, sizeof buf, &n) != OAUTH_LOCK_OK) return "<last_error failed>";
  return buf;
}

/* rc must be `want`, the thread's last error code too, and the message must contain each
 * of the NULL-terminated needles (what was wrong, the key, the path...). */
#define CHECK_CODE(rc, want, ...)                                                         \
  do {                                                                                    \
    oauth_lock_code rc_ = (rc);                                                           \
    if (rc_ != (want))                                                                    \
      FAIL("%s gave %s (%d), want %s: %s", #rc, oauth_lock_code_name(rc_), rc_,           \
           oauth_lock_code_name(want), last_error());                                     \
    if (oauth_lock_last_error_code() != (want))                                           \
      FAIL("last_error_code is %d, want %d", oauth_lock_last_error_code(), want);         \
    const char *needles_[] = {__VA_ARGS__, NULL};                                         \
    for (const char **n_ = needles_; *n_; n_++)                                           \
      if (!strstr(last_error(), *n_))                                                     \
        FAIL("%s: message does not name \"%s\": %s", #rc, *n_, last_error());             \
  } while (0)

#define CHECK_OK(rc)                                                                      \
  do {                                                                                    \
    oauth_lock_code rc_ = (rc);                                                           \
    if (rc_ != OAUTH_LOCK_OK)                                                             \
      FAIL("%s gave %s (%d): %s", #rc, oauth_lock_code_name(rc_), rc_, last_error());     \
  } while (0)

#define CHECK_STR(hay, needle)                                                            \
  do {                                                                                    \
    const char *h_ = (hay);                                                               \
    if (!h_ || !strstr(h_, (needle))) FAIL("\"%s\" not in %s", (needle), h_ ? h_ : "NULL"); \
  } while (0)

typedef void (*test_fn)(void);

static inline void run_test(const char *name, test_fn fn) {
  t_failed_now = 0;
  fn();
  if (t_failed_now) {
    t_failed++;
    fprintf(stderr, "FAIL %s\n", name);
  } else {
    t_passed++;
    printf("ok   %s\n", name);
  }
  fflush(stdout);
}

#define RUN(fn) run_test(#fn, fn)

/* ---- files ----------------------------------------------------------------------------- */

/* The whole file (NUL-terminated, *len bytes), or NULL when it does not exist. */
static inline char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static inline int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* ---- JSON (just enough: the integer value of the first "name":) ------------------------ */

static inline long long json_int(const char *json, const char *name) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\":", name);
  const char *p = json ? strstr(json, pat) : NULL;
  if (!p) return -1;
  p += strlen(pat);
  while (*p == ' ') p++;
  return strtoll(p, NULL, 10);
}

/* ---- HTTP to the loopback mock --------------------------------------------------------- */

#include "mock_http.h"

/* A login at the mock, with the record's `refresh` config pointing back at it: the
 * credential JSON to save (malloc'd). */
static inline char *mock_login_credential(const char *base_url) {
  char *body = NULL;
  if (http(base_url, "POST", "/login", NULL, &body) != 200) {
    free(body);
    return NULL;
  }
  char *end = strrchr(body, '}');
  if (!end) {
    free(body);
    return NULL;
  }
  *end = 0;
  char *out = NULL;
  if (asprintf(&out,
               "%s,\"refresh\":{\"token_url\":\"%s/oauth/token\",\"client_id\":\"oauth-lock-demo\","
               "\"body\":\"json\"}}",
               body, base_url) < 0)
    out = NULL;
  free(body);
  return out;
}

#endif
