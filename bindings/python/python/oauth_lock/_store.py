"""The Python face of the core: ``Store``, ``TokenSource`` with its asyncio twins, the
``OAuth2`` config object and the typed ``Status``. Arguments are turned into the core's JSON
shapes here; every decision about OAuth or files is the core's."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Union

from . import _native
from ._errors import InvalidArgument
from ._native import AccessToken
from ._refresher import Refresher, adapt

if TYPE_CHECKING:
    import asyncio  # imported where used (see _refresher)

__all__ = [
    "OAuth2",
    "Store",
    "TokenSource",
    "Status",
    "LastError",
    "Problem",
    "Seconds",
]

#: A duration: a ``timedelta`` or a number of seconds.
Seconds = Union[timedelta, float, int]


def _seconds(value: Optional[Seconds], name: str = "duration") -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"{name} must be a timedelta or a number of seconds, not {type(value).__name__}"
        ) from None


def _when(ms: Optional[int]) -> Optional[datetime]:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class OAuth2:
    """The built-in OAuth2 refresher (RFC 6749 §6, ``refresh_token`` grant): how to refresh
    a credential. Saved in the record by ``Store.save(refresh=...)``, it lets any process in
    any language refresh the credential knowing only its key. The core validates it (HTTPS
    only, except loopback: ``Insecure``; unknown or malformed fields: ``InvalidArgument``).

    ``body`` is ``"form"`` (RFC 6749's default) or ``"json"`` (as Anthropic expects);
    ``client_auth`` says how a ``client_secret`` is sent: ``"basic"`` (default) or ``"body"``.

    >>> OAuth2("https://auth.example.com/oauth/token", "my-app", body="json")
    OAuth2(token_url='https://auth.example.com/oauth/token', client_id='my-app', body='json')
    """

    __slots__ = (
        "token_url",
        "client_id",
        "client_secret",
        "scope",
        "body",
        "extra_params",
        "headers",
        "timeout",
        "client_auth",
    )

    def __init__(
        self,
        token_url: str,
        client_id: str,
        *,
        client_secret: Optional[str] = None,
        scope: Optional[str] = None,
        body: Literal["form", "json"] = "form",
        extra_params: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Seconds = 30.0,
        client_auth: Optional[Literal["basic", "body"]] = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.body = body
        self.extra_params = extra_params
        self.headers = headers
        self.timeout = timeout
        self.client_auth = client_auth

    def __repr__(self) -> str:
        # The secret and the headers (which may carry credentials) stay out of reprs.
        return (
            f"OAuth2(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"body={self.body!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OAuth2) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> Dict[str, Any]:
        """The record's ``refresh`` config (the core's ``OAuth2Config``)."""
        config: Dict[str, Any] = {
            "token_url": self.token_url,
            "client_id": self.client_id,
            "body": self.body,
        }
        if self.client_secret is not None:
            config["client_secret"] = self.client_secret
        if self.client_auth is not None:
            config["client_auth"] = self.client_auth
        if self.scope is not None:
            config["scope"] = self.scope
        if self.extra_params:
            config["extra_params"] = dict(self.extra_params)
        if self.headers:
            config["headers"] = dict(self.headers)
        timeout = _seconds(self.timeout, "timeout")
        if timeout is not None:
            config["timeout_ms"] = round(timeout * 1000)
        return config


def _refresh_json(refresh: Union[OAuth2, Mapping[str, Any], None]) -> Optional[Dict[str, Any]]:
    if refresh is None:
        return None
    if isinstance(refresh, OAuth2):
        return refresh.to_json()
    return dict(refresh)


@dataclass(frozen=True)
class LastError:
    """Why the last refresh failed (the OAuth ``error`` string in ``code``): a dead refresh token
    (``state`` is then ``needs_login``), or a client or configuration error (``state`` stays
    ``ok``)."""

    code: str
    description: Optional[str]
    at: Optional[datetime]


@dataclass(frozen=True)
class Problem:
    """Why a record could not be read: ``code`` is ``Corrupt``, ``UnsupportedFormat`` or ``Io``."""

    code: str
    message: str


@dataclass(frozen=True)
class Status:
    """What ``Store.status`` and ``Store.list`` report. They never lock and never refresh;
    tokens appear only as fingerprints (first 8 hex of SHA-256)."""

    key: str
    path: Path
    exists: bool
    generation: Optional[int]
    #: ``"ok"`` or ``"needs_login"``.
    state: Optional[str]
    has_access_token: bool
    has_refresh_token: bool
    #: The record carries a ``refresh`` config, so any process can refresh it by key alone.
    has_refresh_config: bool
    mirror_path: Optional[Path]
    #: Which program's file the mirror is: ``"claude_code"`` or ``"codex"``.
    mirror_shape: Optional[str]
    expires_at: Optional[datetime]
    issued_at: Optional[datetime]
    #: When the refresh token was last rotated.
    refresh_token_issued_at: Optional[datetime]
    last_error: Optional[LastError]
    #: No process refreshes before this (a failed refresh's backoff), if set.
    backoff_until: Optional[datetime]
    updated_at: Optional[datetime]
    updated_by: Optional[Mapping[str, Any]]
    access_token_fingerprint: Optional[str]
    refresh_token_fingerprint: Optional[str]
    #: The record or the store directory is readable by group or others.
    insecure_permissions: bool
    #: The store is on a network file system (locks do not hold across machines).
    network_fs: bool
    problem: Optional[Problem]

    @classmethod
    def _from_json(cls, s: Mapping[str, Any]) -> "Status":
        last = s["last_error"]
        problem = s["problem"]
        return cls(
            key=s["key"],
            path=Path(s["path"]),
            exists=s["exists"],
            generation=s["generation"],
            state=s["state"],
            has_access_token=s["has_access_token"],
            has_refresh_token=s["has_refresh_token"],
            has_refresh_config=s["has_refresh_config"],
            mirror_path=None if s["mirror_path"] is None else Path(s["mirror_path"]),
            mirror_shape=s["mirror_shape"],
            expires_at=_when(s["expires_at_ms"]),
            issued_at=_when(s["issued_at_ms"]),
            refresh_token_issued_at=_when(s["refresh_token_issued_at_ms"]),
            last_error=None
            if last is None
            else LastError(last["code"], last.get("description"), _when(last.get("at_ms"))),
            backoff_until=_when(s["backoff_until_ms"]),
            updated_at=_when(s["updated_at_ms"]),
            updated_by=s["updated_by"],
            access_token_fingerprint=s["access_token_fingerprint"],
            refresh_token_fingerprint=s["refresh_token_fingerprint"],
            insecure_permissions=s["insecure_permissions"],
            network_fs=s["network_fs"],
            problem=None if problem is None else Problem(problem["code"], problem["message"]),
        )


def _resolve(fut: "asyncio.Future[AccessToken]", ok: bool, value: Any) -> None:
    """Completes an asyncio twin's future on its loop (called through call_soon_threadsafe)."""
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class TokenSource(_native.TokenSource):
    """Gives a valid access token for one credential; get one from ``Store.source``.

    ``access_token()`` returns the cached token when it is fresh (well under a microsecond,
    the GIL held), else refreshes under the protocol with the GIL released: one refresh per
    expiry across every thread and process. The ``*_async`` twins never block the event loop:
    the core does the work on its own threads and completes an asyncio future.

    >>> import oauth_lock
    >>> source = oauth_lock.Store("/tmp/oauth-lock-doctest").source("nobody")
    >>> source.key
    'nobody'
    """

    __slots__ = ()

    async def _run(self, op: str, token: Union[str, AccessToken, None]) -> AccessToken:
        import asyncio  # already imported: this runs on an asyncio loop

        loop = asyncio.get_running_loop()
        fut: asyncio.Future[AccessToken] = loop.create_future()
        self._start(op, token, loop, fut)
        return await fut

    async def access_token_async(self) -> AccessToken:
        """``access_token()`` for asyncio: the cached token at once, else awaits the core."""
        token = self.cached()
        if token is not None:
            return token
        return await self._run("access_token", None)

    async def reject_async(self, token: Union[str, AccessToken]) -> AccessToken:
        """``reject(token)`` for asyncio: after HTTP 401 with ``token``, a different one."""
        return await self._run("reject", token)

    async def verify_async(self) -> AccessToken:
        """``verify()`` for asyncio: forces one refresh."""
        return await self._run("verify", None)

    def __repr__(self) -> str:
        return f"TokenSource(key={self.key!r}, path={str(self.path)!r})"


class Store:
    """A store of credentials shared by every process that opens it.

    ``path`` is a store location, handed to the core as it is: a directory (created 0700),
    or a ``postgresql://user@host/db`` URL for machines that share a credential (DESIGN.md
    §10; the password from the URL or ``$PGPASSWORD``, never shown). It defaults to
    ``$OAUTH_LOCK_STORE``, else ``$OAUTH_LOCK_DIR``, else the platform state directory
    (``~/.local/state/oauth-lock`` on Linux).

    >>> import oauth_lock, tempfile
    >>> store = oauth_lock.Store(tempfile.mkdtemp())
    >>> store.save("demo", access_token="at", refresh_token="rt", expires_in=3600).generation
    1
    >>> str(store.source("demo").access_token())
    'at'
    >>> store.clear("demo")
    True
    """

    __slots__ = ("_native",)

    def __init__(self, path: Union[str, "os.PathLike[str]", None] = None) -> None:
        self._native = _native.Store(None if path is None else os.fspath(path))

    @property
    def path(self) -> Path:
        """The store's directory."""
        return Path(self._native.dir)

    def path_of(self, key: str) -> Path:
        """The record file of ``key`` (the core names files; bindings never do)."""
        return Path(self._native.path_of(key))

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def source(
        self,
        key: str,
        refresher: Union[OAuth2, Mapping[str, Any], Refresher, None] = None,
        *,
        refresh_margin: Optional[Seconds] = None,
        lock_timeout: Optional[Seconds] = None,
        refresh_timeout: Optional[Seconds] = None,
    ) -> TokenSource:
        """A token source for ``key``.

        ``refresher``: ``None`` to use the record's own ``refresh`` config; an ``OAuth2``
        (or its dict); or a callable / ``async`` callable taking a ``Credential`` and
        returning a dict of token fields (raise ``RefreshError`` to classify a failure).
        Async refreshers run on oauth-lock's own event-loop thread, not the caller's, so
        they must not use objects bound to another loop (create an ``httpx.AsyncClient``
        inside the refresher). A refresher must not ask for the token of the credential it
        is refreshing: that waits until ``refresh_timeout`` and fails ``Transient``.

        ``refresh_margin`` (default 5 min, capped at half the token's lifetime),
        ``lock_timeout`` (35 s, then ``Busy``) and ``refresh_timeout`` (30 s, then
        ``Transient``) are ``timedelta``s or seconds.
        """
        oauth2: Optional[str] = None
        callback = None
        if isinstance(refresher, (OAuth2, Mapping)):
            oauth2 = json.dumps(_refresh_json(refresher))
        elif refresher is not None:
            callback = adapt(refresher)
        return TokenSource(
            self._native,
            key,
            oauth2=oauth2,
            callback=callback,
            refresh_margin=_seconds(refresh_margin, "refresh_margin"),
            lock_timeout=_seconds(lock_timeout, "lock_timeout"),
            refresh_timeout=_seconds(refresh_timeout, "refresh_timeout"),
        )

    def save(
        self,
        key: str,
        *,
        access_token: Optional[str] = None,
        refresh_token: Optional[str] = None,
        expires_in: Optional[Seconds] = None,
        expires_at: Optional[datetime] = None,
        token_type: str = "Bearer",
        scope: Optional[str] = None,
        refresh: Union[OAuth2, Mapping[str, Any], None] = None,
        mirror: Optional[Mapping[str, Any]] = None,
        allow_downgrade: bool = False,
        **extra: Any,
    ) -> Status:
        """Stores a login (it takes the lock). Refuses to replace a credential that has a
        refresh token with one that has none (``Downgrade``) unless ``allow_downgrade``.
        ``refresh`` says how to refresh it (kept from the existing record when ``None``);
        other keyword arguments (``id_token``, provider fields) are kept in the record."""
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidArgument(
                "expires_at must be an aware datetime (e.g. with tzinfo=timezone.utc)",
                key=key,
            )
        credential: Dict[str, Any] = dict(extra)
        credential.update(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=_seconds(expires_in, "expires_in"),
            expires_at_ms=None if expires_at is None else round(expires_at.timestamp() * 1000),
            token_type=token_type,
            scope=scope,
            refresh=_refresh_json(refresh),
            mirror=None if mirror is None else dict(mirror),
        )
        return self._save(key, credential, allow_downgrade)

    def save_token_response(
        self,
        key: str,
        response: Mapping[str, Any],
        *,
        refresh: Union[OAuth2, Mapping[str, Any], None] = None,
        allow_downgrade: bool = False,
    ) -> Status:
        """Stores a raw OAuth token response (``access_token``, ``refresh_token``,
        ``expires_in``, ...; other fields are kept), with how to refresh it."""
        credential = dict(response)
        if refresh is not None:
            credential["refresh"] = _refresh_json(refresh)
        return self._save(key, credential, allow_downgrade)

    def _save(self, key: str, credential: Mapping[str, Any], allow_downgrade: bool) -> Status:
        try:
            text = json.dumps(credential)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"credential: a value is not JSON ({e})", key=key) from None
        return Status._from_json(json.loads(self._native.save(key, text, allow_downgrade)))

    def clear(self, key: str) -> bool:
        """Removes a credential (a logout; the lock file stays). Whether there was one."""
        return self._native.clear(key)

    def status(self, key: str) -> Status:
        """What is known about ``key``, without locking or refreshing."""
        return Status._from_json(json.loads(self._native.status(key)))

    def list(self) -> List[Status]:
        """The status of every credential in the store, by key."""
        return [Status._from_json(s) for s in json.loads(self._native.list())]

    def import_login(
        self,
        program: Literal["claude-code", "codex"],
        *,
        key: Optional[str] = None,
        file: Union[str, "os.PathLike[str]", None] = None,
        token_url: Optional[str] = None,
    ) -> Status:
        """Makes (or updates) a record from Claude Code's or Codex's own credentials file, as
        ``oauth-lock import`` does: its tokens, the program's refresh config and the file as
        the record's mirror, so that every process refreshes it under the lock and the program
        finds the new tokens in its file. ``key`` defaults to the program's name, ``file`` to
        where the program keeps it. A missing, logged-out, API-key-only or malformed file
        raises ``InvalidArgument`` naming it, and nothing is written."""
        return Status._from_json(
            json.loads(self._native.import_login(program, key, file, token_url))
        )

    def verify(self, key: str) -> AccessToken:
        """Forces one refresh of ``key`` with its record's ``refresh`` config (it rotates the
        refresh token), proving that it works."""
        return self._native.verify(key)
