"""oauth-lock: OAuth refresh-token rotation shared safely by every thread and process on a
machine (a locked, re-reading, single-flight refresh over one on-disk store).

>>> import oauth_lock, tempfile
>>> store = oauth_lock.Store(tempfile.mkdtemp())
>>> _ = store.save("example", access_token="at", refresh_token="rt", expires_in=3600,
...                refresh=oauth_lock.OAuth2("https://auth.example.com/oauth/token", "my-app"))
>>> source = store.source("example")
>>> token = source.access_token()      # cached: well under a microsecond
>>> token
AccessToken(fingerprint=..., token_type="Bearer", expires_at_ms=..., generation=1)

After an HTTP 401 with ``token``, ``source.reject(token)`` gives a different token with one
refresh across all processes. ``oauth_lock.httpx.Auth`` and ``oauth_lock.requests.Auth`` do
that for you. Events go to the ``logging`` logger ``oauth_lock``.
"""

from __future__ import annotations

from . import _native
from ._errors import (
    Busy,
    Corrupt,
    Downgrade,
    Error,
    Insecure,
    InvalidArgument,
    InvalidGrant,
    Io,
    NeedsLogin,
    RefreshError,
    Terminal,
    Transient,
    UnsupportedFormat,
    _make_error,
)
from ._events import _info_enabled, _on_event
from ._native import AccessToken
from ._refresher import Credential, Refresher
from ._store import (
    LastError,
    OAuth2,
    Problem,
    Seconds,
    Status,
    Store,
    TokenSource,
    _resolve,
)

__version__: str = _native.__version__

_native._init(_make_error, _resolve, _on_event, _info_enabled)

__all__ = [
    "AccessToken",
    "Busy",
    "Corrupt",
    "Credential",
    "Downgrade",
    "Error",
    "Insecure",
    "InvalidArgument",
    "InvalidGrant",
    "Io",
    "LastError",
    "NeedsLogin",
    "OAuth2",
    "Problem",
    "RefreshError",
    "Refresher",
    "Seconds",
    "Status",
    "Store",
    "Terminal",
    "TokenSource",
    "Transient",
    "UnsupportedFormat",
    "__version__",
]
