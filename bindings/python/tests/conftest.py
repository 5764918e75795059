"""pytest fixtures: a mock provider per test and a fresh store directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import oauth_lock
from support import Mock

MockFactory = Callable[..., Mock]


@pytest.fixture
def start_mock() -> Iterator[MockFactory]:
    """Starts `oauth-lock mock-server` with the given switches; killed after the test."""
    started: List[Mock] = []

    def start(*args: str) -> Mock:
        m = Mock(*args)
        started.append(m)
        return m

    yield start
    for m in started:
        m.close()


@pytest.fixture
def mock(start_mock: MockFactory) -> Mock:
    """A strict provider issuing one-hour tokens."""
    return start_mock()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_dir: Path) -> oauth_lock.Store:
    return oauth_lock.Store(store_dir)
