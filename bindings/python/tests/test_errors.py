"""Every exception class for its cause: the right class and code, the key and path named,
and the record file byte-for-byte unchanged (for InvalidGrant and Terminal the core marks
the record needs_login by design, G5: its tokens stay unchanged)."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any, Dict, Optional, Type

import pytest

import oauth_lock
from oauth_lock import _native
from conftest import MockFactory
from support import Mock, assert_only_backoff_added, lock_path, log_in, post_json, record_bytes


def check(
    err: pytest.ExceptionInfo[oauth_lock.Error],
    cls: Type[oauth_lock.Error],
    store: Optional[oauth_lock.Store],
    key: Optional[str],
    path: Optional[Path] = None,
) -> None:
    assert type(err.value) is cls
    assert err.value.code == cls.__name__ and isinstance(err.value, oauth_lock.Error)
    if key is not None and store is not None:
        assert err.value.key == key
        path = path or store.path_of(key)
        assert err.value.path == str(path)
        assert key in str(err.value) and str(path) in str(err.value)


def test_codes_are_numbered_in_design_order() -> None:
    classes = [
        oauth_lock.NeedsLogin,
        oauth_lock.InvalidGrant,
        oauth_lock.Terminal,
        oauth_lock.Transient,
        oauth_lock.Busy,
        oauth_lock.Downgrade,
        oauth_lock.Corrupt,
        oauth_lock.UnsupportedFormat,
        oauth_lock.Io,
        oauth_lock.InvalidArgument,
        oauth_lock.Insecure,
    ]
    assert [c.code_number for c in classes] == list(range(1, 12))
    assert [(c.code, c.code_number) for c in classes] == _native.CODES, "one class per core code"
    assert issubclass(oauth_lock.Io, OSError) and issubclass(oauth_lock.InvalidArgument, ValueError)
    assert [c for c in classes if c.retryable] == [oauth_lock.Transient, oauth_lock.Busy]


def test_needs_login(store: oauth_lock.Store) -> None:
    with pytest.raises(oauth_lock.NeedsLogin) as err:
        store.source("missing").access_token()
    check(err, oauth_lock.NeedsLogin, store, "missing")
    assert not store.path_of("missing").exists()
    store.save("k", access_token="at", expires_in=0)  # no refresh token, expired
    before = record_bytes(store, "k")
    with pytest.raises(oauth_lock.NeedsLogin) as err:
        store.source("k").access_token()
    check(err, oauth_lock.NeedsLogin, store, "k")
    assert record_bytes(store, "k") == before


def tokens_of(store: oauth_lock.Store, key: str) -> Dict[str, Any]:
    r = json.loads(record_bytes(store, key))
    return {k: r[k] for k in ("access_token", "refresh_token", "expires_at_ms", "refresh")}


def test_invalid_grant(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k", expires_in=0)
    before = tokens_of(store, "k")
    # Someone outside oauth-lock spends the stored refresh token.
    status, _ = post_json(
        mock.token_url,
        {"grant_type": "refresh_token", "refresh_token": before["refresh_token"], "client_id": "oauth-lock-demo"},
    )
    assert status == 200
    with pytest.raises(oauth_lock.InvalidGrant) as err:
        store.source("k").access_token()
    check(err, oauth_lock.InvalidGrant, store, "k")
    assert err.value.oauth_error == "invalid_grant"
    assert tokens_of(store, "k") == before
    marked = store.status("k")
    assert marked.state == "needs_login" and marked.last_error is not None
    assert marked.last_error.code == "invalid_grant"
    dead = record_bytes(store, "k")
    with pytest.raises(oauth_lock.NeedsLogin):  # dead is dead once: no second request
        store.source("k").access_token()
    assert record_bytes(store, "k") == dead
    assert mock.stats()["invalid_grants"] == 1


def test_terminal(mock: Mock, store: oauth_lock.Store) -> None:
    response = mock.login()
    response["expires_in"] = 0
    store.save_token_response("k", response, refresh=mock.oauth2(client_id="someone-else"))
    before = tokens_of(store, "k")
    with pytest.raises(oauth_lock.Terminal) as err:
        store.source("k").access_token()
    check(err, oauth_lock.Terminal, store, "k")
    assert err.value.oauth_error == "invalid_client"
    assert tokens_of(store, "k") == before


def test_transient(start_mock: MockFactory, store: oauth_lock.Store) -> None:
    mock = start_mock("--fail-every", "1")
    log_in(mock, store, "k", expires_in=0)
    before = record_bytes(store, "k")
    with pytest.raises(oauth_lock.Transient) as err:
        store.source("k").access_token()
    check(err, oauth_lock.Transient, store, "k")
    assert_only_backoff_added(before, record_bytes(store, "k"))


def test_transient_from_a_malformed_answer(start_mock: MockFactory, store: oauth_lock.Store) -> None:
    mock = start_mock("--malformed-every", "1")
    log_in(mock, store, "k", expires_in=0)
    before = record_bytes(store, "k")
    with pytest.raises(oauth_lock.Transient) as err:
        store.source("k").access_token()
    check(err, oauth_lock.Transient, store, "k")
    assert_only_backoff_added(before, record_bytes(store, "k"))


def test_busy(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k", expires_in=0)
    before = record_bytes(store, "k")
    with open(lock_path(store, "k"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(oauth_lock.Busy) as err:
            store.source("k", lock_timeout=0.2).access_token()
        check(err, oauth_lock.Busy, store, "k", lock_path(store, "k"))
    assert record_bytes(store, "k") == before
    assert mock.stats()["token_requests"] == 0


def test_downgrade(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    before = record_bytes(store, "k")
    with pytest.raises(oauth_lock.Downgrade) as err:
        store.save("k", access_token="no-refresh-token")
    check(err, oauth_lock.Downgrade, store, "k")
    assert record_bytes(store, "k") == before
    assert store.save("k", access_token="x", allow_downgrade=True).has_refresh_token is False


def test_corrupt(store: oauth_lock.Store) -> None:
    # Written by someone else: this process has never seen the key.
    store.path_of("k").write_bytes(b'{"format": 1, "key": "k", "generation": ')
    with pytest.raises(oauth_lock.Corrupt) as err:
        store.source("k").access_token()
    check(err, oauth_lock.Corrupt, store, "k")
    assert record_bytes(store, "k") == b'{"format": 1, "key": "k", "generation": '
    problem = store.status("k").problem
    assert problem is not None and problem.code == "Corrupt"


def test_unsupported_format(store: oauth_lock.Store) -> None:
    future = json.dumps({"format": 2, "key": "later", "generation": 1, "access_token": "at"}).encode()
    store.path_of("later").write_bytes(future)
    with pytest.raises(oauth_lock.UnsupportedFormat) as err:
        store.source("later").access_token()
    check(err, oauth_lock.UnsupportedFormat, store, "later")
    with pytest.raises(oauth_lock.UnsupportedFormat):
        store.verify("later")
    assert record_bytes(store, "later") == future


def test_io(store: oauth_lock.Store, tmp_path: Path) -> None:
    store.path_of("k").mkdir()  # the record is a directory
    with pytest.raises(oauth_lock.Io) as err:
        store.source("k").access_token()
    check(err, oauth_lock.Io, store, "k")
    assert isinstance(err.value, OSError) and err.value.filename == str(store.path_of("k"))
    assert store.path_of("k").is_dir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OSError):
        oauth_lock.Store(a_file)
    assert a_file.read_text() == "x"


def test_invalid_argument(mock: Mock, store: oauth_lock.Store) -> None:
    for bad in ["", ".hidden", "..", "x" * 65, "tab\tkey"]:
        with pytest.raises(ValueError) as err:
            store.source(bad)
        assert type(err.value) is oauth_lock.InvalidArgument
    log_in(mock, store, "k")
    before = record_bytes(store, "k")
    with pytest.raises(oauth_lock.InvalidArgument) as e2:
        store.save("k", access_token="a", refresh_token="r", refresh=oauth_lock.OAuth2(mock.token_url, ""))
    check(e2, oauth_lock.InvalidArgument, store, "k")
    with pytest.raises(oauth_lock.InvalidArgument):
        store.save("k", access_token="a", refresh_token="r", refresh={"token_url": mock.token_url, "client_id": "c", "nope": 1})
    with pytest.raises(oauth_lock.InvalidArgument):
        store.save("k", access_token="a", refresh_token="r", expires_in="soon")  # type: ignore[arg-type]
    with pytest.raises(oauth_lock.InvalidArgument):
        store.save("k", access_token="a", refresh_token="r", when=object())
    assert record_bytes(store, "k") == before


def test_insecure(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    before = record_bytes(store, "k")
    plain = oauth_lock.OAuth2("http://auth.example.com/oauth/token", "my-app")
    with pytest.raises(oauth_lock.Insecure) as err:
        store.save("k", access_token="a", refresh_token="r", refresh=plain)
    check(err, oauth_lock.Insecure, store, "k")
    with pytest.raises(oauth_lock.Insecure):
        store.source("k", plain)
    assert record_bytes(store, "k") == before
