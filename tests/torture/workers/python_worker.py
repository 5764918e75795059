"""One Python process of the mixed torture run (tests/torture/test_torture.py): threads or
asyncio tasks share one TokenSource; each call takes a token, sends it to the mock's
/resource and, on a 401, rejects it and retries (a revocation can also catch the token the
reject adopted, hence a chain of rejects; see MAX_REJECTS). Prints one JSON line report; exits 1 on any error.

Usage: python_worker.py threads|asyncio STORE_DIR KEY MOCK_URL SECONDS CONCURRENCY
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any, Callable, Dict, List

import httpx

import oauth_lock

#: A 401 after this many rejects in one call is an error. One revocation can take several:
#: it kills every token issued before it, and a reject answers with a token other than the
#: rejected one (the process's cached one, the file's, or a refresh answered just before the
#: revocation), which may be such a token too; each reject must at least return another token.
MAX_REJECTS = 8
#: Latency samples kept per thread or task (reservoir sampling).
SAMPLE = 4000


class RejectReturnedTheRejectedToken(Exception):
    """reject() must answer with another token than the one rejected."""


class Tally:
    """What one thread or task counts."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: List[int] = []
        self.seen = 0
        #: The most rejects one call needed.
        self.longest = 0
        self.rng = random.Random()

    def latency(self, ns: int) -> None:
        self.seen += 1
        if len(self.latencies) < SAMPLE:
            self.latencies.append(ns)
        else:
            i = self.rng.randrange(self.seen)
            if i < SAMPLE:
                self.latencies[i] = ns

    def error(self, code: str, detail: object) -> None:
        if not self.errors[code]:
            print(f"python pid {os.getpid()}: {code}: {detail}", file=sys.stderr)
        self.errors[code] += 1


def report(mode: str, tallies: List[Tally]) -> Dict[str, Any]:
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: List[int] = []
    for t in tallies:
        counts.update(t.counts)
        errors.update(t.errors)
        latencies.extend(t.latencies)
    return {
        "lang": f"python-{mode}",
        "pid": os.getpid(),
        "concurrency": len(tallies),
        "calls": counts["calls"],
        "resource_ok": counts["ok"],
        "resource_unauthorized": counts["unauthorized"],
        "rejects": counts["rejects"],
        "max_rejects_per_call": max((t.longest for t in tallies), default=0),
        "errors": dict(errors),
        "latencies_ns": latencies,
    }


def classify(tally: Tally, e: BaseException) -> None:
    if isinstance(e, oauth_lock.Error):
        tally.error(e.code, e)
    else:
        tally.error(type(e).__name__, e)


def run_threads(dir: str, key: str, url: str, seconds: float, n: int) -> Dict[str, Any]:
    source = oauth_lock.Store(dir).source(key)
    parsed = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + seconds

    def loop(tally: Tally) -> None:
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=10)

        def get(token: oauth_lock.AccessToken) -> int:
            conn.request("GET", "/resource", headers={"Authorization": token.authorization})
            r = conn.getresponse()
            r.read()
            return r.status

        while time.monotonic() < deadline:
            try:
                started = time.perf_counter_ns()
                try:
                    token = source.access_token()
                finally:
                    tally.latency(time.perf_counter_ns() - started)
                    tally.counts["calls"] += 1
                status = get(token)
                rejects = 0
                while status == 401 and rejects < MAX_REJECTS:
                    tally.counts["unauthorized"] += 1
                    tally.counts["rejects"] += 1
                    rejects += 1
                    tally.longest = max(tally.longest, rejects)
                    fresh = source.reject(token)
                    if fresh.value == token.value:
                        raise RejectReturnedTheRejectedToken(fresh.fingerprint)
                    token = fresh
                    status = get(token)
                if status == 200:
                    tally.counts["ok"] += 1
                else:
                    tally.error(f"http_{status}", f"/resource after {rejects} rejects")
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                classify(tally, e)
            time.sleep(0.001)
        conn.close()

    tallies = [Tally() for _ in range(n)]
    threads = [threading.Thread(target=loop, args=(t,)) for t in tallies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report("threads", tallies)


def run_asyncio(dir: str, key: str, url: str, seconds: float, n: int) -> Dict[str, Any]:
    source = oauth_lock.Store(dir).source(key)

    async def task(client: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
        async def get(token: oauth_lock.AccessToken) -> int:
            r = await client.get(url + "/resource", headers={"Authorization": token.authorization})
            return r.status_code

        while time.monotonic() < deadline:
            try:
                started = time.perf_counter_ns()
                try:
                    token = await source.access_token_async()
                finally:
                    tally.latency(time.perf_counter_ns() - started)
                    tally.counts["calls"] += 1
                status = await get(token)
                rejects = 0
                while status == 401 and rejects < MAX_REJECTS:
                    tally.counts["unauthorized"] += 1
                    tally.counts["rejects"] += 1
                    rejects += 1
                    tally.longest = max(tally.longest, rejects)
                    fresh = await source.reject_async(token)
                    if fresh.value == token.value:
                        raise RejectReturnedTheRejectedToken(fresh.fingerprint)
                    token = fresh
                    status = await get(token)
                if status == 200:
                    tally.counts["ok"] += 1
                else:
                    tally.error(f"http_{status}", f"/resource after {rejects} rejects")
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                classify(tally, e)
            await asyncio.sleep(0.001)

    tallies = [Tally() for _ in range(n)]

    async def main() -> None:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(*(task(client, deadline, t) for t in tallies))

    asyncio.run(main())
    return report("asyncio", tallies)


MODES: Dict[str, Callable[[str, str, str, float, int], Dict[str, Any]]] = {
    "threads": run_threads,
    "asyncio": run_asyncio,
}


def main(argv: List[str]) -> int:
    mode, dir, key, url, seconds, n = argv
    out = MODES[mode](dir, key, url, float(seconds), int(n))
    print(json.dumps(out), flush=True)
    return 0 if out["calls"] > 0 and not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
