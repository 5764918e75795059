"""An oauth-lock process of the mirror runs (tests/mirrors/test_mirrors.py): in a loop it takes
the credential's access token, through the Python package (`python`) or by running the CLI's
`oauth-lock token KEY` (`cli`), and GETs the mock's /resource with it; on a 401 it rejects the
token (`reject` / `token --reject`) and retries once. Prints ONE JSON line:
{"program", "pid", "calls", "resource_ok", "resource_unauthorized", "rejects", "errors"}.
Never prints a token.

Usage: oauth_lock_worker.py python STORE KEY RESOURCE_URL SECONDS EVERY_MS
       oauth_lock_worker.py cli STORE KEY RESOURCE_URL SECONDS EVERY_MS OAUTH_LOCK_CLI
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple


class Failed(Exception):
    """A token call failed; `code` is the oauth-lock error code (or the CLI's exit status)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as e:
        e.read()
        return int(e.code)


#: (take a token, reject a token) for one kind of worker.
Calls = Tuple[Callable[[], str], Callable[[str], str]]


def python_calls(store: str, key: str) -> Calls:
    import oauth_lock

    source = oauth_lock.Store(store).source(key)

    def take() -> str:
        try:
            return source.access_token().value
        except oauth_lock.Error as e:
            raise Failed(e.code, str(e)) from e

    def reject(token: str) -> str:
        try:
            return source.reject(token).value
        except oauth_lock.Error as e:
            raise Failed(e.code, str(e)) from e

    return take, reject


def cli_calls(store: str, key: str, cli: str) -> Calls:
    def run(*extra: str) -> str:
        done = subprocess.run(
            [cli, "--dir", store, "token", key, *extra], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise Failed(f"exit_{done.returncode}", done.stderr.strip()[-500:])
        return done.stdout.strip()

    return (lambda: run()), (lambda token: run("--reject", token))


def main() -> None:
    mode, store, key, url, seconds, every_ms = sys.argv[1:7]
    calls = cli_calls(store, key, sys.argv[7]) if mode == "cli" else python_calls(store, key)
    take, reject = calls
    report: Dict[str, Any] = {
        "program": f"oauth-lock-{mode}",
        "pid": os.getpid(),
        "calls": 0,
        "resource_ok": 0,
        "resource_unauthorized": 0,
        "rejects": 0,
        "errors": {},
    }
    errors: Dict[str, int] = report["errors"]

    def error(code: str, detail: object) -> None:
        if code not in errors:
            print(f"oauth-lock-{mode} pid {os.getpid()}: {code}: {detail}", file=sys.stderr)
        errors[code] = errors.get(code, 0) + 1

    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        report["calls"] += 1
        try:
            token: Optional[str] = take()
            assert token is not None
            status = get(url, token)
            if status == 401:
                report["resource_unauthorized"] += 1
                report["rejects"] += 1
                token = reject(token)
                status = get(url, token)
                if status == 401:
                    report["resource_unauthorized"] += 1
            if status == 200:
                report["resource_ok"] += 1
            else:
                error(f"resource_http_{status}", "after a reject")
        except Failed as e:
            error(e.code, e)
        except Exception as e:  # noqa: BLE001 - counted and reported
            error(type(e).__name__, e)
        time.sleep(float(every_ms) / 1000)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
