"""Shared helpers of the Python tests: the `oauth-lock` CLI, the strict mock provider
process, a logged-in store, and the worker functions that multiprocessing children run
(module-level, so that spawned children can import them)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import httpx

import oauth_lock
import oauth_lock.httpx

ROOT = Path(__file__).resolve().parents[3]


def cli() -> str:
    """The `oauth-lock` binary scripts/test-python built (OAUTH_LOCK_CLI)."""
    path = os.environ.get("OAUTH_LOCK_CLI")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        path = str(Path(target) / "debug" / "oauth-lock")
    assert Path(path).exists(), f"{path} is missing: run scripts/test-python"
    return path


def post_json(url: str, body: Optional[Mapping[str, Any]] = None) -> Tuple[int, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def get_status(url: str, bearer: Optional[str] = None) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


class Mock:
    """A running `oauth-lock mock-server` (127.0.0.1, a free port)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [cli(), "mock-server", "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        self.url = line[len("listening on ") :]
        self.token_url = self.url + "/oauth/token"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stats(self) -> Dict[str, int]:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            stats: Dict[str, int] = json.loads(r.read())
            return stats

    def login(self) -> Dict[str, Any]:
        status, body = post_json(self.url + "/login")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def revoke_access_tokens(self) -> None:
        status, _ = post_json(self.url + "/admin/revoke-access")
        assert status == 200

    def resource(self, token: object) -> int:
        return get_status(self.url + "/resource", str(token))

    def oauth2(self, client_id: str = "oauth-lock-demo") -> oauth_lock.OAuth2:
        return oauth_lock.OAuth2(self.token_url, client_id, body="json")


def log_in(
    mock: Mock, store: oauth_lock.Store, key: str, expires_in: Optional[float] = None
) -> oauth_lock.Status:
    """A login at the mock saved in `store` with its refresh config."""
    response = mock.login()
    if expires_in is not None:
        response["expires_in"] = expires_in
    return store.save_token_response(key, response, refresh=mock.oauth2())


def record_bytes(store: oauth_lock.Store, key: str) -> bytes:
    return store.path_of(key).read_bytes()


def assert_only_backoff_added(before: bytes, after: bytes) -> None:
    """A failed refresh changes nothing but the shared backoff (DESIGN.md §4 step 9): the
    tokens and every other field are as they were; the generation moved by one."""
    old, new = json.loads(before), json.loads(after)
    assert new["generation"] == old["generation"] + 1
    assert new.pop("backoff")["failures"] >= 1
    for volatile in ("generation", "updated_at_ms", "updated_by"):
        old.pop(volatile, None)
        new.pop(volatile, None)
    assert new == old


def lock_path(store: oauth_lock.Store, key: str) -> Path:
    """`<stem>.lock` beside `<stem>.json` (core/src/backend.rs)."""
    return store.path_of(key).with_suffix(".lock")


def generation(store: oauth_lock.Store, key: str) -> int:
    g = store.status(key).generation
    assert g is not None
    return g


# ---- what multiprocessing children run -------------------------------------------------


def _resource_loop(
    source: oauth_lock.TokenSource, url: str, deadline: float, out: Counter[str]
) -> None:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=10)

    def call(token: oauth_lock.AccessToken) -> int:
        conn.request("GET", "/resource", headers={"Authorization": token.authorization})
        r = conn.getresponse()
        r.read()
        return r.status

    while time.monotonic() < deadline:
        try:
            token = source.access_token()
            out["calls"] += 1
            status = call(token)
            if status == 401:
                out["rejects"] += 1
                status = call(source.reject(token))
            out["ok" if status == 200 else f"http_{status}"] += 1
        except oauth_lock.Error as e:
            out[f"error_{e.code}"] += 1
        time.sleep(0.01)
    conn.close()


def _threads_on(
    source: oauth_lock.TokenSource, url: str, seconds: float, threads: int
) -> Dict[str, int]:
    """`threads` threads calling access_token() + /resource on `source` until the deadline."""
    deadline = time.monotonic() + seconds
    counters = [Counter[str]() for _ in range(threads)]
    workers = [
        threading.Thread(target=_resource_loop, args=(source, url, deadline, c)) for c in counters
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return dict(sum(counters, Counter[str]()))


def soak_threads(store_dir: str, key: str, url: str, seconds: float, threads: int) -> Dict[str, int]:
    """One process: `threads` threads calling access_token() + /resource until the deadline."""
    source = oauth_lock.Store(store_dir).source(key)
    return _threads_on(source, url, seconds, threads)


def soak_asyncio(store_dir: str, key: str, url: str, seconds: float, tasks: int) -> Dict[str, int]:
    """One process: `tasks` asyncio tasks using httpx.AsyncClient with oauth_lock.httpx.Auth."""
    source = oauth_lock.Store(store_dir).source(key)
    out: Counter[str] = Counter()

    async def task(client: httpx.AsyncClient, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                token = await source.access_token_async()
                out["calls"] += 1
                assert token.value
                r = await client.get(url + "/resource")
                out["ok" if r.status_code == 200 else f"http_{r.status_code}"] += 1
            except oauth_lock.Error as e:
                out[f"error_{e.code}"] += 1
            await asyncio.sleep(0.01)

    async def main() -> None:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(auth=oauth_lock.httpx.Auth(source)) as client:
            await asyncio.gather(*(task(client, deadline) for _ in range(tasks)))

    asyncio.run(main())
    return dict(out)


def reject_after_401(
    store_dir: str, key: str, url: str, barrier: Any, results: Any
) -> None:
    """One process: a token, a 401 from /resource with it, then (once every process has seen
    its 401) reject, and the resource again. Puts (first, second, fingerprint) on `results`."""
    source = oauth_lock.Store(store_dir).source(key)
    token = source.access_token()
    first = get_status(url + "/resource", token.value)
    barrier.wait(timeout=30)
    fresh = source.reject(token)
    second = get_status(url + "/resource", fresh.value)
    results.put((first, second, fresh.fingerprint))


def mock_refresher(token_url: str) -> oauth_lock.Refresher:
    """A Python callback refresher that calls the provider itself (urllib, JSON body)."""

    def refresh(credential: oauth_lock.Credential) -> Dict[str, Any]:
        status, body = post_json(
            token_url,
            {
                "grant_type": "refresh_token",
                "refresh_token": credential.refresh_token,
                "client_id": "oauth-lock-demo",
            },
        )
        if status != 200:
            raise oauth_lock.RefreshError(str(body.get("error", "transient")), f"HTTP {status}")
        assert isinstance(body, dict)
        return body

    return refresh


def soak_callback(
    store_dir: str, key: str, url: str, seconds: float, threads: int
) -> Dict[str, int]:
    """One process: threads asking a source whose refresher is a Python callable."""
    source = oauth_lock.Store(store_dir).source(key, mock_refresher(url + "/oauth/token"))
    return _threads_on(source, url, seconds, threads)


def token_fingerprint(store_dir: str, key: str, url: str) -> Tuple[str, int]:
    """One process: a token (refreshing if needed) and its /resource status."""
    token = oauth_lock.Store(store_dir).source(key).access_token()
    return token.fingerprint, get_status(url + "/resource", token.value)


def total(results: List[Dict[str, int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in results:
        out.update(r)
    return out
