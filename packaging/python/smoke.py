"""A user's first minutes with the installed oauth_lock wheel (run by
scripts/test-package-python from a temporary directory, in a fresh venv, without cargo).

Starts the strict mock provider (`$OAUTH_LOCK_CLI mock-server`), logs in and saves the
token response with its refresh config, gets a token the resource accepts, gets a 401 after
the provider revokes every access token, rejects that token, gets a different one the
resource accepts (one refresh at the provider), and checks that a key nobody logged in with
raises `oauth_lock.NeedsLogin`. Prints one line per step; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict

import oauth_lock


def post(url: str) -> Any:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def resource(url: str, token: oauth_lock.AccessToken) -> int:
    req = urllib.request.Request(url + "/resource", headers={"Authorization": token.authorization})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def stats(url: str) -> Dict[str, int]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as r:
        result: Dict[str, int] = json.loads(r.read())
        return result


def main() -> None:
    installed = Path(oauth_lock.__file__).resolve()
    assert installed.is_relative_to(Path(sys.prefix).resolve()), installed
    repo = os.environ.get("OAUTH_LOCK_REPO")
    if repo:
        assert not installed.is_relative_to(Path(repo).resolve()), installed
    print(f"smoke: oauth_lock {oauth_lock.__version__} from {installed.parent}")

    mock = subprocess.Popen(
        [os.environ["OAUTH_LOCK_CLI"], "mock-server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert mock.stdout is not None
        line = mock.stdout.readline().strip()
        assert line.startswith("listening on "), line
        url = line[len("listening on ") :]

        store = oauth_lock.Store(Path(tempfile.mkdtemp(prefix="smoke-store-")))
        status = store.save_token_response(
            "smoke",
            post(url + "/login"),
            refresh=oauth_lock.OAuth2(url + "/oauth/token", "oauth-lock-demo"),
        )
        assert status.generation == 1, status
        print("smoke: logged in (POST /login, save_token_response with its refresh config)")

        source = store.source("smoke")
        first = source.access_token()
        assert resource(url, first) == 200
        print(f"smoke: token {first.fingerprint} accepted by the resource")

        post(url + "/admin/revoke-access")
        assert resource(url, first) == 401
        second = source.reject(first)
        assert second.value != first.value
        assert resource(url, second) == 200
        seen = stats(url)
        assert seen["refreshes"] == 1 and seen["replays"] == 0, seen
        print(f"smoke: 401 → reject → token {second.fingerprint} accepted (one refresh)")

        try:
            store.source("nobody-logged-in").access_token()
        except oauth_lock.NeedsLogin as e:
            assert e.code == "NeedsLogin" and e.key == "nobody-logged-in", (e.code, e.key)
        else:
            raise AssertionError("a missing key did not raise oauth_lock.NeedsLogin")
        print("smoke: a missing key raises oauth_lock.NeedsLogin")
    finally:
        mock.kill()
        mock.wait()
    print("smoke: ok")


if __name__ == "__main__":
    main()
