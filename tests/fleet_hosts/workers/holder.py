"""A lock holder for the fleet faults (tests/fleet_hosts): takes KEY's lock by refreshing it
with a callback refresher that never calls the provider. Inside the refresh (the lock held in
PostgreSQL) it writes MARKER (its pid) and waits until GO exists, then answers with made-up
tokens; so the test can SIGKILL it or cut its host off while it holds the lock, and see
whether its late commit goes through. Prints one JSON line: ok and generation, or the
error's code and message (never a token).

Usage: holder.py STORE_URL KEY MARKER GO [EXPIRES_IN]

The report's go_seen_ns (when the refresher saw GO: the commit and the release follow) and
returned_ns (when the call returned) time the hand-off (bench/fleet).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from typing import Any, Dict

import oauth_lock


def main() -> int:
    url, key, marker, go = sys.argv[1:5]
    expires_in = int(sys.argv[5]) if len(sys.argv) > 5 else 60
    seen: Dict[str, int] = {}

    def refresher(credential: oauth_lock.Credential) -> Dict[str, Any]:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        deadline = time.monotonic() + 50
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.001)
        seen["go_seen_ns"] = time.time_ns()
        return {
            "access_token": "held-at-" + secrets.token_hex(16),
            "refresh_token": "held-rt-" + secrets.token_hex(16),
            "expires_in": expires_in,
        }

    source = oauth_lock.Store(url).source(key, refresher, refresh_timeout=55)
    started = time.monotonic()
    try:
        token = source.access_token()
        returned_ns = time.time_ns()
        report: Dict[str, Any] = {"ok": True, "generation": token.generation,
                                  "fingerprint": token.fingerprint, "returned_ns": returned_ns}
    except oauth_lock.Error as e:
        report = {"ok": False, "code": e.code, "message": str(e)}
    report["seconds"] = round(time.monotonic() - started, 3)
    report.update(seen)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
