"""Real processes on one store against the strict mock provider, counted at its /stats:
zero replays, zero errors, and exactly one refresh per rotation committed to the store
(the provider's refresh count equals the record's generation delta)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest

import oauth_lock
from conftest import MockFactory
from support import (
    Mock,
    cli,
    generation,
    log_in,
    reject_after_401,
    soak_asyncio,
    soak_callback,
    soak_threads,
    token_fingerprint,
    total,
)

SOAK_SECONDS = float(os.environ.get("OAUTH_LOCK_SOAK_SECONDS", "20"))


def assert_one_refresh_per_rotation(mock: Mock, store: oauth_lock.Store, key: str, gen0: int) -> int:
    stats = mock.stats()
    rotations = generation(store, key) - gen0
    assert stats["replays"] == 0, stats
    assert stats["revoked_families"] == 0, stats
    assert stats["invalid_grants"] == 0, stats
    assert stats["refreshes"] == rotations, (stats, rotations)
    return rotations


def check_counts(counts: Counter[str], min_calls: int) -> None:
    errors = {k: v for k, v in counts.items() if k.startswith("error_") or k.startswith("http_")}
    assert errors == {}, counts
    assert counts["calls"] >= min_calls and counts["ok"] == counts["calls"], counts


def test_sixteen_processes_by_four_threads_race_for_twenty_seconds(
    start_mock: MockFactory, store_dir: Path
) -> None:
    mock = start_mock("--lifetime", "1s")
    store = oauth_lock.Store(store_dir)
    gen0 = log_in(mock, store, "k").generation or 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(16) as pool:
        results: List[Dict[str, int]] = pool.starmap(
            soak_threads, [(str(store_dir), "k", mock.url, SOAK_SECONDS, 4)] * 16
        )
    counts = total(results)
    check_counts(counts, min_calls=1000)
    rotations = assert_one_refresh_per_rotation(mock, store, "k", gen0)
    # 1 s tokens are refreshed at half-life: about two rotations a second.
    assert rotations >= SOAK_SECONDS, rotations
    print(f"\n16x4 threads: {counts['calls']} calls, {rotations} refreshes = rotations, 0 replays")


def test_sixteen_asyncio_processes_race_for_twenty_seconds(
    start_mock: MockFactory, store_dir: Path
) -> None:
    mock = start_mock("--lifetime", "1s")
    store = oauth_lock.Store(store_dir)
    gen0 = log_in(mock, store, "k").generation or 0
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(16) as pool:
        results: List[Dict[str, int]] = pool.starmap(
            soak_asyncio, [(str(store_dir), "k", mock.url, SOAK_SECONDS, 4)] * 16
        )
    counts = total(results)
    check_counts(counts, min_calls=500)
    rotations = assert_one_refresh_per_rotation(mock, store, "k", gen0)
    assert rotations >= SOAK_SECONDS, rotations
    print(f"\n16x4 asyncio tasks: {counts['calls']} calls, {rotations} refreshes = rotations")


def test_reject_after_a_401_refreshes_once_across_processes(mock: Mock, store_dir: Path) -> None:
    store = oauth_lock.Store(store_dir)
    log_in(mock, store, "k")
    mock.revoke_access_tokens()
    ctx = multiprocessing.get_context("fork")
    # Each process sees its 401 before any of them rejects: 8 rejects of one token.
    barrier, queue = ctx.Barrier(8), ctx.Queue()
    procs = [
        ctx.Process(target=reject_after_401, args=(str(store_dir), "k", mock.url, barrier, queue))
        for _ in range(8)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert [(a, b) for a, b, _ in results] == [(401, 200)] * 8
    assert len({fp for _, _, fp in results}) == 1
    assert mock.stats()["refreshes"] == 1
    assert generation(store, "k") == 2


def test_a_python_callback_refresher_under_contention(start_mock: MockFactory, store_dir: Path) -> None:
    mock = start_mock("--lifetime", "1s")
    store = oauth_lock.Store(store_dir)
    gen0 = log_in(mock, store, "k").generation or 0
    with multiprocessing.get_context("fork").Pool(8) as pool:
        results = pool.starmap(soak_callback, [(str(store_dir), "k", mock.url, 6.0, 4)] * 8)
    counts = total(results)
    check_counts(counts, min_calls=300)
    rotations = assert_one_refresh_per_rotation(mock, store, "k", gen0)
    assert rotations >= 6, rotations


def test_a_python_process_and_the_cli_share_one_store(start_mock: MockFactory, store_dir: Path) -> None:
    mock = start_mock("--lifetime", "1s")
    store = oauth_lock.Store(store_dir)
    gen0 = log_in(mock, store, "k").generation or 0
    deadline = time.monotonic() + 6
    cli_results: Counter[str] = Counter()
    writers: Counter[str] = Counter()

    def cli_loop() -> None:
        env = {k: v for k, v in os.environ.items() if k != "OAUTH_LOCK_DIR"}
        while time.monotonic() < deadline:
            p = subprocess.run(
                [cli(), "--dir", str(store_dir), "token", "k"], capture_output=True, text=True, env=env
            )
            if p.returncode != 0:
                cli_results[f"exit_{p.returncode}"] += 1
                continue
            cli_results["ok" if mock.resource(p.stdout.strip()) == 200 else "unauthorized"] += 1

    def watch() -> None:
        while time.monotonic() < deadline:
            by = store.status("k").updated_by
            if by is not None:
                writers[str(by["lang"])] += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=cli_loop), threading.Thread(target=watch)]
    for t in threads:
        t.start()
    python = soak_threads(str(store_dir), "k", mock.url, 6.0, 2)
    for t in threads:
        t.join()
    check_counts(Counter(python), min_calls=100)
    assert set(cli_results) == {"ok"} and cli_results["ok"] >= 5, cli_results
    assert_one_refresh_per_rotation(mock, store, "k", gen0)
    assert "python" in writers, writers


def test_another_processs_login_and_logout_reach_a_long_lived_process(store_dir: Path) -> None:
    # access_token() asks the core's cache first, then makes the blocking call: the change
    # seen by the first must not be answered with the old token by the second.
    store = oauth_lock.Store(store_dir)
    store.save("k", access_token="at-1", refresh_token="rt-1", expires_in=3600)
    source = store.source("k")
    assert source.access_token().value == "at-1"
    env = {k: v for k, v in os.environ.items() if k != "OAUTH_LOCK_DIR"}
    login = '{"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600}'
    p = subprocess.run([cli(), "--dir", str(store_dir), "save", "k"], input=login, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    time.sleep(1.3)  # past the default revalidate (1 s)
    assert source.access_token().value == "at-2"
    p = subprocess.run([cli(), "--dir", str(store_dir), "clear", "k"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    time.sleep(1.3)
    with pytest.raises(oauth_lock.NeedsLogin):
        source.access_token()


def test_a_forked_child_keeps_working(start_mock: MockFactory, store_dir: Path) -> None:
    mock = start_mock("--lifetime", "1s")
    store = oauth_lock.Store(store_dir)
    log_in(mock, store, "k")
    source = store.source("k")
    parent = source.access_token()  # the runtime and the slot exist before the fork
    time.sleep(0.6)  # past half-life: the child has to refresh
    pid = os.fork()
    if pid == 0:  # the child: refresh with a rebuilt runtime, prove it, exit
        code = 1
        try:
            token = source.access_token()
            code = 0 if token != parent and mock.resource(token) == 200 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert mock.stats()["refreshes"] == 1
    after = source.access_token()  # the parent adopts the child's refresh
    assert mock.resource(after) == 200 and mock.stats()["refreshes"] == 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_work(start_mock: MockFactory, store_dir: Path, method: str) -> None:
    mock = start_mock("--lifetime", "1s")
    store = oauth_lock.Store(store_dir)
    log_in(mock, store, "k", expires_in=0)
    store.source("k").cached()  # load the native module's state in the parent
    with multiprocessing.get_context(method).Pool(4) as pool:
        results = pool.starmap(token_fingerprint, [(str(store_dir), "k", mock.url)] * 4)
    assert [status for _, status in results] == [200] * 4
    assert len({fp for fp, _ in results}) == 1
    assert mock.stats()["refreshes"] == 1
