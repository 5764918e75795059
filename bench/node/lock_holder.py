"""The other process of the Node hand-off (bench/node/bench.mjs): Node cannot flock(2), so
this stdlib-only helper holds a credential's `<stem>.lock` while the Node process is blocked
on it, then commits a fresh record and releases, answering with its CLOCK_MONOTONIC time of
release (the same clock as Node's process.hrtime).

Protocol, one line each way: `hold LOCK_PATH` → `held`; `release RECORD_PATH KEY TOKEN` → the
release time in ns."""

import fcntl
import json
import os
import sys
import time

held = None
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "hold":
        held = open(args[0], "a")
        fcntl.flock(held, fcntl.LOCK_EX)
        print("held", flush=True)
    elif cmd == "release" and held is not None:
        record, key, token = args
        now = int(time.time() * 1000)
        tmp = record + ".holder-tmp"
        with open(tmp, "w") as f:
            json.dump({"format": 1, "key": key, "generation": 1000, "access_token": token,
                       "refresh_token": "rt", "issued_at_ms": now, "expires_at_ms": now + 3_600_000}, f)
        os.replace(tmp, record)
        released = time.monotonic_ns()
        fcntl.flock(held, fcntl.LOCK_UN)
        held.close()
        held = None
        print(released, flush=True)
