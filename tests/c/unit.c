/* Unit-style checks of every function of include/oauth_lock.h and every NULL or bad
 * argument: each asserts the exact code, that the last error names what was wrong, and,
 * where a record exists, that the record file is byte-for-byte unchanged.
 *
 * Usage: unit STORE_DIR MOCK_URL   (scripts/test-c starts `oauth-lock mock-server`). */
#include "support.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *dir;  /* the test store's directory */
static const char *mock; /* http://127.0.0.1:PORT */
static oauth_lock_store *store;

#define BAD_UTF8 "\xff\xfe"
#define FRESH "{\"access_token\":\"at-fresh\",\"refresh_token\":\"rt-1\",\"expires_in\":3600}"
#define EXPIRED "{\"access_token\":\"at-old\",\"refresh_token\":\"rt-old\",\"expires_in\":0}"

static char *path_of(const char *key) {
  char *p = NULL;
  if (oauth_lock_store_path_of(store, key, &p) != OAUTH_LOCK_OK) return NULL;
  return p;
}

/* A snapshot of a record file, to prove a failed call left it byte-for-byte unchanged. */
typedef struct {
  char *path, *bytes;
  size_t len;
} snapshot;

static snapshot snap(const char *key) {
  snapshot s = {path_of(key), NULL, 0};
  if (s.path) s.bytes = read_file(s.path, &s.len);
  return s;
}

static int unchanged(snapshot *s) {
  size_t len = 0;
  char *now = read_file(s->path, &len);
  int same = (now == NULL && s->bytes == NULL) ||
             (now && s->bytes && len == s->len && memcmp(now, s->bytes, len) == 0);
  free(now);
  return same;
}

static void drop_snap(snapshot *s) {
  oauth_lock_string_free(s->path);
  free(s->bytes);
}

#define CHECK_UNCHANGED(s)                                                                \
  do {                                                                                    \
    if (!unchanged(&(s))) FAIL("the record %s changed", (s).path);                        \
  } while (0)

/* After a failed refresh the record keeps every token field line for line; what was added
 * is the shared backoff (DESIGN.md §4 step 9), with the generation and writer of that write. */
static int only_backoff_added(snapshot *s) {
  static const char *kept[] = {"\"access_token\"", "\"refresh_token\"", "\"expires_at_ms\"",
                               "\"issued_at_ms\"",  "\"state\"",         "\"last_error\"",
                               "\"key\""};
  size_t len = 0;
  char *now = read_file(s->path, &len);
  int ok = now != NULL && s->bytes != NULL && strstr(now, "\"backoff\"") != NULL;
  for (const char *line = s->bytes; ok && line && *line; line = strchr(line, '\n')) {
    if (*line == '\n') line++;
    const char *end = strchr(line, '\n');
    size_t n = end ? (size_t)(end - line) : strlen(line);
    for (size_t k = 0; ok && k < sizeof kept / sizeof kept[0]; k++) {
      const char *field = strstr(line, kept[k]);
      if (field && field < line + n && field - line <= 4) {
        char want[4096];
        if (n >= sizeof want) {
          ok = 0;
          break;
        }
        memcpy(want, line, n);
        want[n] = 0;
        ok = strstr(now, want) != NULL;
      }
    }
    if (!end) break;
  }
  free(now);
  return ok;
}

#define CHECK_ONLY_BACKOFF_ADDED(s)                                                       \
  do {                                                                                    \
    if (!only_backoff_added(&(s))) FAIL("the record %s changed beyond the backoff", (s).path); \
  } while (0)

static int save(const char *key, const char *credential) {
  return oauth_lock_store_save(store, key, credential, 0) == OAUTH_LOCK_OK;
}

/* ---- library-level functions ----------------------------------------------------------- */

static void version_and_code_names(void) {
  CHECK_STR(oauth_lock_version(), ".");
  const char *names[] = {"Ok",          "NeedsLogin", "InvalidGrant",      "Terminal",
                         "Transient",   "Busy",       "Downgrade",         "Corrupt",
                         "UnsupportedFormat", "Io",   "InvalidArgument",   "Insecure"};
  for (int i = 0; i <= 11; i++) CHECK(strcmp(oauth_lock_code_name(i), names[i]) == 0);
  CHECK(OAUTH_LOCK_NEEDS_LOGIN == 1 && OAUTH_LOCK_INSECURE == 11);
  CHECK(strcmp(oauth_lock_code_name(OAUTH_LOCK_NULL_PARAMETER), "NullParameter") == 0);
  CHECK(strcmp(oauth_lock_code_name(OAUTH_LOCK_PANIC), "Panic") == 0);
  CHECK(strcmp(oauth_lock_code_name(12), "Unknown") == 0);
  CHECK(strcmp(oauth_lock_code_name(-1), "Unknown") == 0);
  CHECK(strcmp(oauth_lock_code_name(99), "Unknown") == 0);
}

static void last_error_cannot_overflow(void) {
  CHECK_CODE(oauth_lock_store_save(store, NULL, FRESH, 0), OAUTH_LOCK_NULL_PARAMETER,
             "oauth_lock_store_save", "`key` is NULL");
  size_t full = 0;
  CHECK_OK(oauth_lock_last_error(NULL, 0, &full));
  CHECK(full == strlen("oauth_lock_store_save: the argument `key` is NULL"));
  char small[8];
  memset(small, 'x', sizeof small);
  size_t n = 0;
  CHECK_OK(oauth_lock_last_error(small, sizeof small, &n));
  CHECK(n == full && strcmp(small, "oauth_l") == 0);
  char one[1] = {'x'};
  CHECK_OK(oauth_lock_last_error(one, 1, &n));
  CHECK(one[0] == 0);
  /* Bad arguments to last_error itself leave the last error as it was. */
  CHECK(oauth_lock_last_error(small, sizeof small, NULL) == OAUTH_LOCK_NULL_PARAMETER);
  CHECK(oauth_lock_last_error(NULL, 5, &n) == OAUTH_LOCK_NULL_PARAMETER);
  CHECK(oauth_lock_last_error_json(NULL) == OAUTH_LOCK_NULL_PARAMETER);
  CHECK(oauth_lock_last_error_code() == OAUTH_LOCK_NULL_PARAMETER);
  char *json = NULL;
  CHECK_OK(oauth_lock_last_error_json(&json));
  CHECK_STR(json, "\"code\":\"NullParameter\"");
  CHECK_STR(json, "\"code_number\":100");
  oauth_lock_string_free(json);
  /* A success resets it. */
  oauth_lock_source_options o;
  CHECK_OK(oauth_lock_source_options_default(&o));
  CHECK(oauth_lock_last_error_code() == OAUTH_LOCK_OK);
  CHECK_OK(oauth_lock_last_error(small, sizeof small, &n));
  CHECK(n == 0 && small[0] == 0);
  CHECK_OK(oauth_lock_last_error_json(&json));
  CHECK(strcmp(json, "null") == 0);
  oauth_lock_string_free(json);
}

static void last_error_json_names_code_key_path(void) {
  CHECK(save("json-err", FRESH));
  CHECK_CODE(oauth_lock_store_save(store, "json-err", "{\"access_token\":\"a\"}", 0),
             OAUTH_LOCK_DOWNGRADE, "json-err", "json-err.json");
  char *json = NULL;
  CHECK_OK(oauth_lock_last_error_json(&json));
  CHECK_STR(json, "\"code\":\"Downgrade\"");
  CHECK_STR(json, "\"code_number\":6");
  CHECK_STR(json, "\"key\":\"json-err\"");
  CHECK_STR(json, "json-err.json\"");
  CHECK_STR(json, "\"oauth_error\":null");
  oauth_lock_string_free(json);
}

/* ---- the _e twins: the error of the very call, owned by the caller --------------------- */

/* `fn`_e(ARGS..., &err) must give `want`, with an error of that code whose message names
 * the _e call and contains `needle`; the error is freed. */
#define CHECK_E(want, needle, fn, ...)                                                    \
  do {                                                                                    \
    oauth_lock_error *e_ = NULL;                                                          \
    oauth_lock_code rc_ = fn##_e(__VA_ARGS__, &e_);                                       \
    if (rc_ != (want))                                                                    \
      FAIL("%s_e gave %s (%d), want %s", #fn, oauth_lock_code_name(rc_), rc_,             \
           oauth_lock_code_name(want));                                                   \
    if (oauth_lock_error_code(e_) != (want))                                              \
      FAIL("%s_e: the error's code is %d, want %d", #fn, oauth_lock_error_code(e_), want); \
    CHECK_STR(oauth_lock_error_message(e_), (needle));                                    \
    CHECK_STR(oauth_lock_error_json(e_), "\"code_number\":");                             \
    oauth_lock_error_free(e_);                                                            \
  } while (0)

/* Every _e twin exists and reports through out_error, NULL arguments included (named with
 * the _e call). */
static void every_e_twin_reports_its_error(void) {
  oauth_lock_store *s = NULL;
  oauth_lock_source *src = NULL;
  oauth_lock_token *t = NULL;
  char *str = NULL;
  bool existed = false;
  uint64_t id = 0;
  oauth_lock_source_options o;
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "oauth_lock_set_client_lang_e: the argument `lang` is NULL",
          oauth_lock_set_client_lang, NULL);
  CHECK_E(OAUTH_LOCK_INVALID_ARGUMENT, "`dir` is not valid UTF-8", oauth_lock_store_new,
          BAD_UTF8, &s);
  CHECK(s == NULL);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "oauth_lock_store_dir_e: the argument `store` is NULL",
          oauth_lock_store_dir, NULL, &str);
  CHECK_E(OAUTH_LOCK_INVALID_ARGUMENT, "empty", oauth_lock_store_path_of, store, "", &str);
  CHECK_E(OAUTH_LOCK_INVALID_ARGUMENT, "not valid JSON", oauth_lock_store_save, store, "e-save",
          "{", 0);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`out_existed`", oauth_lock_store_clear, store, "e-clear",
          NULL);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`key`", oauth_lock_store_status, store, NULL, &str);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`out_json`", oauth_lock_store_list, store, NULL);
  CHECK_E(OAUTH_LOCK_NEEDS_LOGIN, "e-verify", oauth_lock_store_verify, store, "e-verify", &t);
  CHECK(str == NULL && !existed && t == NULL);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`out_options`", oauth_lock_source_options_default, NULL);
  CHECK_E(OAUTH_LOCK_INVALID_ARGUMENT, "'.'", oauth_lock_source_new, store, ".e", NULL, &src);
  CHECK_E(OAUTH_LOCK_INVALID_ARGUMENT, "`config_json` is not valid JSON",
          oauth_lock_source_new_oauth2, store, "e-o2", "nope", NULL, &src);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`callback`", oauth_lock_source_new_callback, store, "e-cb",
          NULL, NULL, NULL, NULL, &src);
  CHECK(src == NULL);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`source`", oauth_lock_source_access_token, NULL, &t);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`source`", oauth_lock_source_access_token_valid_for, NULL,
          1000, &t);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`source`", oauth_lock_source_reject, NULL, "x", &t);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`source`", oauth_lock_source_verify, NULL, &t);
  CHECK(t == NULL);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "oauth_lock_answer_set_json_e: the argument `answer`",
          oauth_lock_answer_set_json, NULL, "{}");
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "oauth_lock_answer_set_error_e: the argument `answer`",
          oauth_lock_answer_set_error, NULL, NULL, NULL);
  CHECK_E(OAUTH_LOCK_NULL_PARAMETER, "`callback`", oauth_lock_add_event_listener, NULL, NULL,
          NULL, &id);
  CHECK_E(OAUTH_LOCK_INVALID_ARGUMENT, "no event listener has the id 987654321",
          oauth_lock_remove_event_listener, 987654321);
  CHECK(id == 0);
  /* And each works as its plain call on success. */
  CHECK_OK(oauth_lock_source_options_default_e(&o, NULL));
  CHECK(o.lock_timeout_ms == 35000);
}

/* An _e call's error is that call's: complete (code, message, JSON naming key and path, the
 * same as the thread's last error right after it), unchanged by later calls on the same
 * thread, and readable on another thread. */
typedef struct {
  const oauth_lock_error *err;
  oauth_lock_code code, last_code;
  char json[1024];
} read_elsewhere;

static void *read_error(void *arg) {
  read_elsewhere *r = arg;
  r->code = oauth_lock_error_code(r->err);
  snprintf(r->json, sizeof r->json, "%s", oauth_lock_error_json(r->err));
  r->last_code = oauth_lock_last_error_code(); /* this thread made no call */
  return NULL;
}

static void e_error_is_the_calls_own(void) {
  CHECK(save("e-own", FRESH));
  snapshot s = snap("e-own");
  oauth_lock_error *downgrade = NULL;
  CHECK(oauth_lock_store_save_e(store, "e-own", "{\"access_token\":\"a\"}", 0, &downgrade) ==
        OAUTH_LOCK_DOWNGRADE);
  CHECK_UNCHANGED(s);
  CHECK(oauth_lock_error_code(downgrade) == OAUTH_LOCK_DOWNGRADE);
  CHECK_STR(oauth_lock_error_message(downgrade), "e-own");
  CHECK_STR(oauth_lock_error_message(downgrade), s.path);
  const char *json = oauth_lock_error_json(downgrade);
  CHECK_STR(json, "\"code\":\"Downgrade\"");
  CHECK_STR(json, "\"code_number\":6");
  CHECK_STR(json, "\"key\":\"e-own\"");
  CHECK_STR(json, "e-own.json\"");
  CHECK_STR(json, "\"oauth_error\":null");
  /* The same as the thread's last error right after the call. */
  CHECK(oauth_lock_last_error_code() == OAUTH_LOCK_DOWNGRADE);
  CHECK(strcmp(last_error(), oauth_lock_error_message(downgrade)) == 0);
  char *last_json = NULL;
  CHECK_OK(oauth_lock_last_error_json(&last_json));
  CHECK(strcmp(last_json, json) == 0);
  oauth_lock_string_free(last_json);
  /* The strings are owned by the error: the same pointers until it is freed. */
  CHECK(oauth_lock_error_json(downgrade) == json);

  /* Another failing call, then a success, on this thread: the first error is unchanged. */
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new(store, "e-nobody", NULL, &src));
  oauth_lock_token *t = (oauth_lock_token *)0x1;
  oauth_lock_error *needs_login = NULL;
  CHECK(oauth_lock_source_access_token_e(src, &t, &needs_login) == OAUTH_LOCK_NEEDS_LOGIN);
  CHECK(t == (oauth_lock_token *)0x1); /* outputs only on success */
  CHECK(oauth_lock_error_code(needs_login) == OAUTH_LOCK_NEEDS_LOGIN);
  CHECK_STR(oauth_lock_error_json(needs_login), "\"key\":\"e-nobody\"");
  CHECK_STR(oauth_lock_error_json(needs_login), "e-nobody.json\"");
  oauth_lock_source_options o;
  CHECK_OK(oauth_lock_source_options_default(&o));
  CHECK(oauth_lock_last_error_code() == OAUTH_LOCK_OK);
  CHECK(oauth_lock_error_code(downgrade) == OAUTH_LOCK_DOWNGRADE);
  CHECK(strcmp(oauth_lock_error_json(downgrade), json) == 0);
  CHECK_STR(oauth_lock_error_json(downgrade), "\"key\":\"e-own\"");

  /* Read on another thread, which has no last error of its own. */
  read_elsewhere r = {.err = downgrade};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, read_error, &r) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK(r.code == OAUTH_LOCK_DOWNGRADE && r.last_code == OAUTH_LOCK_OK);
  CHECK(strcmp(r.json, json) == 0);

  oauth_lock_error_free(downgrade);
  oauth_lock_error_free(needs_login);
  oauth_lock_source_free(src);
  drop_snap(&s);
}

/* Success writes NULL to *out_error; a NULL out_error is allowed (the plain call); the
 * getters take NULL as "no error"; freeing NULL is a no-op. */
static void e_success_null_out_error_and_free_null(void) {
  char *p = NULL;
  oauth_lock_error *err = (oauth_lock_error *)0x1;
  CHECK_OK(oauth_lock_store_path_of_e(store, "e-ok", &p, &err));
  CHECK(err == NULL);
  CHECK_STR(p, "/e-ok.json");
  oauth_lock_string_free(p);
  CHECK(oauth_lock_error_code(NULL) == OAUTH_LOCK_OK);
  CHECK(strcmp(oauth_lock_error_message(NULL), "") == 0);
  CHECK(strcmp(oauth_lock_error_json(NULL), "null") == 0);
  oauth_lock_error_free(NULL);
  /* A failure after a success through the same variable: a new error. */
  p = (char *)0x1;
  CHECK(oauth_lock_store_path_of_e(store, "tab\tkey", &p, &err) == OAUTH_LOCK_INVALID_ARGUMENT);
  CHECK(p == (char *)0x1 && err != NULL);
  CHECK(oauth_lock_error_code(err) == OAUTH_LOCK_INVALID_ARGUMENT);
  CHECK_STR(oauth_lock_error_message(err), "0x09");
  oauth_lock_error_free(err);
  /* NULL out_error: exactly the plain call, the thread's last error included. */
  CHECK_CODE(oauth_lock_store_path_of_e(store, "", &p, NULL), OAUTH_LOCK_INVALID_ARGUMENT,
             "empty");
  CHECK(p == (char *)0x1);
  CHECK_OK(oauth_lock_store_path_of_e(store, "e-ok", &p, NULL));
  CHECK(oauth_lock_last_error_code() == OAUTH_LOCK_OK);
  CHECK_STR(p, "/e-ok.json");
  oauth_lock_string_free(p);
}

static void set_client_lang_checks_its_argument(void) {
  CHECK_CODE(oauth_lock_set_client_lang(NULL), OAUTH_LOCK_NULL_PARAMETER, "`lang`");
  CHECK_CODE(oauth_lock_set_client_lang(BAD_UTF8), OAUTH_LOCK_INVALID_ARGUMENT, "`lang`",
             "UTF-8");
  /* The first store opened already named this process "c"; the first call wins. */
  CHECK_OK(oauth_lock_set_client_lang("java"));
  CHECK(save("lang", FRESH));
  char *status = NULL;
  CHECK_OK(oauth_lock_store_status(store, "lang", &status));
  CHECK_STR(status, "\"lang\":\"c\"");
  oauth_lock_string_free(status);
}

static void frees_of_null_are_no_ops(void) {
  oauth_lock_store_free(NULL);
  oauth_lock_source_free(NULL);
  oauth_lock_token_free(NULL);
  oauth_lock_string_free(NULL);
  CHECK(oauth_lock_token_value(NULL) == NULL);
  CHECK(oauth_lock_token_type(NULL) == NULL);
  CHECK(oauth_lock_token_fingerprint(NULL) == NULL);
  CHECK(oauth_lock_token_expires_at_ms(NULL) == 0);
  CHECK(oauth_lock_token_generation(NULL) == 0);
}

/* ---- store ----------------------------------------------------------------------------- */

static void store_new_and_dir(void) {
  oauth_lock_store *s = (oauth_lock_store *)0x1;
  CHECK_CODE(oauth_lock_store_new(dir, NULL), OAUTH_LOCK_NULL_PARAMETER, "`out_store`");
  CHECK_CODE(oauth_lock_store_new(BAD_UTF8, &s), OAUTH_LOCK_INVALID_ARGUMENT, "`dir`", "UTF-8");
  CHECK(s == (oauth_lock_store *)0x1); /* outputs only on success */
  char file[4096];
  snprintf(file, sizeof file, "%s-not-a-dir", dir);
  CHECK(write_file(file, "x") == 0);
  CHECK_CODE(oauth_lock_store_new(file, &s), OAUTH_LOCK_IO, file);
  CHECK(s == (oauth_lock_store *)0x1);
  unlink(file);

  /* NULL dir: $OAUTH_LOCK_DIR. */
  char other[4096];
  snprintf(other, sizeof other, "%s-default", dir);
  setenv("OAUTH_LOCK_DIR", other, 1);
  CHECK_OK(oauth_lock_store_new(NULL, &s));
  unsetenv("OAUTH_LOCK_DIR");
  char *d = NULL;
  CHECK_CODE(oauth_lock_store_dir(NULL, &d), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_dir(s, NULL), OAUTH_LOCK_NULL_PARAMETER, "`out_dir`");
  CHECK_OK(oauth_lock_store_dir(s, &d));
  CHECK_STR(d, "-default");
  struct stat st;
  CHECK(stat(d, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
  oauth_lock_string_free(d);
  oauth_lock_store_free(s);
}

/* The fleet store (DESIGN.md §10): the location is a string the core parses. A bad URL is
 * InvalidArgument that never shows the password; with OAUTH_LOCK_TEST_PG_URL (scripts/pg-cluster)
 * a save and a token on PostgreSQL. Under CI=true a missing server fails. */
static void a_postgresql_location(void) {
  oauth_lock_store *s = (oauth_lock_store *)0x1;
  CHECK_CODE(oauth_lock_store_new("postgresql://u:hunter2@127.0.0.1/d?sslmode=sometimes", &s),
             OAUTH_LOCK_INVALID_ARGUMENT, "sslmode");
  CHECK(strstr(last_error(), "hunter2") == NULL);
  CHECK(s == (oauth_lock_store *)0x1);
  const char *url = getenv("OAUTH_LOCK_TEST_PG_URL");
  if (url == NULL || *url == '\0') {
    const char *ci = getenv("CI");
    if (ci != NULL && strcmp(ci, "true") == 0) FAIL("CI=true and OAUTH_LOCK_TEST_PG_URL is unset");
    return;
  }
  char loc[4096];
  snprintf(loc, sizeof loc, "%s&schema=c_%d", url, (int)getpid());
  CHECK_OK(oauth_lock_store_new(loc, &s));
  CHECK_OK(oauth_lock_store_save(s, "c:fleet", FRESH, 0));
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new(s, "c:fleet", NULL, &src));
  oauth_lock_token *t = NULL;
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  CHECK(strcmp(oauth_lock_token_value(t), "at-fresh") == 0);
  char *d = NULL;
  CHECK_OK(oauth_lock_store_dir(s, &d));
  CHECK_STR(d, "postgresql://oauth_lock@");
  CHECK(strstr(d, ":") != NULL && strstr(url, d) == NULL); /* shown without the password */
  oauth_lock_string_free(d);
  oauth_lock_token_free(t);
  oauth_lock_source_free(src);
  oauth_lock_store_free(s);
}

static void path_of_and_bad_keys(void) {
  char *p = NULL;
  CHECK_OK(oauth_lock_store_path_of(store, "anthropic:work", &p));
  CHECK_STR(p, "/anthropic%3Awork.json");
  oauth_lock_string_free(p);
  p = NULL;
  CHECK_CODE(oauth_lock_store_path_of(NULL, "k", &p), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_path_of(store, NULL, &p), OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_store_path_of(store, "k", NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_path`");
  CHECK_CODE(oauth_lock_store_path_of(store, "", &p), OAUTH_LOCK_INVALID_ARGUMENT, "empty");
  CHECK_CODE(oauth_lock_store_path_of(store, ".hidden", &p), OAUTH_LOCK_INVALID_ARGUMENT,
             "'.'");
  CHECK_CODE(oauth_lock_store_path_of(store, "tab\there", &p), OAUTH_LOCK_INVALID_ARGUMENT,
             "0x09");
  CHECK_CODE(oauth_lock_store_path_of(store, BAD_UTF8, &p), OAUTH_LOCK_INVALID_ARGUMENT,
             "`key`", "UTF-8");
  char long_key[80];
  memset(long_key, 'k', 65);
  long_key[65] = 0;
  CHECK_CODE(oauth_lock_store_path_of(store, long_key, &p), OAUTH_LOCK_INVALID_ARGUMENT, "65");
  CHECK(p == NULL);
}

static void save_and_its_bad_arguments(void) {
  CHECK_OK(oauth_lock_store_save(store, "s", FRESH, 0));
  snapshot s = snap("s");
  CHECK(s.bytes != NULL);
  CHECK_STR(s.bytes, "\"generation\": 1");
  CHECK_CODE(oauth_lock_store_save(NULL, "s", FRESH, 0), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_save(store, NULL, FRESH, 0), OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_store_save(store, "s", NULL, 0), OAUTH_LOCK_NULL_PARAMETER,
             "`credential_json`");
  CHECK_CODE(oauth_lock_store_save(store, "s", "{\"access_token\": ", 0),
             OAUTH_LOCK_INVALID_ARGUMENT, "`credential_json` is not valid JSON", "\"s\"");
  CHECK_CODE(oauth_lock_store_save(store, "s", "{\"access_token\":\"" BAD_UTF8 "\"}", 0),
             OAUTH_LOCK_INVALID_ARGUMENT, "`credential_json`", "UTF-8");
  CHECK_CODE(oauth_lock_store_save(store, "s", "[1,2]", 0), OAUTH_LOCK_INVALID_ARGUMENT,
             "not a JSON object", "\"s\"", "s.json");
  CHECK_CODE(oauth_lock_store_save(store, "s", "{}", 0), OAUTH_LOCK_INVALID_ARGUMENT,
             "neither an access_token nor a refresh_token", "s.json");
  CHECK_CODE(oauth_lock_store_save(store, "s", "{\"access_token\":7}", 0),
             OAUTH_LOCK_INVALID_ARGUMENT, "access_token", "s.json");
  CHECK_CODE(oauth_lock_store_save(store, "s",
                                   "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"refresh\":"
                                   "{\"token_url\":\"https://x.example/t\",\"client_id\":\"c\","
                                   "\"bogus\":1}}",
                                   0),
             OAUTH_LOCK_INVALID_ARGUMENT, "bogus", "s.json");
  CHECK_CODE(oauth_lock_store_save(store, "s",
                                   "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"refresh\":"
                                   "{\"token_url\":\"http://x.example/t\",\"client_id\":\"c\"}}",
                                   0),
             OAUTH_LOCK_INSECURE, "http://x.example/t", "s.json");
  CHECK_CODE(oauth_lock_store_save(store, "s", "{\"access_token\":\"no-refresh\"}", 0),
             OAUTH_LOCK_DOWNGRADE, "allow_downgrade", "\"s\"", "s.json");
  CHECK_CODE(oauth_lock_store_save(store, "s", FRESH, 0x6), OAUTH_LOCK_INVALID_ARGUMENT,
             "`flags`", "0x6");
  CHECK_CODE(oauth_lock_store_save(store, "", FRESH, 0), OAUTH_LOCK_INVALID_ARGUMENT, "empty");
  CHECK_UNCHANGED(s);
  /* Allowed downgrade: generation 2, no refresh token. */
  CHECK_OK(oauth_lock_store_save(store, "s", "{\"access_token\":\"no-refresh\"}",
                                 OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE));
  CHECK(!unchanged(&s));
  char *status = NULL;
  CHECK_OK(oauth_lock_store_status(store, "s", &status));
  CHECK(json_int(status, "generation") == 2);
  CHECK_STR(status, "\"has_refresh_token\":false");
  oauth_lock_string_free(status);
  drop_snap(&s);
}

static void clear_and_its_bad_arguments(void) {
  CHECK(save("c", FRESH));
  bool existed = false;
  CHECK_CODE(oauth_lock_store_clear(NULL, "c", &existed), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_clear(store, NULL, &existed), OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_store_clear(store, "c", NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_existed`");
  CHECK_CODE(oauth_lock_store_clear(store, ".c", &existed), OAUTH_LOCK_INVALID_ARGUMENT, "'.'");
  CHECK_CODE(oauth_lock_store_clear(store, BAD_UTF8, &existed), OAUTH_LOCK_INVALID_ARGUMENT,
             "UTF-8");
  CHECK(existed == false);
  snapshot s = snap("c");
  CHECK(s.bytes != NULL);
  CHECK_OK(oauth_lock_store_clear(store, "c", &existed));
  CHECK(existed == true);
  char *p = path_of("c");
  CHECK(access(p, F_OK) != 0);
  oauth_lock_string_free(p);
  CHECK_OK(oauth_lock_store_clear(store, "c", &existed));
  CHECK(existed == false);
  drop_snap(&s);
}

static void status_and_list_are_json_without_tokens(void) {
  CHECK(save("st", FRESH));
  char *json = NULL;
  CHECK_CODE(oauth_lock_store_status(NULL, "st", &json), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_status(store, NULL, &json), OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_store_status(store, "st", NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_json`");
  CHECK_CODE(oauth_lock_store_status(store, "", &json), OAUTH_LOCK_INVALID_ARGUMENT, "empty");
  CHECK_CODE(oauth_lock_store_list(NULL, &json), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_list(store, NULL), OAUTH_LOCK_NULL_PARAMETER, "`out_json`");
  CHECK(json == NULL);
  CHECK_OK(oauth_lock_store_status(store, "st", &json));
  CHECK_STR(json, "\"key\":\"st\"");
  CHECK_STR(json, "\"exists\":true");
  CHECK_STR(json, "\"has_refresh_token\":true");
  CHECK_STR(json, "\"access_token_fingerprint\":\"");
  CHECK(!strstr(json, "at-fresh") && !strstr(json, "rt-1"));
  oauth_lock_string_free(json);
  CHECK_OK(oauth_lock_store_status(store, "never-saved", &json));
  CHECK_STR(json, "\"exists\":false");
  oauth_lock_string_free(json);
  CHECK_OK(oauth_lock_store_list(store, &json));
  CHECK(json[0] == '[');
  CHECK_STR(json, "\"key\":\"st\"");
  CHECK(!strstr(json, "at-fresh"));
  oauth_lock_string_free(json);
}

static void corrupt_and_newer_records_are_left_untouched(void) {
  CHECK(save("bad", EXPIRED));
  char *p = path_of("bad");
  CHECK(write_file(p, "{\"format\": 1, \"generation\": ") == 0);
  snapshot s = snap("bad");
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new(store, "bad", NULL, &src));
  oauth_lock_token *t = NULL;
  CHECK_CODE(oauth_lock_source_access_token(src, &t), OAUTH_LOCK_CORRUPT, "\"bad\"", p);
  CHECK(t == NULL);
  CHECK_UNCHANGED(s);
  char *status = NULL;
  CHECK_OK(oauth_lock_store_status(store, "bad", &status));
  CHECK_STR(status, "\"problem\":{\"code\":\"Corrupt\"");
  oauth_lock_string_free(status);
  /* A save without a refresh token does not replace an unreadable record. */
  CHECK_CODE(oauth_lock_store_save(store, "bad", "{\"access_token\":\"a\"}", 0),
             OAUTH_LOCK_CORRUPT, p);
  CHECK_UNCHANGED(s);
  drop_snap(&s);

  CHECK(write_file(p, "{\"format\": 2, \"key\": \"bad\", \"generation\": 9}") == 0);
  s = snap("bad");
  CHECK_CODE(oauth_lock_source_access_token(src, &t), OAUTH_LOCK_UNSUPPORTED_FORMAT, p,
             "format 2");
  CHECK_CODE(oauth_lock_store_save(store, "bad", FRESH, 0), OAUTH_LOCK_UNSUPPORTED_FORMAT, p);
  CHECK_UNCHANGED(s);
  drop_snap(&s);
  oauth_lock_source_free(src);
  oauth_lock_string_free(p);
}

/* ---- sources and tokens ---------------------------------------------------------------- */

static void options_default_are_designs(void) {
  oauth_lock_source_options o;
  memset(&o, 0xff, sizeof o);
  CHECK_CODE(oauth_lock_source_options_default(NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_options`");
  CHECK_OK(oauth_lock_source_options_default(&o));
  CHECK(o.refresh_margin_ms == 300000 && o.lock_timeout_ms == 35000);
  CHECK(o.refresh_timeout_ms == 30000 && o.revalidate_ms == 1000);
}

static void source_access_token_and_getters(void) {
  CHECK(save("tok", FRESH));
  oauth_lock_source *src = (oauth_lock_source *)0x1;
  CHECK_CODE(oauth_lock_source_new(NULL, "tok", NULL, &src), OAUTH_LOCK_NULL_PARAMETER,
             "`store`");
  CHECK_CODE(oauth_lock_source_new(store, NULL, NULL, &src), OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_source_new(store, "tok", NULL, NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_source`");
  CHECK_CODE(oauth_lock_source_new(store, ".tok", NULL, &src), OAUTH_LOCK_INVALID_ARGUMENT,
             "'.'");
  CHECK_CODE(oauth_lock_source_new(store, BAD_UTF8, NULL, &src), OAUTH_LOCK_INVALID_ARGUMENT,
             "UTF-8");
  CHECK(src == (oauth_lock_source *)0x1);
  oauth_lock_source_options o;
  CHECK_OK(oauth_lock_source_options_default(&o));
  o.refresh_margin_ms = 1000;
  CHECK_OK(oauth_lock_source_new(store, "tok", &o, &src));
  oauth_lock_token *t = (oauth_lock_token *)0x1;
  CHECK_CODE(oauth_lock_source_access_token(NULL, &t), OAUTH_LOCK_NULL_PARAMETER, "`source`");
  CHECK_CODE(oauth_lock_source_access_token(src, NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_token`");
  CHECK(t == (oauth_lock_token *)0x1);
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  CHECK(strcmp(oauth_lock_token_value(t), "at-fresh") == 0);
  CHECK(strcmp(oauth_lock_token_type(t), "Bearer") == 0);
  CHECK(oauth_lock_token_generation(t) == 1);
  long long exp = oauth_lock_token_expires_at_ms(t);
  CHECK(exp > 1700000000000LL);
  const char *fp = oauth_lock_token_fingerprint(t);
  CHECK(fp && strlen(fp) == 8 && strcmp(fp, "at-fresh") != 0);
  CHECK(fp == oauth_lock_token_fingerprint(t)); /* owned by the token, computed once */
  /* The cached token may come back as the same (reference-counted) handle: each returned
   * pointer is freed once, and one stays valid after the other is freed. */
  oauth_lock_token *again = NULL;
  CHECK_OK(oauth_lock_source_access_token(src, &again));
  oauth_lock_token_free(t);
  CHECK(strcmp(oauth_lock_token_value(again), "at-fresh") == 0);
  CHECK(strcmp(oauth_lock_token_fingerprint(again), "") != 0);
  t = again;
  oauth_lock_token_free(t);
  /* A token with no known expiry: 0. */
  CHECK(save("noexp", "{\"access_token\":\"forever\",\"refresh_token\":\"r\"}"));
  oauth_lock_source *src2 = NULL;
  CHECK_OK(oauth_lock_source_new(store, "noexp", NULL, &src2));
  CHECK_OK(oauth_lock_source_access_token(src2, &t));
  CHECK(oauth_lock_token_expires_at_ms(t) == 0);
  oauth_lock_token_free(t);
  oauth_lock_source_free(src2);
  oauth_lock_source_free(src);
}

static void missing_record_needs_login(void) {
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new(store, "nobody", NULL, &src));
  oauth_lock_token *t = NULL;
  CHECK_CODE(oauth_lock_source_access_token(src, &t), OAUTH_LOCK_NEEDS_LOGIN, "\"nobody\"",
             "nobody.json");
  CHECK(t == NULL);
  char *json = NULL;
  CHECK_OK(oauth_lock_last_error_json(&json));
  CHECK_STR(json, "\"code\":\"NeedsLogin\"");
  oauth_lock_string_free(json);
  oauth_lock_source_free(src);
}

static void oauth2_config_bad_input(void) {
  oauth_lock_source *src = (oauth_lock_source *)0x1;
  CHECK_CODE(oauth_lock_source_new_oauth2(store, "o2", NULL, NULL, &src),
             OAUTH_LOCK_NULL_PARAMETER, "`config_json`");
  CHECK_CODE(oauth_lock_source_new_oauth2(NULL, "o2", "{}", NULL, &src),
             OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_source_new_oauth2(store, NULL, "{}", NULL, &src),
             OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_source_new_oauth2(store, "o2", "{}", NULL, NULL),
             OAUTH_LOCK_NULL_PARAMETER, "`out_source`");
  CHECK_CODE(oauth_lock_source_new_oauth2(store, "o2", "{\"token_url\":", NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "`config_json` is not valid JSON", "\"o2\"", "o2.json");
  CHECK_CODE(oauth_lock_source_new_oauth2(store, "o2", "\"" BAD_UTF8 "\"", NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "`config_json`", "UTF-8");
  CHECK_CODE(oauth_lock_source_new_oauth2(
                 store, "o2",
                 "{\"token_url\":\"https://a.example/t\",\"client_id\":\"c\",\"colour\":\"red\"}",
                 NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "colour", "o2.json");
  CHECK_CODE(oauth_lock_source_new_oauth2(store, "o2", "{\"token_url\":\"https://a.example/t\"}",
                                          NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "client_id");
  CHECK_CODE(oauth_lock_source_new_oauth2(
                 store, "o2",
                 "{\"token_url\":\"https://a.example/t\",\"client_id\":\"c\",\"body\":\"xml\"}",
                 NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "body is \"form\" or \"json\"");
  CHECK_CODE(oauth_lock_source_new_oauth2(
                 store, "o2", "{\"token_url\":\"http://a.example/t\",\"client_id\":\"c\"}", NULL,
                 &src),
             OAUTH_LOCK_INSECURE, "http://a.example/t", "o2.json");
  CHECK_CODE(oauth_lock_source_new_oauth2(store, "", "{}", NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "empty");
  CHECK(src == (oauth_lock_source *)0x1);
}

/* A login saved with the record's own refresh config pointing at the mock. */
static int login(const char *key) {
  char *cred = mock_login_credential(mock);
  int ok = cred && save(key, cred);
  free(cred);
  return ok;
}

static long long stat_of(const char *name) {
  char *body = NULL;
  if (http(mock, "GET", "/stats", NULL, &body) != 200) return -1;
  long long v = json_int(body, name);
  free(body);
  return v;
}

static void record_config_verify_and_reject_against_the_mock(void) {
  CHECK(login("m"));
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new(store, "m", NULL, &src));
  oauth_lock_token *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;
  CHECK_OK(oauth_lock_source_access_token(src, &t1));
  CHECK(http(mock, "GET", "/resource", oauth_lock_token_value(t1), NULL) == 200);
  long long refreshes = stat_of("refreshes");

  /* verify: one refresh, generation + 1. */
  CHECK_CODE(oauth_lock_store_verify(NULL, "m", &t2), OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_store_verify(store, NULL, &t2), OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_store_verify(store, "m", NULL), OAUTH_LOCK_NULL_PARAMETER, "`out_token`");
  CHECK_OK(oauth_lock_store_verify(store, "m", &t2));
  CHECK(oauth_lock_token_generation(t2) == oauth_lock_token_generation(t1) + 1);
  CHECK(strcmp(oauth_lock_token_value(t1), oauth_lock_token_value(t2)) != 0);
  CHECK(stat_of("refreshes") == refreshes + 1);

  /* reject with a stale token: someone already refreshed, no request. */
  CHECK_CODE(oauth_lock_source_reject(NULL, "x", &t3), OAUTH_LOCK_NULL_PARAMETER, "`source`");
  CHECK_CODE(oauth_lock_source_reject(src, NULL, &t3), OAUTH_LOCK_NULL_PARAMETER,
             "`rejected_token`");
  CHECK_CODE(oauth_lock_source_reject(src, "x", NULL), OAUTH_LOCK_NULL_PARAMETER, "`out_token`");
  CHECK_CODE(oauth_lock_source_reject(src, BAD_UTF8, &t3), OAUTH_LOCK_INVALID_ARGUMENT,
             "`rejected_token`", "UTF-8", "\"m\"", "m.json");
  CHECK_OK(oauth_lock_source_reject(src, oauth_lock_token_value(t1), &t3));
  CHECK(strcmp(oauth_lock_token_value(t3), oauth_lock_token_value(t2)) == 0);
  CHECK(stat_of("refreshes") == refreshes + 1);

  /* reject after a real 401: one refresh. */
  CHECK(http(mock, "POST", "/admin/revoke-access", NULL, NULL) == 200);
  CHECK(http(mock, "GET", "/resource", oauth_lock_token_value(t3), NULL) == 401);
  CHECK_OK(oauth_lock_source_reject(src, oauth_lock_token_value(t3), &t4));
  CHECK(http(mock, "GET", "/resource", oauth_lock_token_value(t4), NULL) == 200);
  CHECK(stat_of("refreshes") == refreshes + 2);
  oauth_lock_token_free(t1);
  oauth_lock_token_free(t2);
  oauth_lock_token_free(t3);

  /* valid_for beyond the token's lifetime left forces a refresh; a short one does not. */
  oauth_lock_token *t5 = NULL, *t6 = NULL;
  CHECK_CODE(oauth_lock_source_access_token_valid_for(NULL, 1, &t5), OAUTH_LOCK_NULL_PARAMETER,
             "`source`");
  CHECK_CODE(oauth_lock_source_access_token_valid_for(src, 1, NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_token`");
  CHECK_OK(oauth_lock_source_access_token_valid_for(src, 1000, &t5));
  CHECK(oauth_lock_token_generation(t5) == oauth_lock_token_generation(t4));
  CHECK_OK(oauth_lock_source_access_token_valid_for(src, 48ull * 3600 * 1000, &t6));
  CHECK(oauth_lock_token_generation(t6) == oauth_lock_token_generation(t4) + 1);
  CHECK(stat_of("refreshes") == refreshes + 3);

  /* source verify */
  oauth_lock_token *t7 = NULL;
  CHECK_CODE(oauth_lock_source_verify(NULL, &t7), OAUTH_LOCK_NULL_PARAMETER, "`source`");
  CHECK_CODE(oauth_lock_source_verify(src, NULL), OAUTH_LOCK_NULL_PARAMETER, "`out_token`");
  CHECK_OK(oauth_lock_source_verify(src, &t7));
  CHECK(oauth_lock_token_generation(t7) == oauth_lock_token_generation(t6) + 1);
  CHECK(stat_of("replays") == 0);
  oauth_lock_token_free(t4);
  oauth_lock_token_free(t5);
  oauth_lock_token_free(t6);
  oauth_lock_token_free(t7);
  oauth_lock_source_free(src);
}

static void oauth2_config_source_refreshes_at_the_mock(void) {
  /* A login saved without a refresh config; the source brings its own. */
  char *cred = mock_login_credential(mock);
  CHECK(cred);
  char *cut = strstr(cred, ",\"refresh\":");
  CHECK(cut);
  strcpy(cut, "}");
  CHECK(save("o2m", cred));
  free(cred);
  char config[512];
  snprintf(config, sizeof config,
           "{\"token_url\":\"%s/oauth/token\",\"client_id\":\"oauth-lock-demo\",\"body\":\"form\"}",
           mock);
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new_oauth2(store, "o2m", config, NULL, &src));
  oauth_lock_token *t = NULL;
  CHECK_OK(oauth_lock_source_verify(src, &t));
  CHECK(oauth_lock_token_generation(t) == 2);
  CHECK(http(mock, "GET", "/resource", oauth_lock_token_value(t), NULL) == 200);
  oauth_lock_token_free(t);
  oauth_lock_source_free(src);
  /* Without either, a refresh has no refresher: InvalidArgument naming the key. */
  oauth_lock_source *bare = NULL;
  CHECK_OK(oauth_lock_source_new(store, "o2m", NULL, &bare));
  snapshot s = snap("o2m");
  CHECK_CODE(oauth_lock_source_verify(bare, &t), OAUTH_LOCK_INVALID_ARGUMENT, "\"o2m\"",
             "o2m.json");
  CHECK_UNCHANGED(s);
  drop_snap(&s);
  oauth_lock_source_free(bare);
}

/* ---- callback refreshers --------------------------------------------------------------- */

typedef enum { ANSWER_OK, NO_ANSWER, NOT_JSON, NOT_TOKENS, ARRAY, WRONG_CODE, HUGE_CODE,
               INVALID_GRANT, TERMINAL, TRANSIENT, JSON_ERROR, SLOW } behaviour;

typedef struct {
  behaviour how;
  atomic_int calls;
  atomic_int frees;
  char seen[4096]; /* the credential JSON of the last call */
  int set_json_rc; /* what oauth_lock_answer_set_json answered */
} cb_state;

static int refresh_cb(void *userdata, const char *credential_json, oauth_lock_answer *answer) {
  cb_state *st = userdata;
  int n = atomic_fetch_add(&st->calls, 1) + 1;
  snprintf(st->seen, sizeof st->seen, "%s", credential_json);
  char json[256];
  switch (st->how) {
    case SLOW:
      usleep(300 * 1000);
      /* fall through */
    case ANSWER_OK:
      snprintf(json, sizeof json,
               "{\"access_token\":\"cb-at-%d\",\"refresh_token\":\"cb-rt-%d\",\"expires_in\":3600,"
               "\"account\":\"acme\"}",
               n, n);
      st->set_json_rc = oauth_lock_answer_set_json(answer, json);
      return OAUTH_LOCK_OK;
    case NO_ANSWER:
      return OAUTH_LOCK_OK;
    case NOT_JSON:
      st->set_json_rc = oauth_lock_answer_set_json(answer, "access_token=abc");
      return OAUTH_LOCK_OK;
    case NOT_TOKENS:
      st->set_json_rc = oauth_lock_answer_set_json(answer, "{\"token\":\"abc\"}");
      return OAUTH_LOCK_OK;
    case ARRAY:
      st->set_json_rc = oauth_lock_answer_set_json(answer, "[1,2,3]");
      return OAUTH_LOCK_OK;
    case WRONG_CODE:
      return OAUTH_LOCK_BUSY;
    case HUGE_CODE:
      return 12345;
    case INVALID_GRANT:
      oauth_lock_answer_set_error(answer, NULL, "refresh token revoked");
      return OAUTH_LOCK_INVALID_GRANT;
    case TERMINAL:
      oauth_lock_answer_set_error(answer, "invalid_client", "client disabled");
      return OAUTH_LOCK_TERMINAL;
    case TRANSIENT:
      oauth_lock_answer_set_error(answer, NULL, "provider said 503");
      return OAUTH_LOCK_TRANSIENT;
    case JSON_ERROR:
      st->set_json_rc = oauth_lock_answer_set_json(
          answer, "{\"error\":\"access_denied\",\"error_description\":\"nope\"}");
      return OAUTH_LOCK_OK;
  }
  return OAUTH_LOCK_OK;
}

static void free_cb(void *userdata) { atomic_fetch_add(&((cb_state *)userdata)->frees, 1); }

static oauth_lock_source *callback_source(const char *key, cb_state *st) {
  oauth_lock_source *src = NULL;
  if (oauth_lock_source_new_callback(store, key, refresh_cb, st, free_cb, NULL, &src) !=
      OAUTH_LOCK_OK)
    return NULL;
  return src;
}

/* free_userdata runs once no call can happen any more; a finished flight may still be
 * releasing its reference on a library thread for a moment. */
static int wait_frees(cb_state *st, int want) {
  for (int i = 0; i < 200 && atomic_load(&st->frees) != want; i++) usleep(10 * 1000);
  return atomic_load(&st->frees) == want;
}

static void callback_refresher_answers(void) {
  cb_state st = {.how = ANSWER_OK};
  CHECK(save("cb", EXPIRED));
  oauth_lock_source *src = callback_source("cb", &st);
  CHECK(src);
  oauth_lock_token *t = NULL;
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  CHECK(atomic_load(&st.calls) == 1);
  CHECK(st.set_json_rc == OAUTH_LOCK_OK);
  CHECK(strcmp(oauth_lock_token_value(t), "cb-at-1") == 0);
  CHECK(oauth_lock_token_generation(t) == 2);
  CHECK_STR(st.seen, "\"key\":\"cb\"");
  CHECK_STR(st.seen, "\"refresh_token\":\"rt-old\"");
  CHECK_STR(st.seen, "\"generation\":1");
  oauth_lock_token_free(t);
  /* Fresh now: no second call. */
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  CHECK(atomic_load(&st.calls) == 1);
  oauth_lock_token_free(t);
  char *p = path_of("cb");
  char *rec = read_file(p, NULL);
  CHECK_STR(rec, "\"refresh_token\": \"cb-rt-1\"");
  CHECK_STR(rec, "\"account\": \"acme\"");
  free(rec);
  oauth_lock_string_free(p);
  CHECK(atomic_load(&st.frees) == 0);
  oauth_lock_source_free(src);
  CHECK(wait_frees(&st, 1));
}

/* Garbage from a callback is Transient, names what was wrong, and leaves the record's tokens as it
 * was (the refresh token may have been spent, so it is not marked dead either). */
static void callback_garbage_is_transient_and_changes_nothing(void) {
  struct {
    behaviour how;
    const char *needle;
  } cases[] = {
      {NO_ANSWER, "without calling oauth_lock_answer_set_json"},
      {NOT_JSON, "not valid JSON"},
      {NOT_TOKENS, "no `access_token`"},
      {ARRAY, "not token fields"},
      {WRONG_CODE, "code 5"},
      {HUGE_CODE, "code 12345"},
      {TRANSIENT, "provider said 503"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char key[32];
    snprintf(key, sizeof key, "garbage-%zu", i);
    CHECK(save(key, EXPIRED));
    snapshot s = snap(key);
    cb_state st = {.how = cases[i].how};
    oauth_lock_source *src = callback_source(key, &st);
    CHECK(src);
    oauth_lock_token *t = NULL;
    CHECK_CODE(oauth_lock_source_access_token(src, &t), OAUTH_LOCK_TRANSIENT, cases[i].needle,
               key, s.path);
    CHECK(t == NULL);
    CHECK(atomic_load(&st.calls) == 1);
    if (cases[i].how == NOT_JSON) CHECK(st.set_json_rc == OAUTH_LOCK_INVALID_ARGUMENT);
    CHECK_ONLY_BACKOFF_ADDED(s);
    drop_snap(&s);
    oauth_lock_source_free(src);
    CHECK(wait_frees(&st, 1));
  }
}

static void callback_terminal_codes_mark_the_record(void) {
  struct {
    behaviour how;
    oauth_lock_code code;
    const char *needle, *oauth_error;
    int dead; /* only errors about the refresh token itself kill the credential */
  } cases[] = {
      {INVALID_GRANT, OAUTH_LOCK_INVALID_GRANT, "refresh token revoked", "invalid_grant", 1},
      {TERMINAL, OAUTH_LOCK_TERMINAL, "invalid_client", "invalid_client", 0},
      {JSON_ERROR, OAUTH_LOCK_TERMINAL, "access_denied", "access_denied", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char key[32];
    snprintf(key, sizeof key, "dead-%zu", i);
    CHECK(save(key, EXPIRED));
    cb_state st = {.how = cases[i].how};
    oauth_lock_source *src = callback_source(key, &st);
    oauth_lock_token *t = NULL;
    CHECK_CODE(oauth_lock_source_access_token(src, &t), cases[i].code, cases[i].needle, key);
    char *json = NULL;
    CHECK_OK(oauth_lock_last_error_json(&json));
    char want[64];
    snprintf(want, sizeof want, "\"oauth_error\":\"%s\"", cases[i].oauth_error);
    CHECK_STR(json, want);
    oauth_lock_string_free(json);
    /* Recorded either way; the next call does not ask the callback again (dead is dead
     * once; a client error is repeated from the record while its backoff lasts). */
    char *status = NULL;
    CHECK_OK(oauth_lock_store_status(store, key, &status));
    CHECK_STR(status, cases[i].dead ? "\"state\":\"needs_login\"" : "\"state\":\"ok\"");
    snprintf(want, sizeof want, "\"last_error\":{\"code\":\"%s\"", cases[i].oauth_error);
    CHECK_STR(status, want);
    CHECK_STR(status, "\"has_refresh_token\":true");
    oauth_lock_string_free(status);
    CHECK_CODE(oauth_lock_source_access_token(src, &t),
               cases[i].dead ? OAUTH_LOCK_NEEDS_LOGIN : cases[i].code, key);
    CHECK(atomic_load(&st.calls) == 1);
    oauth_lock_source_free(src);
    /* `st` lives on this stack: wait until the library has released it. */
    CHECK(wait_frees(&st, 1));
  }
}

static void callback_bad_arguments_leave_userdata_with_the_caller(void) {
  cb_state st = {.how = ANSWER_OK};
  oauth_lock_source *src = (oauth_lock_source *)0x1;
  CHECK_CODE(oauth_lock_source_new_callback(store, "cbx", NULL, &st, free_cb, NULL, &src),
             OAUTH_LOCK_NULL_PARAMETER, "`callback`");
  CHECK_CODE(oauth_lock_source_new_callback(NULL, "cbx", refresh_cb, &st, free_cb, NULL, &src),
             OAUTH_LOCK_NULL_PARAMETER, "`store`");
  CHECK_CODE(oauth_lock_source_new_callback(store, NULL, refresh_cb, &st, free_cb, NULL, &src),
             OAUTH_LOCK_NULL_PARAMETER, "`key`");
  CHECK_CODE(oauth_lock_source_new_callback(store, "cbx", refresh_cb, &st, free_cb, NULL, NULL),
             OAUTH_LOCK_NULL_PARAMETER, "`out_source`");
  CHECK_CODE(oauth_lock_source_new_callback(store, ".cbx", refresh_cb, &st, free_cb, NULL, &src),
             OAUTH_LOCK_INVALID_ARGUMENT, "'.'");
  CHECK(src == (oauth_lock_source *)0x1);
  CHECK(atomic_load(&st.frees) == 0);
  /* NULL free_userdata is allowed. */
  CHECK_OK(oauth_lock_source_new_callback(store, "cbx", refresh_cb, &st, NULL, NULL, &src));
  oauth_lock_source_free(src);
  /* The answer calls outside a callback. */
  CHECK_CODE(oauth_lock_answer_set_json(NULL, "{}"), OAUTH_LOCK_NULL_PARAMETER, "`answer`");
  CHECK_CODE(oauth_lock_answer_set_error(NULL, "x", "y"), OAUTH_LOCK_NULL_PARAMETER, "`answer`");
}

static int answer_probe_rc[4];

static int probing_cb(void *userdata, const char *credential_json, oauth_lock_answer *answer) {
  (void)userdata;
  (void)credential_json;
  answer_probe_rc[0] = oauth_lock_answer_set_json(answer, NULL);
  answer_probe_rc[1] = oauth_lock_answer_set_json(answer, "\"" BAD_UTF8 "\"");
  answer_probe_rc[2] = oauth_lock_answer_set_error(answer, BAD_UTF8, NULL);
  answer_probe_rc[3] = oauth_lock_answer_set_error(answer, NULL, NULL);
  return OAUTH_LOCK_TRANSIENT;
}

static void answer_calls_check_their_arguments(void) {
  CHECK(save("probe", EXPIRED));
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new_callback(store, "probe", probing_cb, NULL, NULL, NULL, &src));
  oauth_lock_token *t = NULL;
  CHECK_CODE(oauth_lock_source_access_token(src, &t), OAUTH_LOCK_TRANSIENT, "probe");
  CHECK(answer_probe_rc[0] == OAUTH_LOCK_NULL_PARAMETER);
  CHECK(answer_probe_rc[1] == OAUTH_LOCK_INVALID_ARGUMENT);
  CHECK(answer_probe_rc[2] == OAUTH_LOCK_INVALID_ARGUMENT);
  CHECK(answer_probe_rc[3] == OAUTH_LOCK_OK);
  oauth_lock_source_free(src);
}

/* ---- events ---------------------------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  char log[16384];
  atomic_int frees;
} events_seen;

static void on_event(void *userdata, const char *event_json) {
  events_seen *e = userdata;
  pthread_mutex_lock(&e->mu);
  size_t used = strlen(e->log);
  snprintf(e->log + used, sizeof e->log - used, "%s\n", event_json);
  pthread_mutex_unlock(&e->mu);
}

static void free_events(void *userdata) { atomic_fetch_add(&((events_seen *)userdata)->frees, 1); }

static void event_listener_sees_decisions_without_tokens(void) {
  static events_seen e = {.mu = PTHREAD_MUTEX_INITIALIZER};
  uint64_t id = 0;
  CHECK_CODE(oauth_lock_add_event_listener(NULL, &e, NULL, &id), OAUTH_LOCK_NULL_PARAMETER,
             "`callback`");
  CHECK_CODE(oauth_lock_add_event_listener(on_event, &e, NULL, NULL), OAUTH_LOCK_NULL_PARAMETER,
             "`out_id`");
  CHECK_OK(oauth_lock_add_event_listener(on_event, &e, free_events, &id));
  CHECK(id != 0);
  CHECK(save("ev", EXPIRED));
  cb_state st = {.how = ANSWER_OK};
  oauth_lock_source *src = callback_source("ev", &st);
  oauth_lock_token *t = NULL;
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  oauth_lock_token_free(t);
  CHECK_CODE(oauth_lock_store_save(store, "ev", "{\"access_token\":\"x\"}", 0),
             OAUTH_LOCK_DOWNGRADE, "ev");
  oauth_lock_source_free(src);
  CHECK_OK(oauth_lock_remove_event_listener(id));
  CHECK_CODE(oauth_lock_remove_event_listener(id), OAUTH_LOCK_INVALID_ARGUMENT, "no event listener");
  CHECK(wait_frees(&st, 1));
  for (int i = 0; i < 200 && atomic_load(&e.frees) != 1; i++) usleep(10 * 1000);
  CHECK(atomic_load(&e.frees) == 1);
  pthread_mutex_lock(&e.mu);
  int ok = strstr(e.log, "\"event\":\"refreshed\"") && strstr(e.log, "\"key\":\"ev\"") &&
           strstr(e.log, "\"event\":\"downgrade_refused\"") && !strstr(e.log, "cb-at-1") &&
           !strstr(e.log, "cb-rt-1") && !strstr(e.log, "rt-old");
  pthread_mutex_unlock(&e.mu);
  if (!ok) FAIL("events: %s", e.log);
}

/* ---- concurrency, locks, fork ---------------------------------------------------------- */

typedef struct {
  oauth_lock_source *src;
  int calls, errors;
  char first[64];
} worker;

static void *hammer(void *arg) {
  worker *w = arg;
  for (int i = 0; i < w->calls; i++) {
    oauth_lock_token *t = NULL;
    if (oauth_lock_source_access_token(w->src, &t) != OAUTH_LOCK_OK) {
      w->errors++;
      continue;
    }
    if (i == 0) snprintf(w->first, sizeof w->first, "%s", oauth_lock_token_value(t));
    oauth_lock_token_free(t);
  }
  return NULL;
}

static void threads_at_expiry_call_the_callback_once(void) {
  CHECK(save("mt", EXPIRED));
  cb_state st = {.how = SLOW};
  oauth_lock_source *src = callback_source("mt", &st);
  enum { N = 8 };
  pthread_t th[N];
  worker w[N];
  for (int i = 0; i < N; i++) {
    w[i] = (worker){.src = src, .calls = 200};
    pthread_create(&th[i], NULL, hammer, &w[i]);
  }
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  CHECK(atomic_load(&st.calls) == 1);
  for (int i = 0; i < N; i++) {
    CHECK(w[i].errors == 0);
    CHECK(strcmp(w[i].first, "cb-at-1") == 0);
  }
  oauth_lock_source_free(src);
  CHECK(wait_frees(&st, 1));
}

static void a_held_lock_gives_busy_after_the_lock_timeout(void) {
  CHECK(save("busy", EXPIRED));
  snapshot s = snap("busy");
  char lockpath[4096];
  snprintf(lockpath, sizeof lockpath, "%.*s.lock", (int)(strlen(s.path) - 5), s.path);
  int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  CHECK(flock(fd, LOCK_EX) == 0);
  oauth_lock_source_options o;
  oauth_lock_source_options_default(&o);
  o.lock_timeout_ms = 200;
  cb_state st = {.how = ANSWER_OK};
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new_callback(store, "busy", refresh_cb, &st, NULL, &o, &src));
  oauth_lock_token *t = NULL;
  CHECK_CODE(oauth_lock_source_access_token(src, &t), OAUTH_LOCK_BUSY, "\"busy\"", "the lock was not obtained");
  CHECK(atomic_load(&st.calls) == 0);
  CHECK_UNCHANGED(s);
  flock(fd, LOCK_UN);
  close(fd);
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  CHECK(atomic_load(&st.calls) == 1);
  oauth_lock_token_free(t);
  oauth_lock_source_free(src);
  drop_snap(&s);
}

static void a_forked_child_keeps_working(void) {
  CHECK(save("fork", FRESH));
  oauth_lock_source *src = NULL;
  CHECK_OK(oauth_lock_source_new(store, "fork", NULL, &src));
  oauth_lock_token *t = NULL;
  CHECK_OK(oauth_lock_source_access_token(src, &t));
  oauth_lock_token_free(t);
  /* The child answers through a pipe, not its exit status: under valgrind a child's exit
   * status also reflects valgrind's own leak report of the copied parent heap. */
  int fds[2];
  CHECK(pipe(fds) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    oauth_lock_token *ct = NULL;
    int ok = oauth_lock_source_access_token(src, &ct) == OAUTH_LOCK_OK &&
             strcmp(oauth_lock_token_value(ct), "at-fresh") == 0 &&
             oauth_lock_store_save(store, "fork-child", FRESH, 0) == OAUTH_LOCK_OK;
    if (!ok) fprintf(stderr, "  forked child: %s\n", last_error());
    oauth_lock_token_free(ct);
    ssize_t w = write(fds[1], ok ? "y" : "n", 1);
    (void)w;
    _exit(0);
  }
  close(fds[1]);
  char answer = 0;
  CHECK(read(fds[0], &answer, 1) == 1);
  close(fds[0]);
  CHECK(answer == 'y');
  CHECK(waitpid(pid, NULL, 0) == pid);
  char *json = NULL;
  CHECK_OK(oauth_lock_store_status(store, "fork-child", &json));
  CHECK_STR(json, "\"exists\":true");
  oauth_lock_string_free(json);
  oauth_lock_source_free(src);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s STORE_DIR MOCK_URL\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  mock = argv[2];
  if (oauth_lock_store_new(dir, &store) != OAUTH_LOCK_OK) {
    fprintf(stderr, "cannot open the store: %s\n", last_error());
    return 1;
  }
  RUN(version_and_code_names);
  RUN(last_error_cannot_overflow);
  RUN(last_error_json_names_code_key_path);
  RUN(every_e_twin_reports_its_error);
  RUN(e_error_is_the_calls_own);
  RUN(e_success_null_out_error_and_free_null);
  RUN(set_client_lang_checks_its_argument);
  RUN(frees_of_null_are_no_ops);
  RUN(store_new_and_dir);
  RUN(a_postgresql_location);
  RUN(path_of_and_bad_keys);
  RUN(save_and_its_bad_arguments);
  RUN(clear_and_its_bad_arguments);
  RUN(status_and_list_are_json_without_tokens);
  RUN(corrupt_and_newer_records_are_left_untouched);
  RUN(options_default_are_designs);
  RUN(source_access_token_and_getters);
  RUN(missing_record_needs_login);
  RUN(oauth2_config_bad_input);
  RUN(record_config_verify_and_reject_against_the_mock);
  RUN(oauth2_config_source_refreshes_at_the_mock);
  RUN(callback_refresher_answers);
  RUN(callback_garbage_is_transient_and_changes_nothing);
  RUN(callback_terminal_codes_mark_the_record);
  RUN(callback_bad_arguments_leave_userdata_with_the_caller);
  RUN(answer_calls_check_their_arguments);
  RUN(event_listener_sees_decisions_without_tokens);
  RUN(threads_at_expiry_call_the_callback_once);
  RUN(a_held_lock_gives_busy_after_the_lock_timeout);
  RUN(a_forked_child_keeps_working);
  oauth_lock_store_free(store);
  printf("c unit tests: %d passed, %d failed\n", t_passed, t_failed);
  return t_failed == 0 && t_passed > 0 ? 0 : 1;
}
