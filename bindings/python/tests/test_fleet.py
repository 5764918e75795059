"""The fleet store from Python (DESIGN.md §10): `Store(url)` hands a postgresql:// URL to the
core, which does the rest; a smoke run against the server scripts/pg-cluster starts
(`OAUTH_LOCK_TEST_PG_URL`). A missing server fails the test; it never skips."""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import List

import pytest

import oauth_lock
from conftest import MockFactory
from support import log_in


def pg_url() -> str:
    url = os.environ.get("OAUTH_LOCK_TEST_PG_URL", "")
    if not url:
        pytest.fail("OAUTH_LOCK_TEST_PG_URL is unset: scripts/test-python starts a server (scripts/pg-cluster)")
    return f"{url}&schema=py_{os.getpid()}_{threading.get_ident() % 100000}"


def test_threads_on_a_postgresql_store_refresh_once(start_mock: MockFactory) -> None:
    url = pg_url()
    mock = start_mock("--lifetime", "1h")
    store = oauth_lock.Store(url)
    log_in(mock, store, "py:fleet", expires_in=0)
    tokens: List[str] = []

    def worker() -> None:
        tokens.append(str(oauth_lock.Store(url).source("py:fleet").access_token()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and len(tokens) == 8, tokens
    stats = mock.stats()
    assert stats["refreshes"] == 1 and stats["replays"] == 0, stats
    status = store.status("py:fleet")
    assert status.generation == 2 and status.exists
    assert store.clear("py:fleet") is True
    with pytest.raises(oauth_lock.NeedsLogin):
        store.source("py:fleet").access_token()


def test_a_bad_url_is_invalid_argument_without_the_password() -> None:
    with pytest.raises(oauth_lock.InvalidArgument) as e:
        oauth_lock.Store("postgresql://u:hunter2@127.0.0.1/d?sslmode=sometimes")
    assert "sslmode" in str(e.value) and "hunter2" not in str(e.value)


def test_a_wrong_password_is_invalid_argument_without_it() -> None:
    parts = urllib.parse.urlsplit(pg_url())
    netloc = f"{parts.username}:wrong-pw-123@{parts.hostname}:{parts.port}"
    store = oauth_lock.Store(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    with pytest.raises(oauth_lock.InvalidArgument) as e:
        store.source("k").access_token()
    assert "wrong-pw-123" not in str(e.value)
