"""The Python figures of docs/BENCHMARKS.md, measured in one run on one machine and written as
JSON for bench/report.py: the oauth_lock hot path (sync and asyncio), a cold read, what
Python users write by hand instead (a `filelock`-based re-read/refresh routine,
msal-extensions' PersistedTokenCache with and without its CrossPlatLock), and the hand-off to
a caller blocked behind another writer's refresh (oauth-lock's kernel wait vs filelock's and
CrossPlatLock's polling). Figures, not tests: nothing asserts a time.

Run it with scripts/bench-python (release build): `bench.py OUT_JSON [quick]`, or
`bench.py worker STORE MOCK KEY THREADS SECONDS` (one contention process, for
bench/contention.py: threads taking a token and calling /resource, rejecting on 401)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import urllib.error
import urllib.request

import filelock
import msal  # type: ignore[import-untyped]
import msal_extensions  # type: ignore[import-untyped]

import oauth_lock


def per_call_ns(fn: Callable[[], object], calls: int, rounds: int) -> List[float]:
    """The mean ns per call in each of `rounds` loops of `calls` (after one warm-up loop)."""
    for _ in range(max(1, calls // 10)):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls)
    return samples


def async_per_call_ns(source: oauth_lock.TokenSource, calls: int, rounds: int) -> List[float]:
    async def main() -> List[float]:
        samples = []
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(calls):
                await source.access_token_async()
            samples.append((time.perf_counter_ns() - start) / calls)
        return samples

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


def msal_write(persistence: Any, access_token: str) -> None:
    """A refresh's write, as PersistedTokenCache.modify does it under CrossPlatLock (which the
    caller here already holds): reload the persistence, add the token response, save."""
    cache = msal.SerializableTokenCache()
    cache.deserialize(persistence.load())
    cache.add(
        {
            "client_id": "my-app",
            "scope": ["user.read"],
            "token_endpoint": "https://login.example.com/common/oauth2/v2.0/token",
            "response": {"access_token": access_token, "refresh_token": "rt-msal",
                         "expires_in": 3600, "token_type": "Bearer"},
        }
    )
    persistence.save(cache.serialize())


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
        out.append(float(returned[0] - released))
    return out


def handoff_filelock(directory: Path, rounds: int) -> List[float]:
    """The same with filelock: the waiter polls (default poll_interval 0.05 s); the holder
    releases at a random moment of one poll interval."""
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
        # Release at a random phase of the waiter's polling, as a real refresh's duration would.
        time.sleep(0.02 + random.uniform(0, 0.05))
        released = time.perf_counter_ns()
        holder.release()
        t.join()
        out.append(float(returned[0] - released))
    return out


def handoff_msal(directory: Path, rounds: int) -> List[float]:
    """The same with msal-extensions: another PersistedTokenCache (as another process has)
    blocked in CrossPlatLock while the holder writes a new token through its own cache and
    releases; the waiter then reads the new token. CrossPlatLock's waiter polls every 0.25 s."""
    _, lockfile = msal_cache(directory)
    persistence = msal_extensions.FilePersistence(str(directory / "msal_cache.bin"))
    waiter_cache = msal_extensions.PersistedTokenCache(
        msal_extensions.FilePersistence(str(directory / "msal_cache.bin"))
    )
    out = []
    for i in range(rounds):
        lock = msal_extensions.CrossPlatLock(lockfile)
        lock.__enter__()
        returned: List[int] = []
        got: List[str] = []

        def wait() -> None:
            with msal_extensions.CrossPlatLock(lockfile):
                got.append(msal_read(waiter_cache))
            returned.append(time.perf_counter_ns())

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.02 + random.uniform(0, 0.25))  # a random phase of the 0.25 s polling
        msal_write(persistence, f"at-msal-{i}")
        released = time.perf_counter_ns()
        lock.__exit__(None, None, None)
        t.join()
        assert got == [f"at-msal-{i}"], got
        out.append(float(returned[0] - released))
    return out


def cold_reads(store: oauth_lock.Store, n: int) -> List[float]:
    """The first access_token() of a key in this process, on a fresh record written directly
    (as another process's commit would be), so this process has never seen it."""
    out = []
    for i in range(n):
        key = f"cold-{i}"
        now = int(time.time() * 1000)
        record = {"format": 1, "key": key, "generation": 1, "access_token": f"at-{key}",
                  "refresh_token": "rt", "issued_at_ms": now, "expires_at_ms": now + 3_600_000}
        store.path_of(key).write_text(json.dumps(record))
        source = store.source(key)
        start = time.perf_counter_ns()
        source.access_token()
        out.append(float(time.perf_counter_ns() - start))
    return out


def worker(store_dir: str, mock: str, key: str, threads: int, seconds: float) -> None:
    """One contention process: `threads` threads take a token and call /resource with it
    until the deadline, rejecting the token on a 401. Prints {"calls", "errors"} as JSON."""
    source = oauth_lock.Store(store_dir).source(key)
    deadline = time.monotonic() + seconds
    counts = {"calls": 0, "resource_ok": 0, "rejects": 0}
    errors: Dict[str, int] = {}
    guard = threading.Lock()

    def status(token: str) -> int:
        req = urllib.request.Request(mock + "/resource", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def loop() -> None:
        while time.monotonic() < deadline:
            try:
                token = source.access_token()
                code = status(token.value)
                if code == 401:
                    token = source.reject(token.value)
                    code = status(token.value)
                with guard:
                    counts["calls"] += 1
                    counts["resource_ok"] += code == 200
                    if code != 200:
                        errors[f"http_{code}"] = errors.get(f"http_{code}", 0) + 1
            except oauth_lock.Error as e:
                with guard:
                    errors[e.code] = errors.get(e.code, 0) + 1

    running = [threading.Thread(target=loop) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    print(json.dumps({**counts, "errors": errors}))


def measurement(label: str, samples: List[float]) -> Dict[str, Any]:
    s = sorted(samples)
    return {
        "label": label,
        "median_ns": statistics.median(s),
        "p99_ns": s[min(len(s) - 1, round((len(s) - 1) * 0.99))],
        "min_ns": s[0],
        "max_ns": s[-1],
        "n": len(s),
        "samples_ns": s,
    }


def main(out_path: str, quick: bool) -> None:
    calls, rounds = (100_000, 3) if quick else (1_000_000, 7)
    peer_calls = calls // 50
    m: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        store = oauth_lock.Store(d / "store")
        store.save("bench", access_token="at-bench", refresh_token="rt", expires_in=3600)
        source = store.source("bench")
        source.access_token()

        m["hot"] = measurement("`source.access_token()`", per_call_ns(source.access_token, calls, rounds))
        m["cached"] = measurement("`source.cached()`", per_call_ns(source.cached, calls, rounds))
        m["hot_async"] = measurement(
            "`await source.access_token_async()`", async_per_call_ns(source, calls // 5, rounds)
        )

        fl_path = d / "fl.json"
        fl_path.write_text(json.dumps({"access_token": "at", "expires_at": time.time() + 3600}))
        lock = filelock.FileLock(str(fl_path) + ".lock")
        m["peer_filelock"] = measurement(
            "`filelock` lock + re-read + unlock per call",
            per_call_ns(lambda: filelock_token(fl_path, lock, no_refresh), peer_calls, rounds),
        )

        cache, lockfile = msal_cache(d)
        assert msal_read(cache) == "at-msal"
        m["peer_msal_search"] = measurement(
            "msal-extensions `PersistedTokenCache.search` per call (no lock)",
            per_call_ns(lambda: msal_read(cache), peer_calls, rounds),
        )

        def msal_locked() -> str:
            with msal_extensions.CrossPlatLock(lockfile):
                return msal_read(cache)

        m["peer_msal_locked"] = measurement(
            "msal-extensions `CrossPlatLock` + `search` per call", per_call_ns(msal_locked, peer_calls, rounds)
        )

        m["cold_read"] = measurement("first `access_token()` of a fresh record", cold_reads(store, 40 if quick else 400))
        handoff_rounds = 20 if quick else 100
        m["handoff"] = measurement(
            "release → blocked `access_token()` returns", handoff_ours(store, handoff_rounds)
        )
        m["peer_filelock_handoff"] = measurement(
            "`filelock`: release → blocked `acquire()` + re-read returns", handoff_filelock(d, handoff_rounds // 2)
        )
        (d / "msal").mkdir()
        m["peer_msal_handoff"] = measurement(
            "msal-extensions: release → blocked `CrossPlatLock` + `search` returns",
            handoff_msal(d / "msal", 10 if quick else 40),
        )

    for k, v in m.items():
        print(f"python {k:<22} median {v['median_ns']:14.1f} ns  p99 {v['p99_ns']:14.1f} ns  (n {v['n']})")
    doc = {
        "lang": "python",
        "quick": quick,
        "recorded_at_ms": int(time.time() * 1000),
        "versions": {
            "python": sys.version.split()[0],
            "oauth_lock": oauth_lock.__version__,
            "filelock": filelock.__version__,
            "msal": msal.__version__,
            "msal-extensions": msal_extensions.__version__,
            "CrossPlatLock from": msal_extensions.CrossPlatLock.__module__,
        },
        "measurements": m,
    }
    Path(out_path).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _, _, store_dir, mock_url, key, threads, seconds = sys.argv
        worker(store_dir, mock_url, key, int(threads), float(seconds))
    else:
        main(sys.argv[1], sys.argv[2:3] == ["quick"])
