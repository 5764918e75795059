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

/* `METHOD path` with an empty JSON body against http://127.0.0.1:PORT; returns the HTTP
 * status (-1 on a socket error) and, when out_body is not NULL, the body (malloc'd). */
static int http(const char *base_url, const char *method, const char *path, const char *bearer,
                char **out_body) {
  const char *colon = strrchr(base_url, ':');
  if (!colon) return -1;
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(colon + 1));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  char req[8192];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                   "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                   method, path, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                   bearer ? "\r\n" : "");
  for (int off = 0; off < n;) {
    ssize_t w = write(fd, req + off, (size_t)(n - off));
    if (w <= 0) {
      close(fd);
      return -1;
    }
    off += (int)w;
  }
  size_t cap = 8192, len = 0;
  char *resp = malloc(cap);
  ssize_t r;
  while ((r = read(fd, resp + len, cap - len - 1)) > 0) {
    len += (size_t)r;
    if (cap - len - 1 == 0) resp = realloc(resp, cap *= 2);
  }
  close(fd);
  resp[len] = 0;
  int status = len > 12 ? atoi(resp + 9) : -1;
  if (out_body) {
    char *body = strstr(resp, "\r\n\r\n");
    *out_body = strdup(body ? body + 4 : "");
  }
  free(resp);
  return status;
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
