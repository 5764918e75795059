"""The exceptions of oauth-lock: one class per error code of DESIGN.md §5, and RefreshError
for callback refreshers to classify their failures."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import ClassVar, Dict, Optional, Type

__all__ = [
    "Error",
    "NeedsLogin",
    "InvalidGrant",
    "Terminal",
    "Transient",
    "Busy",
    "Downgrade",
    "Corrupt",
    "UnsupportedFormat",
    "Io",
    "InvalidArgument",
    "Insecure",
    "RefreshError",
]


class Error(Exception):
    """An oauth-lock error. ``code`` names its kind (the same names in every language);
    ``key`` and ``path`` name the credential and its file where known; ``oauth_error`` is the
    provider's OAuth ``error`` string for ``InvalidGrant`` and ``Terminal``.

    >>> import oauth_lock
    >>> try:
    ...     oauth_lock.Store("/tmp/oauth-lock-doctest").source("nobody").access_token()
    ... except oauth_lock.NeedsLogin as e:
    ...     print(e.code, e.key)
    NeedsLogin nobody
    """

    code: ClassVar[str] = "Error"
    #: The stable number of the code (1..=11 in DESIGN.md §5 order; the CLI exits with 10 + it).
    code_number: ClassVar[int] = 0
    #: Whether trying again later may succeed.
    retryable: ClassVar[bool] = False

    key: Optional[str]
    path: Optional[str]
    oauth_error: Optional[str]
    #: For ``Transient``: how long until any process refreshes again (the shared backoff, or
    #: the provider's ``Retry-After``), when known.
    retry_after: Optional[timedelta]

    def __init__(
        self,
        message: str,
        *,
        key: Optional[str] = None,
        path: Optional[str] = None,
        oauth_error: Optional[str] = None,
        retry_after: Optional[timedelta] = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.path = path
        self.oauth_error = oauth_error
        self.retry_after = retry_after


class NeedsLogin(Error):
    """No record, no refresh token, or the record is marked dead: log in again."""

    code = "NeedsLogin"
    code_number = 1


class InvalidGrant(Error):
    """The provider rejected the refresh token and no other writer had rotated it."""

    code = "InvalidGrant"
    code_number = 2


class Terminal(Error):
    """Another terminal OAuth error (``invalid_client``, ``invalid_scope``, ...); see
    ``oauth_error``."""

    code = "Terminal"
    code_number = 3


class Transient(Error):
    """Network error, timeout, HTTP 5xx or 429, or an answer that is not an OAuth response."""

    code = "Transient"
    code_number = 4
    retryable = True


class Busy(Error):
    """The credential's lock was not obtained in time."""

    code = "Busy"
    code_number = 5
    retryable = True


class Downgrade(Error):
    """``save`` refused to replace a refreshable credential with one that is not (pass
    ``allow_downgrade=True`` to do it anyway)."""

    code = "Downgrade"
    code_number = 6


class Corrupt(Error):
    """The record does not parse; the file is left untouched."""

    code = "Corrupt"
    code_number = 7


class UnsupportedFormat(Error):
    """The record is of a newer format; it is never rewritten."""

    code = "UnsupportedFormat"
    code_number = 8


class Io(Error, OSError):
    """A file-system error (the path and the OS error are in the message)."""

    code = "Io"
    code_number = 9

    def __init__(
        self,
        message: str,
        *,
        key: Optional[str] = None,
        path: Optional[str] = None,
        oauth_error: Optional[str] = None,
        retry_after: Optional[timedelta] = None,
    ) -> None:
        Error.__init__(
            self, message, key=key, path=path, oauth_error=oauth_error, retry_after=retry_after
        )
        self.filename = path

    def __str__(self) -> str:
        # OSError's own str would show "[Errno None] None: path"; the message says more.
        return str(self.args[0])


class InvalidArgument(Error, ValueError):
    """A bad key, config or credential (the message says which field and why)."""

    code = "InvalidArgument"
    code_number = 10


class Insecure(Error):
    """A plain-``http`` token URL other than loopback."""

    code = "Insecure"
    code_number = 11


_BY_CODE: Dict[str, Type[Error]] = {
    cls.code: cls
    for cls in (
        NeedsLogin,
        InvalidGrant,
        Terminal,
        Transient,
        Busy,
        Downgrade,
        Corrupt,
        UnsupportedFormat,
        Io,
        InvalidArgument,
        Insecure,
    )
}


def _make_error(error_json: str) -> Error:
    """Builds the exception for the core's ``interop::error_json``."""
    e = json.loads(error_json)
    cls = _BY_CODE.get(e["code"], Error)
    ms = e.get("retry_after_ms")
    return cls(
        e["message"],
        key=e["key"],
        path=e["path"],
        oauth_error=e["oauth_error"],
        retry_after=None if ms is None else timedelta(milliseconds=ms),
    )


class RefreshError(Exception):
    """Raised by a callback refresher to say how its refresh failed.

    ``code`` is ``"invalid_grant"`` (the refresh token is dead: the credential is marked as
    needing a login), ``"transient"`` (try again later), or any OAuth ``error`` string
    (``"invalid_client"``, ``"temporarily_unavailable"``, ...), classified like a provider's
    answer. A transient failure may say ``retry_after`` (seconds, e.g. the provider's
    ``Retry-After``): no process refreshes the credential again before it has passed.

    >>> raise RefreshError("invalid_grant", "the provider said the grant was revoked")
    Traceback (most recent call last):
    ...
    oauth_lock._errors.RefreshError: invalid_grant: the provider said the grant was revoked
    """

    def __init__(
        self, code: str, description: Optional[str] = None, *, retry_after: Optional[float] = None
    ) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.retry_after = retry_after
