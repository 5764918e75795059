/* A minimal HTTP/1.1 client for the loopback mock provider (`oauth-lock mock-server`), so
 * that C programs talk to it with no curl: shared by the C tests (tests/c/support.h) and the C
 * tarball's smoke program (packaging/c/smoke.c, which scripts/test-package-c builds beside a
 * copy of this header). */
#ifndef OAUTH_LOCK_MOCK_HTTP_H
#define OAUTH_LOCK_MOCK_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* `METHOD path` against base_url (http://127.0.0.1:PORT); returns the status and, when
 * out_body is not NULL, the body (malloc'd). bearer may be NULL. */
static inline int http(const char *base_url, const char *method, const char *path, const char *bearer,
                char **out_body) {
  const char *hp = strstr(base_url, "://");
  hp = hp ? hp + 3 : base_url;
  const char *colon = strrchr(hp, ':');
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

#endif
