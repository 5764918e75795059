"""The basic flows of the Python surface against the strict mock provider: login, token,
refresh, reject, status/list/clear/verify, typed options, async twins, events, and
callback refreshers (sync, async, raising, returning garbage, re-entering)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest

import oauth_lock
from support import Mock, generation, log_in, mock_refresher, record_bytes


def test_login_then_token_without_a_refresh(mock: Mock, store: oauth_lock.Store) -> None:
    status = log_in(mock, store, "k")
    assert (status.exists, status.generation, status.state) == (True, 1, "ok")
    assert status.has_refresh_token and status.has_refresh_config
    assert status.updated_by is not None and status.updated_by["lang"] == "python"
    token = store.source("k").access_token()
    assert mock.resource(token) == 200
    assert token.generation == 1 and token.token_type == "Bearer"
    assert mock.stats()["refreshes"] == 0


def test_access_token_is_typed_and_never_shows_the_token(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    token = store.source("k").access_token()
    assert str(token) == token.value
    assert token.authorization == f"Bearer {token.value}"
    assert token.value not in repr(token) and token.fingerprint in repr(token)
    assert len(token.fingerprint) == 8
    assert isinstance(token.expires_at, datetime) and token.expires_at.tzinfo is not None
    assert token.expires_at.utcoffset() == timedelta(0)
    assert token.expires_at_ms == round(token.expires_at.timestamp() * 1000)
    assert token == store.source("k").access_token() and hash(token) == hash(token)


def test_an_expired_token_is_refreshed_once_and_committed(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k", expires_in=0)
    source = store.source("k")
    tokens = {source.access_token().value for _ in range(5)}
    assert len(tokens) == 1
    assert mock.resource(tokens.pop()) == 200
    assert mock.stats()["refreshes"] == 1
    assert generation(store, "k") == 2


def test_reject_refreshes_once_and_returns_a_different_token(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    source = store.source("k")
    old = source.access_token()
    mock.revoke_access_tokens()
    assert mock.resource(old) == 401
    new = source.reject(old)
    assert new != old and mock.resource(new) == 200
    assert source.reject(old.value) == new  # a str works too; nobody refreshes twice
    assert mock.stats()["refreshes"] == 1


def test_status_list_verify_clear(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "a:one")
    log_in(mock, store, "b")
    assert [s.key for s in store.list()] == ["a:one", "b"]
    s = store.status("a:one")
    assert s.path == store.path_of("a:one") and s.path.name == "a%3Aone.json"
    assert isinstance(s.expires_at, datetime) and s.problem is None and s.last_error is None
    before = s.refresh_token_fingerprint
    token = store.verify("a:one")
    assert mock.resource(token) == 200
    after = store.status("a:one")
    assert after.generation == 2 and after.refresh_token_fingerprint != before
    assert store.clear("a:one") is True and store.clear("a:one") is False
    assert not store.status("a:one").exists
    with pytest.raises(oauth_lock.NeedsLogin):
        store.source("a:one").access_token()


def test_save_fields_extra_and_expires_at(store: oauth_lock.Store) -> None:
    at = datetime.now(timezone.utc) + timedelta(hours=2)
    s = store.save(
        "k",
        access_token="at",
        refresh_token="rt",
        expires_at=at,
        scope="read",
        account={"uuid": "6f1c"},
    )
    assert s.expires_at is not None and abs((s.expires_at - at).total_seconds()) < 0.002
    record: Dict[str, Any] = json.loads(record_bytes(store, "k"))
    assert record["scope"] == "read" and record["extra"] == {"account": {"uuid": "6f1c"}}
    with pytest.raises(oauth_lock.InvalidArgument):
        store.save("k", access_token="x", refresh_token="y", expires_at=datetime(2030, 1, 1))
    s = store.save("k", access_token="at2", refresh_token="rt2", expires_in=timedelta(minutes=5))
    assert s.expires_at is not None and s.generation == 2


def test_store_accepts_pathlike_and_defaults_to_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert oauth_lock.Store(tmp_path / "p").path == (tmp_path / "p").resolve()
    monkeypatch.setenv("OAUTH_LOCK_DIR", str(tmp_path / "env"))
    assert oauth_lock.Store().path == (tmp_path / "env").resolve()
    assert (tmp_path / "env").stat().st_mode & 0o777 == 0o700


def test_options_take_timedelta_or_seconds(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k", expires_in=120)
    # A two-minute token is "fresh" with the default margin (capped at half its lifetime)...
    assert store.source("k").access_token().generation == 1
    # ...and due with a margin of 10 minutes (still capped: lifetime/2 = 60 s < 120 s left).
    s = store.source("k", refresh_margin=timedelta(minutes=10), lock_timeout=5, refresh_timeout=5.0)
    assert s.access_token().generation == 1
    with pytest.raises(oauth_lock.InvalidArgument):
        store.source("k", lock_timeout=-1)
    long = store.source("k").access_token_valid_for(3 * 3600)
    assert long.generation == 2  # refreshed: the old one expired sooner


def test_async_twins(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k", expires_in=0)
    source = store.source("k")

    async def main() -> None:
        first = await source.access_token_async()
        assert await source.access_token_async() == first  # cached now
        many = await asyncio.gather(*(source.access_token_async() for _ in range(20)))
        assert {t.value for t in many} == {first.value}
        mock.revoke_access_tokens()
        again = await source.reject_async(first)
        assert again != first and mock.resource(again) == 200
        verified = await source.verify_async()
        assert verified.generation == again.generation + 1
        with pytest.raises(oauth_lock.NeedsLogin):
            await store.source("nobody").access_token_async()

    asyncio.run(main())
    assert mock.stats()["refreshes"] == 3


def test_an_explicit_oauth2_config_or_dict(mock: Mock, store: oauth_lock.Store) -> None:
    store.save("k", access_token="a", refresh_token="nope", expires_in=0)
    with pytest.raises(oauth_lock.InvalidArgument, match="no `refresh` config"):
        store.source("k").access_token()  # no refresh config anywhere: cannot refresh
    log_in(mock, store, "k2", expires_in=0)
    raw = json.loads(record_bytes(store, "k2"))
    assert raw["refresh"] == mock.oauth2().to_json()
    as_dict = {"token_url": mock.token_url, "client_id": "oauth-lock-demo"}
    token = store.source("k2", as_dict).access_token()
    assert mock.resource(token) == 200


def test_events_go_to_the_logging_logger_without_tokens(
    mock: Mock, store: oauth_lock.Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oauth_lock")
    log_in(mock, store, "k", expires_in=0)
    token = store.source("k").access_token()
    with pytest.raises(oauth_lock.Downgrade):
        store.save("k", access_token="plain")
    events = {getattr(r, "oauth_lock_event", None): r for r in caplog.records}
    assert "refreshed" in events and events["refreshed"].levelno == logging.INFO
    assert events["refreshed"].name == "oauth_lock" and "k" in events["refreshed"].getMessage()
    assert events["downgrade_refused"].levelno == logging.WARNING
    assert getattr(events["refreshed"], "oauth_lock_path") == str(store.path_of("k"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token.value not in text
    raw = json.loads(record_bytes(store, "k"))
    assert raw["refresh_token"] not in text


def test_info_events_the_logger_would_drop_never_enter_python(
    mock: Mock, store: oauth_lock.Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The level is read when a call starts: with INFO off, a refresh's INFO events are dropped
    natively (no GIL on the hand-off path); WARNING ones still arrive; INFO on again, they do."""
    from oauth_lock import _native

    caplog.set_level(logging.WARNING, logger="oauth_lock")
    log_in(mock, store, "k", expires_in=0)
    before = _native._events_forwarded()
    store.source("k").access_token()
    assert _native._events_forwarded() == before, "the refresh's INFO events were not sent"
    with pytest.raises(oauth_lock.Downgrade):
        store.save("k", access_token="plain")
    assert _native._events_forwarded() == before + 1, "the WARNING event was"
    assert [getattr(r, "oauth_lock_event", None) for r in caplog.records] == ["downgrade_refused"]

    caplog.set_level(logging.INFO, logger="oauth_lock")
    store.source("k").verify()
    assert _native._events_forwarded() > before + 1
    assert "refreshed" in {getattr(r, "oauth_lock_event", None) for r in caplog.records}


# ---- callback refreshers ---------------------------------------------------------------


def test_a_sync_callback_refresher(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k", expires_in=0)
    seen: List[oauth_lock.Credential] = []
    inner = mock_refresher(mock.token_url)

    def refresher(credential: oauth_lock.Credential) -> Dict[str, Any]:
        seen.append(credential)
        return dict(inner(credential))  # type: ignore[arg-type]

    token = store.source("k", refresher).access_token()
    assert mock.resource(token) == 200
    assert len(seen) == 1 and seen[0].key == "k" and seen[0].generation == 1
    assert seen[0].refresh_token is not None and seen[0].refresh_token not in repr(seen[0])
    assert mock.stats()["refreshes"] == 1


def test_importing_the_module_leaves_asyncio_unloaded() -> None:
    # A one-shot process with a plain refresher pays neither asyncio's import (a third of
    # the module's import time) nor its teardown at exit; the asyncio twins and async
    # refreshers import it where they run (the test below and test_async_twins use them).
    code = "import sys, oauth_lock; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_async_callback_refresher_from_sync_and_async_callers(
    mock: Mock, store: oauth_lock.Store
) -> None:
    log_in(mock, store, "k", expires_in=0)
    loops: List[int] = []

    async def refresher(credential: oauth_lock.Credential) -> Dict[str, Any]:
        loops.append(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.01)
        return {"access_token": f"custom-{credential.generation}", "expires_in": 3600}

    source = store.source("k", refresher)
    assert source.access_token().value == "custom-1"

    async def main() -> str:
        return (await source.reject_async("custom-1")).value

    assert asyncio.run(main()) == "custom-2"
    assert len(loops) == 2 and len(set(loops)) == 1  # oauth-lock's own loop thread


@pytest.mark.parametrize(
    "behaviour, code, says",
    [
        ("raise ValueError", "Transient", "ValueError"),
        ("return None", "Transient", "not a JSON object"),
        ("return object", "Transient", "object"),
        ("return no token", "Transient", "access_token"),
        ("RefreshError invalid_grant", "InvalidGrant", ""),
        ("RefreshError access_denied", "Terminal", ""),
        ("RefreshError transient", "Transient", "try later"),
    ],
)
def test_a_callback_that_fails_gives_a_clear_error(
    store: oauth_lock.Store, behaviour: str, code: str, says: str
) -> None:
    store.save("k", access_token="old", refresh_token="rt", expires_in=0)

    def refresher(credential: oauth_lock.Credential) -> Any:
        if behaviour == "raise ValueError":
            raise ValueError("boom")
        if behaviour == "return None":
            return None
        if behaviour == "return object":
            return object()
        if behaviour == "return no token":
            return {"expires_in": 5}
        raise oauth_lock.RefreshError(behaviour.split()[1], "try later")

    with pytest.raises(oauth_lock.Error) as info:
        store.source("k", refresher).access_token()
    assert info.value.code == code and says in str(info.value)
    assert info.value.key == "k" and info.value.path == str(store.path_of("k"))
    if code == "Terminal":
        assert info.value.oauth_error == "access_denied"


def test_a_refresher_asking_for_its_own_token_times_out_cleanly(store: oauth_lock.Store) -> None:
    store.save("k", access_token="old", refresh_token="rt", expires_in=0)
    inner: List[str] = []

    def refresher(credential: oauth_lock.Credential) -> Dict[str, Any]:
        try:
            source.access_token()  # the same key, from the refresher's own thread
        except oauth_lock.Error as e:
            inner.append(e.code)
        return {"access_token": "never-used", "expires_in": 60}

    source = store.source("k", refresher, refresh_timeout=0.5)
    before = record_bytes(store, "k")
    started = time.monotonic()
    with pytest.raises(oauth_lock.Transient) as info:
        source.access_token()
    assert time.monotonic() - started < 5
    assert "did not answer within 500 ms" in str(info.value)
    assert record_bytes(store, "k") == before
    deadline = time.monotonic() + 5
    while not inner and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inner == ["Transient"]


def test_blocking_calls_release_the_gil(mock: Mock, store: oauth_lock.Store) -> None:
    """A caller waiting for the lock (held by another process's flock) lets other Python
    threads run meanwhile."""
    import fcntl

    from support import lock_path

    log_in(mock, store, "k", expires_in=0)
    fd = open(lock_path(store, "k"), "a")
    fcntl.flock(fd, fcntl.LOCK_EX)
    result: List[oauth_lock.AccessToken] = []
    caller = threading.Thread(target=lambda: result.append(store.source("k").access_token()))
    caller.start()
    time.sleep(0.1)
    spins = 0
    until = time.monotonic() + 0.5
    while time.monotonic() < until:
        spins += 1
    assert caller.is_alive() and not result  # still waiting on the lock
    assert spins > 100_000  # this thread ran freely meanwhile
    fcntl.flock(fd, fcntl.LOCK_UN)
    fd.close()
    caller.join(10)
    assert result and mock.resource(result[0]) == 200


def test_the_event_loop_runs_while_an_async_call_waits(mock: Mock, store: oauth_lock.Store) -> None:
    import fcntl

    from support import lock_path

    log_in(mock, store, "k", expires_in=0)
    fd = open(lock_path(store, "k"), "a")
    fcntl.flock(fd, fcntl.LOCK_EX)

    def release() -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        fd.close()

    threading.Timer(0.5, release).start()

    async def main() -> int:
        ticks = 0
        call = asyncio.ensure_future(store.source("k").access_token_async())
        while not call.done():
            ticks += 1
            await asyncio.sleep(0.01)
        assert mock.resource(call.result()) == 200
        return ticks

    assert asyncio.run(main()) >= 20
