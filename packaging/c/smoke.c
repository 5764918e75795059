/* The C tarball's smoke test (scripts/test-package-c): built against the extracted
 * include/ and lib/ only, it checks what a user's first program does against the strict mock
 * provider (`oauth-lock mock-server`):
 * - oauth_lock_version() is the version the tarball is named after;
 * - a key with no login gives OAUTH_LOCK_NEEDS_LOGIN;
 * - a login saved with oauth_lock_store_save gives a token the resource accepts;
 * - after the provider revokes access (a 401 at the resource), oauth_lock_source_reject gives
 *   a different token that the resource accepts.
 * Tokens are never printed, only their fingerprints.
 *
 * Usage: smoke STORE_DIR MOCK_URL VERSION */
#define _GNU_SOURCE
#include <oauth_lock.h>

#include "mock_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *what) {
  if (ok) {
    passed++;
    printf("ok   %s\n", what);
  } else {
    failed++;
    char message[1024];
    size_t len = 0;
    oauth_lock_last_error(message, sizeof message, &len);
    fprintf(stderr, "FAIL %s (last error: %s)\n", what, message);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s STORE_DIR MOCK_URL VERSION\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1], *mock = argv[2], *version = argv[3];
  char what[512];

  snprintf(what, sizeof what, "oauth_lock_version() is %s (got %s)", version, oauth_lock_version());
  check(strcmp(oauth_lock_version(), version) == 0, what);

  oauth_lock_store *store = NULL;
  check(oauth_lock_store_new(dir, &store) == OAUTH_LOCK_OK, "oauth_lock_store_new");
  if (!store) goto done;

  /* A key nobody logged in to. */
  oauth_lock_source *missing = NULL;
  oauth_lock_token *none = NULL;
  oauth_lock_code rc = oauth_lock_source_new(store, "missing", NULL, &missing);
  if (rc == OAUTH_LOCK_OK) rc = oauth_lock_source_access_token(missing, &none);
  snprintf(what, sizeof what, "a missing key gives OAUTH_LOCK_NEEDS_LOGIN (got %s)",
           oauth_lock_code_name(rc));
  check(rc == OAUTH_LOCK_NEEDS_LOGIN && none == NULL, what);
  oauth_lock_source_free(missing);

  /* A login at the mock provider, saved with the refresh config pointing back at it. */
  char *login = NULL;
  check(http(mock, "POST", "/login", NULL, &login) == 200, "POST /login at the mock provider");
  char *end = login ? strrchr(login, '}') : NULL;
  if (!end) goto done;
  *end = 0;
  char *credential = NULL;
  if (asprintf(&credential,
               "%s,\"refresh\":{\"token_url\":\"%s/oauth/token\",\"client_id\":\"oauth-lock-demo\","
               "\"body\":\"json\"}}",
               login, mock) < 0)
    goto done;
  free(login);
  check(oauth_lock_store_save(store, "smoke", credential, 0) == OAUTH_LOCK_OK,
        "oauth_lock_store_save");
  free(credential);

  oauth_lock_source *source = NULL;
  oauth_lock_token *first = NULL, *second = NULL;
  check(oauth_lock_source_new(store, "smoke", NULL, &source) == OAUTH_LOCK_OK,
        "oauth_lock_source_new");
  check(oauth_lock_source_access_token(source, &first) == OAUTH_LOCK_OK,
        "oauth_lock_source_access_token");
  if (!first) goto done;
  check(http(mock, "GET", "/resource", oauth_lock_token_value(first), NULL) == 200,
        "the resource accepts the token");

  /* The provider revokes it: a 401, then reject gives a different token. */
  check(http(mock, "POST", "/admin/revoke-access", NULL, NULL) == 200, "POST /admin/revoke-access");
  check(http(mock, "GET", "/resource", oauth_lock_token_value(first), NULL) == 401,
        "the resource refuses the revoked token (401)");
  check(oauth_lock_source_reject(source, oauth_lock_token_value(first), &second) == OAUTH_LOCK_OK,
        "oauth_lock_source_reject after the 401");
  if (second) {
    snprintf(what, sizeof what, "a different token (%s, was %s), generation %llu -> %llu",
             oauth_lock_token_fingerprint(second), oauth_lock_token_fingerprint(first),
             (unsigned long long)oauth_lock_token_generation(first),
             (unsigned long long)oauth_lock_token_generation(second));
    check(strcmp(oauth_lock_token_value(first), oauth_lock_token_value(second)) != 0, what);
    check(http(mock, "GET", "/resource", oauth_lock_token_value(second), NULL) == 200,
          "the resource accepts the new token");
  }
  oauth_lock_token_free(first);
  oauth_lock_token_free(second);
  oauth_lock_source_free(source);

done:
  oauth_lock_store_free(store);
  printf("smoke: %d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
