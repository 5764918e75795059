"""The Python figures of docs/BENCHMARKS.md, measured in one run on one machine: the
oauth_lock hot path (sync and asyncio), what Python users write by hand instead (a
`filelock`-based re-read/refresh routine, msal-extensions' PersistedTokenCache with
CrossPlatLock), and the hand-off to a caller blocked behind another writer's refresh
(oauth-lock's kernel wait vs filelock's polling). Figures, not tests: nothing asserts a time.

Run it with scripts/bench-python (release build)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import filelock
import msal  # type: ignore[import-untyped]
import msal_extensions  # type: ignore[import-untyped]

import oauth_lock


def per_call_ns(fn: Callable[[], object], calls: int, rounds: int) -> float:
    """Median over `rounds` of the mean time per call in a loop of `calls`."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def async_per_call_ns(source: oauth_lock.TokenSource, calls: int, rounds: int) -> float:
    async def main() -> float:
        samples = []
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(calls):
                await source.access_token_async()
            samples.append((time.perf_counter_ns() - start) / calls)
        return statistics.median(samples)

    return asyncio.run(main())


# ---- what users write by hand -------------------------------------------------------------


def filelock_token(path: Path, lock: filelock.FileLock, refresh: Callable[[Dict[str, Any]], Dict[str, Any]]) -> str:
    """The usual hand-written routine: lock, re-read the JSON file, refresh and write back if
    it is about to expire, unlock. Its read path (token fresh) is what is measured."""
    with lock:
        data: Dict[str, Any] = json.loads(path.read_text())
        if data["expires_at"] - time.time() < 300:
            data = refresh(data)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
        return str(data["access_token"])


def no_refresh(data: Dict[str, Any]) -> Dict[str, Any]:
    raise AssertionError("the benchmark's token is fresh")


def msal_cache(directory: Path) -> Tuple[Any, str]:
    """An msal-extensions PersistedTokenCache holding one fresh access token."""
    persistence = msal_extensions.FilePersistence(str(directory / "msal_cache.bin"))
    cache = msal_extensions.PersistedTokenCache(persistence)
    cache.add(
        {
            "client_id": "my-app",
            "scope": ["user.read"],
            "token_endpoint": "https://login.example.com/common/oauth2/v2.0/token",
            "response": {
                "access_token": "at-msal",
                "refresh_token": "rt-msal",
                "expires_in": 3600,
                "token_type": "Bearer",
            },
        }
    )
    persistence.save(cache.serialize())
    return cache, str(directory / "msal_cache.bin.lockfile")


def msal_read(cache: Any) -> str:
    found = list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=["user.read"]))
    return str(found[0]["secret"])


# ---- hand-off to a caller blocked behind another writer -----------------------------------


def commit_fresh(record: Path) -> None:
    """What another writer does before releasing the lock: an atomic, fresh record."""
    data = json.loads(record.read_bytes())
    data["generation"] += 1
    data["access_token"] = f"at-{data['generation']}"
    now = int(time.time() * 1000)
    data["issued_at_ms"], data["expires_at_ms"] = now, now + 3_600_000
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, record)


def handoff_ours(store: oauth_lock.Store, rounds: int) -> List[float]:
    """Release of `<stem>.lock` by another holder → the blocked access_token() returns."""
    out = []
    for i in range(rounds):
        key = f"handoff-{i}"
        store.save(key, access_token="stale", refresh_token="rt", expires_in=0)
        record = store.path_of(key)
        source = store.source(key)
        with open(record.with_suffix(".lock"), "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            returned: List[int] = []
            t = threading.Thread(
                target=lambda: (source.access_token(), returned.append(time.perf_counter_ns()))
            )
            t.start()
            time.sleep(0.02)  # the caller is now blocked in the kernel on the lock
            commit_fresh(record)
            released = time.perf_counter_ns()
            fcntl.flock(held, fcntl.LOCK_UN)
            t.join()
        out.append((returned[0] - released) / 1000)
    return out


def handoff_filelock(directory: Path, rounds: int) -> List[float]:
    """The same with filelock: the waiter polls (default poll_interval 0.05 s)."""
    path = directory / "fl.json"
    path.write_text(json.dumps({"access_token": "at", "expires_at": time.time() + 3600}))
    out = []
    for _ in range(rounds):
        holder = filelock.FileLock(str(path) + ".lock")
        waiter = filelock.FileLock(str(path) + ".lock")
        holder.acquire()
        returned: List[int] = []
        t = threading.Thread(
            target=lambda: (filelock_token(path, waiter, no_refresh), returned.append(time.perf_counter_ns()))
        )
        t.start()
        time.sleep(0.02)
        released = time.perf_counter_ns()
        holder.release()
        t.join()
        out.append((returned[0] - released) / 1000)
    return out


def pct(values: List[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def fmt_ns(ns: float) -> str:
    return f"{ns:.0f} ns" if ns < 1000 else f"{ns / 1000:.1f} µs"


def fmt_us(us: float) -> str:
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.1f} ms"


def main() -> None:
    quick = "--quick" in sys.argv
    calls, rounds = (20_000, 3) if quick else (1_000_000, 7)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        store = oauth_lock.Store(d / "store")
        store.save("bench", access_token="at-bench", refresh_token="rt", expires_in=3600)
        source = store.source("bench")
        source.access_token()

        hot = per_call_ns(source.access_token, calls, rounds)
        cached = per_call_ns(source.cached, calls, rounds)
        hot_async = async_per_call_ns(source, calls // 5, rounds)

        fl_path = d / "fl.json"
        fl_path.write_text(json.dumps({"access_token": "at", "expires_at": time.time() + 3600}))
        lock = filelock.FileLock(str(fl_path) + ".lock")
        peer_calls = calls // 50
        fl = per_call_ns(lambda: filelock_token(fl_path, lock, no_refresh), peer_calls, rounds)

        cache, lockfile = msal_cache(d)
        assert msal_read(cache) == "at-msal"
        ms_search = per_call_ns(lambda: msal_read(cache), peer_calls, rounds)

        def msal_locked() -> str:
            with msal_extensions.CrossPlatLock(lockfile):
                return msal_read(cache)

        ms_locked = per_call_ns(msal_locked, peer_calls, rounds)

        handoff_rounds = 10 if quick else 100
        ours = handoff_ours(store, handoff_rounds)
        theirs = handoff_filelock(d, handoff_rounds // 2)

    print(f"Python {sys.version.split()[0]}, oauth_lock {oauth_lock.__version__}, "
          f"filelock {filelock.__version__}, msal-extensions {msal_extensions.__version__}")
    print()
    print("| measurement | median | notes |")
    print("| --- | ---: | --- |")
    print(f"| `source.access_token()` (cached, fresh) | {fmt_ns(hot)} | target < 1 µs |")
    print(f"| `source.cached()` | {fmt_ns(cached)} |  |")
    print(f"| `await source.access_token_async()` (cached, fresh) | {fmt_ns(hot_async)} | coroutine included |")
    print(f"| peer: `filelock` lock + re-read + unlock per call | {fmt_ns(fl)} | {fl / hot:.0f}× oauth-lock |")
    print(f"| peer: msal-extensions `PersistedTokenCache.search` | {fmt_ns(ms_search)} | {ms_search / hot:.0f}× oauth-lock (stat per call, no lock) |")
    print(f"| peer: msal-extensions `CrossPlatLock` + `search` | {fmt_ns(ms_locked)} | {ms_locked / hot:.0f}× oauth-lock |")
    print(f"| hand-off, oauth-lock (release → blocked `access_token()` returns) | {fmt_us(statistics.median(ours))} | p99 {fmt_us(pct(ours, 0.99))}, {len(ours)} rounds |")
    print(f"| hand-off, `filelock` (release → blocked `acquire()` returns) | {fmt_us(statistics.median(theirs))} | p99 {fmt_us(pct(theirs, 0.99))}, {len(theirs)} rounds (polls every 50 ms) |")


if __name__ == "__main__":
    main()
