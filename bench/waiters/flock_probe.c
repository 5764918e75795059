/* The kernel's own flock(2) hand-off, for the "Waiters wake together" figures of
 * docs/BENCHMARKS.md (bench/waiters/waiters.py runs it; scripts/bench-waiters builds it):
 *
 *   flock_probe hold PATH [FROM TO]
 *       takes LOCK_EX on PATH, prints "locked", then waits for a line on stdin; renames FROM
 *       to TO if given (another process's commit of a fresh record), and releases (unlocks,
 *       then closes): prints {"release_ns": before LOCK_UN, "released_ns": after close}.
 *   flock_probe wait PATH sh|ex
 *       blocks in flock(LOCK_SH or LOCK_EX) on PATH; when it has the lock, prints
 *       {"pid", "started_ns", "returned_ns"} and unlocks at once (so LOCK_EX waiters take the
 *       lock in turn, each one hand-off after the previous); then waits, idle, until stdin
 *       closes (so that its exit does not run while other waiters still wake).
 *
 * Every time is CLOCK_REALTIME in ns (as `oauth-lock probe` prints), so the holder's release
 * and the waiters' wake-ups compare across processes. Figures, not tests. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static long long realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_lock(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    perror(path);
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "hold") == 0) {
    int fd = open_lock(argv[2]);
    if (flock(fd, LOCK_EX) != 0) {
      perror("flock");
      return 1;
    }
    printf("locked\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;
    if (argc >= 5 && rename(argv[3], argv[4]) != 0) {
      perror("rename");
      return 1;
    }
    long long release = realtime_ns();
    /* Unlocked, then closed, as oauth-lock's holder releases (the close wakes the waiters
     * that watch for it rather than block in flock). */
    flock(fd, LOCK_UN);
    close(fd);
    long long released = realtime_ns();
    printf("{\"release_ns\": %lld, \"released_ns\": %lld}\n", release, released);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "wait") == 0) {
    int op = strcmp(argv[3], "ex") == 0 ? LOCK_EX : LOCK_SH;
    int fd = open_lock(argv[2]);
    long long started = realtime_ns();
    if (flock(fd, op) != 0) {
      perror("flock");
      return 1;
    }
    long long returned = realtime_ns();
    flock(fd, LOCK_UN);
    printf("{\"pid\": %d, \"started_ns\": %lld, \"returned_ns\": %lld}\n", (int)getpid(), started,
           returned);
    fflush(stdout);
    /* Linger until stdin closes: no exit while the other waiters still wake. */
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
  }
  fprintf(stderr, "usage: %s hold PATH [FROM TO] | wait PATH sh|ex\n", argv[0]);
  return 2;
}
