"""The peer for the fleet benchmarks (issue 15): the Redis lock that gateways write by hand,
against Debian's `redis-server` on the bridge and the same strict mock provider as ours.

The routine, as gateways write it: read the credential from Redis; if it is fresh, use it;
else `SET lock <random> NX PX <ttl>`; on success re-read (another may have refreshed while
this one waited), refresh against the provider when still stale, write the credential back,
then `DEL lock` (the naive release: no owner check, so a holder that outlived the TTL deletes
the next holder's lock); on failure sleep 50 ms and start over. The freshness margin is the
core's (half the token's lifetime, at most 5 minutes), so both sides refresh at the same
moments and only the lock differs.

The Redis client is a minimal RESP2 client in the standard library (no package downloaded or
installed at run time; the commands on the wire are the ones redis-py sends for
`set(nx=True, px=...)`, `get`, `delete`).

Usage (run by bench/fleet/bench_fleet.py, on a host's namespace):
  redis_peer.py worker REDIS KEY TOKEN_URL RESOURCE_URL SECONDS THREADS
  redis_peer.py holder REDIS KEY MARKER GO
  redis_peer.py probe  REDIS KEY MARKER
REDIS is HOST:PORT. Each prints one JSON line (never a token: fingerprints only).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional

POLL_S = 0.05  # the 50 ms polling interval of the hand-written routine
LOCK_TTL_MS = 5000  # SET ... PX: the lock's time to live
CLIENT_ID = "oauth-lock-demo"


class RedisError(Exception):
    pass


class Redis:
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def command(self, *args: str) -> Any:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        return self._read()

    def _read(self) -> Any:
        line = self.reader.readline()
        if not line:
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.reader.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RedisError(f"unexpected reply {line[:20]!r}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def cred_key(key: str) -> str:
    return f"oauth:{key}:credential"


def lock_key(key: str) -> str:
    return f"oauth:{key}:lock"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def credential_from(response: Dict[str, Any], generation: int) -> Dict[str, Any]:
    issued = now_ms()
    return {
        "access_token": response["access_token"],
        "refresh_token": response["refresh_token"],
        "issued_at_ms": issued,
        "expires_at_ms": issued + int(response["expires_in"]) * 1000,
        "generation": generation,
    }


def save(r: Redis, key: str, cred: Dict[str, Any]) -> None:
    r.command("SET", cred_key(key), json.dumps(cred))


def load(r: Redis, key: str) -> Dict[str, Any]:
    raw = r.command("GET", cred_key(key))
    if raw is None:
        raise RedisError(f"no credential at {cred_key(key)}")
    cred: Dict[str, Any] = json.loads(raw)
    return cred


def fresh(cred: Dict[str, Any]) -> bool:
    # The core's margin: half the lifetime, at most 5 minutes.
    margin = min(300_000, (cred["expires_at_ms"] - cred["issued_at_ms"]) // 2)
    return bool(cred["expires_at_ms"] - now_ms() > margin)


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class Gateway:
    """One thread's view: its own Redis connection, the hand-written routine."""

    def __init__(self, address: str, key: str, token_url: str) -> None:
        self.r = Redis(address)
        self.key = key
        self.token_url = token_url
        self.refreshes_sent = 0
        self.lock_waits = 0
        self.on_blocked: Optional[Any] = None

    def refresh(self, cred: Dict[str, Any]) -> Dict[str, Any]:
        body = urllib.parse.urlencode({
            "grant_type": "refresh_token", "refresh_token": cred["refresh_token"], "client_id": CLIENT_ID,
        }).encode()
        req = urllib.request.Request(self.token_url, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
        })
        self.refreshes_sent += 1
        with urllib.request.urlopen(req, timeout=10) as resp:
            return credential_from(json.loads(resp.read()), cred["generation"] + 1)

    def token(self) -> Dict[str, Any]:
        while True:
            cred = load(self.r, self.key)
            if fresh(cred):
                return cred
            me = secrets.token_hex(8)
            if self.r.command("SET", lock_key(self.key), me, "NX", "PX", str(LOCK_TTL_MS)) == "OK":
                try:
                    cred = load(self.r, self.key)
                    if fresh(cred):
                        return cred
                    cred = self.refresh(cred)
                    save(self.r, self.key, cred)
                    return cred
                finally:
                    self.r.command("DEL", lock_key(self.key))  # no owner check, as written by hand
            self.lock_waits += 1
            if self.on_blocked is not None:
                self.on_blocked()
                self.on_blocked = None
            time.sleep(POLL_S)


def resource_status(url: str, token: str) -> Optional[int]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


def worker(address: str, key: str, token_url: str, resource: str, seconds: float, threads: int) -> Dict[str, Any]:
    total: Dict[str, Any] = {"calls": 0, "refreshes_sent": 0, "lock_waits": 0, "resource_ok": 0,
                             "resource_unauthorized": 0, "errors": {}}
    mutex = threading.Lock()
    deadline = time.monotonic() + seconds

    def run() -> None:
        g = Gateway(address, key, token_url)
        mine: Dict[str, Any] = {"calls": 0, "resource_ok": 0, "resource_unauthorized": 0, "errors": {}}
        while time.monotonic() < deadline:
            mine["calls"] += 1
            try:
                cred = g.token()
            except (OSError, RedisError, ValueError) as e:
                name = type(e).__name__
                mine["errors"][name] = mine["errors"].get(name, 0) + 1
                time.sleep(0.005)
                continue
            status = resource_status(resource, cred["access_token"])
            if status == 200:
                mine["resource_ok"] += 1
            elif status == 401:
                mine["resource_unauthorized"] += 1
            else:
                mine["errors"]["ResourceUnreachable"] = mine["errors"].get("ResourceUnreachable", 0) + 1
        g.r.close()
        with mutex:
            for k in ("calls", "resource_ok", "resource_unauthorized"):
                total[k] += mine[k]
            total["refreshes_sent"] += g.refreshes_sent
            total["lock_waits"] += g.lock_waits
            for k, v in mine["errors"].items():
                total["errors"][k] = total["errors"].get(k, 0) + v

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return total


def holder(address: str, key: str, marker: str, go: str) -> Dict[str, Any]:
    """Takes the lock as the routine does, then, like tests/fleet_hosts/workers/holder.py,
    waits for GO inside the refresh and answers with made-up tokens (60 s)."""
    r = Redis(address)
    assert r.command("SET", lock_key(key), secrets.token_hex(8), "NX", "PX", str(LOCK_TTL_MS)) == "OK"
    cred = load(r, key)
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 50
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    go_seen_ns = time.time_ns()
    new = credential_from({
        "access_token": "held-at-" + secrets.token_hex(16),
        "refresh_token": "held-rt-" + secrets.token_hex(16),
        "expires_in": 60,
    }, cred["generation"] + 1)
    save(r, key, new)
    r.command("DEL", lock_key(key))
    returned_ns = time.time_ns()
    r.close()
    return {"ok": True, "generation": new["generation"], "fingerprint": fingerprint(new["access_token"]),
            "go_seen_ns": go_seen_ns, "returned_ns": returned_ns}


def probe(address: str, key: str, marker: str) -> Dict[str, Any]:
    """One call of the routine; MARKER is written when it first finds the lock taken."""
    g = Gateway(address, key, "http://127.0.0.1:9/unused")

    def blocked() -> None:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))

    g.on_blocked = blocked
    cred = g.token()
    returned_ns = time.time_ns()
    g.r.close()
    return {"error": None, "generation": cred["generation"], "fingerprint": fingerprint(cred["access_token"]),
            "returned_ns": returned_ns, "refreshes_sent": g.refreshes_sent}


def main(argv: List[str]) -> int:
    mode, address, key = argv[1], argv[2], argv[3]
    if mode == "worker":
        out = worker(address, key, argv[4], argv[5], float(argv[6]), int(argv[7]))
    elif mode == "holder":
        out = holder(address, key, argv[4], argv[5])
    elif mode == "probe":
        out = probe(address, key, argv[4])
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
