"""The HTTP integrations end to end against the mock's /resource: the bearer is sent, and a
401 makes the adapter reject the token and retry once (one refresh)."""

from __future__ import annotations

import asyncio

import httpx
import requests

import oauth_lock
import oauth_lock.httpx
import oauth_lock.requests
from support import Mock, log_in


def test_httpx_sync_client(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    source = store.source("k")
    with httpx.Client(auth=oauth_lock.httpx.Auth(source)) as client:
        assert client.get(mock.url + "/resource").status_code == 200
        mock.revoke_access_tokens()
        r = client.request("GET", mock.url + "/resource", content=b"body")  # resent on retry
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [401] and mock.stats()["refreshes"] == 1
        assert client.get(mock.url + "/resource").status_code == 200
    stats = mock.stats()
    assert stats["refreshes"] == 1 and stats["resource_unauthorized"] == 1


def test_httpx_async_client(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    source = store.source("k")

    async def main() -> None:
        async with httpx.AsyncClient(auth=oauth_lock.httpx.Auth(source)) as client:
            assert (await client.get(mock.url + "/resource")).status_code == 200
            mock.revoke_access_tokens()
            rs = await asyncio.gather(*(client.get(mock.url + "/resource") for _ in range(8)))
            assert [r.status_code for r in rs] == [200] * 8

    asyncio.run(main())
    assert mock.stats()["refreshes"] == 1


def test_requests_session(mock: Mock, store: oauth_lock.Store) -> None:
    log_in(mock, store, "k")
    session = requests.Session()
    session.auth = oauth_lock.requests.Auth(store.source("k"))
    assert session.get(mock.url + "/resource").status_code == 200
    mock.revoke_access_tokens()
    r = session.get(mock.url + "/resource")
    assert r.status_code == 200 and [h.status_code for h in r.history] == [401]
    assert session.get(mock.url + "/resource").status_code == 200
    assert mock.stats()["refreshes"] == 1


def test_a_second_401_is_returned_not_retried_forever(mock: Mock, store: oauth_lock.Store) -> None:
    def refresher(credential: oauth_lock.Credential) -> dict[str, object]:
        return {"access_token": f"unknown-to-the-provider-{credential.generation}", "expires_in": 60}

    store.save("k", access_token="also-unknown", refresh_token="rt", expires_in=3600)
    source = store.source("k", refresher)
    r = requests.get(mock.url + "/resource", auth=oauth_lock.requests.Auth(source))
    assert r.status_code == 401 and len(r.history) == 1
    with httpx.Client(auth=oauth_lock.httpx.Auth(source)) as client:
        assert client.get(mock.url + "/resource").status_code == 401
    assert mock.stats()["resource_unauthorized"] == 4
