"""Types of the native part of oauth_lock (the Rust core through pyo3). Import
``oauth_lock``, not this module."""

import asyncio
import os
from datetime import datetime
from typing import Any, Callable, List, Optional, Tuple, Union, final

__version__: str

CODES: List[Tuple[str, int]]

def _init(
    make_error: Callable[[str], BaseException],
    resolve: Callable[[Any, bool, Any], None],
    on_event: Callable[[str], None],
    info_enabled: Callable[[], bool],
) -> None: ...
def _events_forwarded() -> int: ...
@final
class AccessToken:
    """A valid access token. ``str(token)`` is the token; ``repr`` shows a fingerprint."""

    @property
    def value(self) -> str: ...
    @property
    def token_type(self) -> str: ...
    @property
    def expires_at(self) -> Optional[datetime]: ...
    @property
    def expires_at_ms(self) -> Optional[int]: ...
    @property
    def generation(self) -> int: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def authorization(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Store:
    # `path` is a store location: a directory, or a postgresql:// URL (DESIGN.md §10),
    # passed to the core as it is; None opens $OAUTH_LOCK_STORE, else $OAUTH_LOCK_DIR, else the
    # platform directory.
    def __init__(self, path: Union[str, "os.PathLike[str]", None] = None) -> None: ...
    @property
    def dir(self) -> str: ...
    def path_of(self, key: str) -> str: ...
    def save(self, key: str, credential: str, allow_downgrade: bool) -> str: ...
    def clear(self, key: str) -> bool: ...
    def status(self, key: str) -> str: ...
    def list(self) -> str: ...
    def verify(self, key: str) -> AccessToken: ...
    def import_login(
        self,
        program: str,
        key: Optional[str] = None,
        file: Union[str, "os.PathLike[str]", None] = None,
        token_url: Optional[str] = None,
    ) -> str: ...

class TokenSource:
    def __init__(
        self,
        store: Store,
        key: str,
        *,
        oauth2: Optional[str] = None,
        callback: Optional[Callable[[str], str]] = None,
        refresh_margin: Optional[float] = None,
        lock_timeout: Optional[float] = None,
        refresh_timeout: Optional[float] = None,
        revalidate: Optional[float] = None,
    ) -> None: ...
    @property
    def key(self) -> str: ...
    @property
    def path(self) -> str: ...
    def access_token(self) -> AccessToken:
        """A valid access token: the cached one when fresh, else refreshed (GIL released)."""
    def cached(self) -> Optional[AccessToken]:
        """The cached token if it is fresh; never locks or refreshes."""
    def reject(self, token: Union[str, AccessToken]) -> AccessToken:
        """After HTTP 401 with ``token``: a different valid token (one refresh in all)."""
    def access_token_valid_for(self, seconds: float) -> AccessToken:
        """A token valid for at least ``seconds`` more (refreshes if needed)."""
    def verify(self) -> AccessToken:
        """Forces one refresh (rotates the refresh token)."""
    def _start(
        self,
        op: str,
        token: Union[str, AccessToken, None],
        event_loop: asyncio.AbstractEventLoop,
        fut: "asyncio.Future[AccessToken]",
    ) -> None: ...
