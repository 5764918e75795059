"""Callback refreshers: a Python (async) callable becomes the JSON-in, JSON-out function the
core calls under the lock. Exceptions become classified failures here, so a refresher that
raises or returns garbage gives a clear ``Transient`` (or ``InvalidGrant``/``Terminal`` for a
``RefreshError``), never a crash."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable as _Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Mapping, Optional, Union

from ._errors import RefreshError

if TYPE_CHECKING:
    # Imported where used: asyncio is a third of `import oauth_lock`'s time (and of its
    # teardown at exit), which a one-shot process with a plain refresher would pay for nothing.
    import asyncio

__all__ = ["Credential", "Refresher"]


@dataclass(frozen=True)
class Credential:
    """What a callback refresher receives: the credential as read under the lock.

    ``repr`` hides the tokens.
    """

    key: str
    generation: int
    access_token: Optional[str] = field(repr=False)
    token_type: Optional[str]
    expires_at_ms: Optional[int]
    refresh_token: Optional[str] = field(repr=False)
    scope: Optional[str]
    id_token: Optional[str] = field(repr=False)
    extra: Mapping[str, Any]

    @property
    def expires_at(self) -> Optional[datetime]:
        """The access token's expiry (aware, UTC), if known."""
        if self.expires_at_ms is None:
            return None
        return datetime.fromtimestamp(self.expires_at_ms / 1000, tz=timezone.utc)


#: A refresher: takes the credential, returns token fields (``access_token`` and optionally
#: ``refresh_token``, ``expires_in`` seconds or ``expires_at_ms``, ``token_type``,
#: ``scope``, ``id_token``, provider extras) or raises ``RefreshError``.
Refresher = Union[
    Callable[[Credential], Mapping[str, Any]],
    Callable[[Credential], Awaitable[Mapping[str, Any]]],
]


class _LoopThread:
    """The event loop async refreshers run on: one daemon thread per process (rebuilt in a
    forked child), because the refresh may be led by a caller that has no loop, and the
    caller's own loop may be blocked in a synchronous call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        import asyncio

        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="oauth-lock-refresher", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop()).result()


_LOOP_THREAD = _LoopThread()


def _failure(code: str, description: Optional[str], retry_after: Optional[float] = None) -> str:
    return json.dumps(
        {"error": code, "error_description": description, "retry_after": retry_after}
    )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def adapt(refresher: Refresher) -> Callable[[str], str]:
    """The function the native side calls on a core thread: credential JSON → answer JSON."""

    def call(credential_json: str) -> str:
        c = json.loads(credential_json)
        credential = Credential(
            key=c["key"],
            generation=c["generation"],
            access_token=c["access_token"],
            token_type=c["token_type"],
            expires_at_ms=c["expires_at_ms"],
            refresh_token=c["refresh_token"],
            scope=c["scope"],
            id_token=c["id_token"],
            extra=c["extra"],
        )
        try:
            answer: Any = refresher(credential)
            if isinstance(answer, _Awaitable):
                answer = _LOOP_THREAD.run(_await(answer))
        except RefreshError as e:
            return _failure(e.code, e.description, e.retry_after)
        except Exception as e:  # noqa: BLE001 - any failure of user code is Transient
            return _failure("transient", f"the refresher raised {type(e).__qualname__}")
        if isinstance(answer, Mapping):
            answer = dict(answer)
        try:
            return json.dumps(answer)
        except (TypeError, ValueError):
            return _failure(
                "transient",
                f"the refresher returned {type(answer).__qualname__}, not a dict of JSON values",
            )

    return call

