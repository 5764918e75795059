"""``requests`` integration: a ``requests.auth.AuthBase`` that sends the bearer token of a
``TokenSource`` and, on HTTP 401, rejects that token and retries once with the new one (one
refresh across all processes). Needs ``requests``, which ``import oauth_lock`` alone does not.

>>> import requests, oauth_lock, oauth_lock.requests
>>> source = oauth_lock.Store("/tmp/oauth-lock-doctest").source("example")
>>> session = requests.Session()
>>> session.auth = oauth_lock.requests.Auth(source)
"""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import AuthBase

from ._store import TokenSource

__all__ = ["Auth"]

# Marks the retried request so that a second 401 is returned, not retried again.
_RETRIED = "_oauth_lock_retried"


class Auth(AuthBase):
    """Bearer auth from ``source``; on 401 ``reject`` and one retry (with the same body,
    which must therefore be bytes or a string, not a stream)."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.source.access_token()
        r.headers["Authorization"] = token.authorization
        r.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        return r

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, _RETRIED, False):
            return response
        sent = request.headers.get("Authorization", "")
        _, _, old = sent.partition(" ")
        token = self.source.reject(old)
        retry = request.copy()
        setattr(retry, _RETRIED, True)
        retry.headers["Authorization"] = token.authorization
        # Free the connection of the 401 before sending again on the same adapter.
        _ = response.content
        response.close()
        assert response.connection is not None
        again: requests.Response = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again
