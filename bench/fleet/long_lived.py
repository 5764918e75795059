"""A long-lived process for the fleet hand-off between warm processes (bench/fleet): a gateway
instance keeps its process and its database sessions from one refresh to the next, where the
one-shot hand-off starts a new holder and new probes (cold processes, cold server sessions)
every round.

Usage: long_lived.py holder|waiter STORE_URL KEY DIR ROUNDS

Round N starts when DIR/<role>-N exists. The holder then calls access_token(); its callback
refresher (the credential's lock held) writes DIR/holding-N and waits for DIR/go-N, then
answers with made-up tokens. A waiter calls access_token() (it blocks behind the holder).
Each prints one JSON line per round: generation, go_seen_ns (the holder), returned_ns;
never a token.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from typing import Any, Dict

import oauth_lock


def wait_for(path: str) -> None:
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.001)


def main() -> int:
    role, url, key, directory, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    seen: Dict[str, int] = {}
    current = {"round": 0}

    def refresher(credential: oauth_lock.Credential) -> Dict[str, Any]:
        n = current["round"]
        with open(os.path.join(directory, f"holding-{n}"), "w") as f:
            f.write(str(os.getpid()))
        wait_for(os.path.join(directory, f"go-{n}"))
        seen["go_seen_ns"] = time.time_ns()
        return {
            "access_token": "held-at-" + secrets.token_hex(16),
            "refresh_token": "held-rt-" + secrets.token_hex(16),
            "expires_in": 60,
        }

    source = oauth_lock.Store(url).source(key, refresher if role == "holder" else None, refresh_timeout=55)
    for n in range(rounds):
        current["round"] = n
        wait_for(os.path.join(directory, f"{role}-{n}"))
        seen.clear()
        token = source.access_token()
        report: Dict[str, Any] = {"round": n, "generation": token.generation, "returned_ns": time.time_ns()}
        report.update(seen)
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
