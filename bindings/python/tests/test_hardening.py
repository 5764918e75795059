"""Corners of the protocol seen from Python against the strict mock provider (issue 11): a
callback refresher that outlives ``refresh_timeout`` while another process asks, a provider
that refuses the client but not the refresh token, and a provider outage."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, List

import pytest

import oauth_lock
from support import Mock, cli, generation, log_in, mock_refresher, post_json


def test_a_timed_out_callback_keeps_the_lock_and_its_late_answer_is_committed(
    mock: Mock, store: oauth_lock.Store, store_dir: Path
) -> None:
    """The callback sends its token request only after ``refresh_timeout``: the caller gets
    ``Transient`` at the timeout, and another process (the CLI, with the record's own refresh
    config) that asks meanwhile waits for the lock instead of sending the same refresh token,
    then gets the late answer, which is committed."""
    log_in(mock, store, "k", expires_in=0)
    inner = mock_refresher(mock.token_url)

    def slow(credential: oauth_lock.Credential) -> Dict[str, Any]:
        time.sleep(1.5)
        return dict(inner(credential))  # type: ignore[arg-type]

    started = time.monotonic()
    with pytest.raises(oauth_lock.Transient) as info:
        store.source("k", slow, refresh_timeout=0.4).access_token()
    assert time.monotonic() - started < 1.3
    assert "did not answer within 400 ms" in str(info.value)
    assert generation(store, "k") == 1
    other = subprocess.run(
        [cli(), "--dir", str(store_dir), "token", "k"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert other.returncode == 0, other.stderr
    late = other.stdout.strip()
    stats = mock.stats()
    assert (stats["refreshes"], stats["replays"], stats["revoked_families"]) == (1, 0, 0), stats
    assert mock.resource(late) == 200
    assert generation(store, "k") == 2
    assert store.source("k").access_token().value == late


def test_a_client_error_leaves_the_credential_usable(
    start_mock: Any, store: oauth_lock.Store
) -> None:
    """A process with the wrong client id gets ``Terminal`` ``invalid_client``; the record stays
    ``ok`` with the error in ``last_error``, and a correctly configured process refreshes the
    same refresh token after the backoff, with no login."""
    mock: Mock = start_mock()
    log_in(mock, store, "k", expires_in=0)
    with pytest.raises(oauth_lock.Terminal) as info:
        store.source("k", mock.oauth2(client_id="someone-else")).access_token()
    assert info.value.oauth_error == "invalid_client"
    status = store.status("k")
    assert status.state == "ok" and status.has_refresh_token
    assert status.last_error is not None and status.last_error.code == "invalid_client"
    time.sleep(1.1)
    token = store.source("k").access_token()
    assert mock.resource(token) == 200
    stats = mock.stats()
    assert (stats["refreshes"], stats["replays"]) == (1, 0), stats
    assert store.status("k").last_error is None


def test_an_outage_is_waited_out_by_every_caller(mock: Mock, store: oauth_lock.Store) -> None:
    """During a provider outage, callers get ``Transient`` without sending the refresh token
    again until the backoff (here the provider's ``Retry-After``) has passed."""
    log_in(mock, store, "k", expires_in=0)
    status, _ = post_json(mock.url + "/admin/outage", {"ms": 1000, "retry_after_s": 2})
    assert status == 200
    source = store.source("k")
    for _ in range(50):
        with pytest.raises(oauth_lock.Transient) as info:
            source.access_token()
        assert info.value.retry_after is not None
        assert timedelta(0) < info.value.retry_after <= timedelta(seconds=2)
    assert mock.stats()["outage_failures"] == 1
    time.sleep(2.1)
    assert mock.resource(source.access_token()) == 200
    stats = mock.stats()
    assert (stats["outage_failures"], stats["refreshes"], stats["replays"]) == (1, 1, 0), stats


def test_a_callback_may_ask_every_process_to_wait(store: oauth_lock.Store) -> None:
    """``RefreshError("temporarily_unavailable", retry_after=…)`` sets the shared backoff."""
    store.save("k", access_token="old", refresh_token="rt", expires_in=0)
    calls: List[int] = []

    def refresher(credential: oauth_lock.Credential) -> Dict[str, Any]:
        calls.append(credential.generation)
        raise oauth_lock.RefreshError("temporarily_unavailable", "busy", retry_after=30)

    for _ in range(3):
        with pytest.raises(oauth_lock.Transient) as info:
            store.source("k", refresher).access_token()
        assert info.value.retry_after is not None
        assert timedelta(seconds=25) < info.value.retry_after <= timedelta(seconds=30)
    assert len(calls) == 1
