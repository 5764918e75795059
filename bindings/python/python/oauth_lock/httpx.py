"""``httpx`` integration: an ``httpx.Auth`` that sends the bearer token of a ``TokenSource``
and, on HTTP 401, rejects that token and retries once with the new one (one refresh across
all processes). Works with ``httpx.Client`` and ``httpx.AsyncClient``; needs ``httpx``
(``pip install httpx``), which ``import oauth_lock`` alone does not.

>>> import httpx, oauth_lock, oauth_lock.httpx
>>> source = oauth_lock.Store("/tmp/oauth-lock-doctest").source("example")
>>> client = httpx.Client(auth=oauth_lock.httpx.Auth(source))
"""

from __future__ import annotations

from typing import AsyncGenerator, Generator

import httpx

from ._store import TokenSource

__all__ = ["Auth"]


class Auth(httpx.Auth):
    """Bearer auth from ``source``; on 401 ``reject`` and one retry."""

    # The body is read first so that the retry after a 401 can send it again.
    requires_request_body = True

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.source.access_token()
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == 401:
            token = self.source.reject(token)
            request.headers["Authorization"] = token.authorization
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.source.access_token_async()
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == 401:
            token = await self.source.reject_async(token)
            request.headers["Authorization"] = token.authorization
            yield request
