"""One waiting Python process, for the "Waiters wake together" figures (bench/waiters/waiters.py
starts many at once). Prints one JSON line with CLOCK_REALTIME times in ns, as `oauth-lock
probe` does.

    probe.py oauth-lock STORE KEY
        opens `oauth_lock.Store(STORE).source(KEY)`, prints "ready", waits for a line on
        stdin, makes one `access_token()` call and prints {pid, generation, fingerprint, error,
        started_ns, returned_ns} (the core's lock counters are the CLI's alone: times only).
    probe.py filelock JSON_FILE
        the `filelock` peer: prints "ready", takes `FileLock(JSON_FILE + ".lock")` (it polls
        every 50 ms, its default), re-reads the JSON file, releases, and prints {pid,
        access_token, started_ns, returned_ns}; such waiters take the lock in turn.

The report waits for a second line on stdin ("report", sent once the round is over): a
probe's JSON and print (some 40 µs of CPU for Python) must not run while the other waiters
still wait for a CPU, or it counts in their figures. Either then stays, idle, until stdin is
closed.
"""

from __future__ import annotations

import json
import os
import sys
import time


def oauth_lock_waiter(store: str, key: str) -> None:
    import oauth_lock

    source = oauth_lock.Store(store).source(key)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time_ns()
    generation = fingerprint = error = None
    try:
        token = source.access_token()
        returned = time.time_ns()
        generation, fingerprint = token.generation, token.fingerprint
    except oauth_lock.Error as e:
        returned = time.time_ns()
        error = e.code
    report({"pid": os.getpid(), "generation": generation, "fingerprint": fingerprint,
            "error": error, "started_ns": started, "returned_ns": returned})


def filelock_waiter(path: str) -> None:
    import filelock

    lock = filelock.FileLock(path + ".lock")
    print("ready", flush=True)
    started = time.time_ns()
    with lock:
        with open(path) as f:
            token = json.load(f)["access_token"]
    returned = time.time_ns()
    report({"pid": os.getpid(), "access_token": token, "started_ns": started,
            "returned_ns": returned})


def report(doc: dict[str, object]) -> None:
    """Prints `doc` when asked (a line on stdin), then lingers."""
    sys.stdin.readline()
    print(json.dumps(doc), flush=True)
    linger()


def linger() -> None:
    """Stays (idle) until stdin closes, then leaves without the interpreter's teardown: a
    waiter's exit, some ms of CPU for Python, must not delay the waiters still waking (a real
    process goes on working with its token; it does not exit)."""
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["oauth-lock"] and len(sys.argv) == 4:
        oauth_lock_waiter(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["filelock"] and len(sys.argv) == 3:
        filelock_waiter(sys.argv[2])
    else:
        sys.exit(__doc__)
