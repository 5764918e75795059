"""The README's Python example, extracted from between its `python` markers and run as
written in a fresh interpreter, against a mock provider and a temporary store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import oauth_lock
from support import ROOT, Mock


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    region = text.split("<!-- python:begin -->", 1)[1].split("<!-- python:end -->", 1)[0]
    return re.findall(r"```python\n(.*?)```", region, flags=re.S)


def test_the_readme_example_runs_as_written(mock: Mock, tmp_path: Path) -> None:
    blocks = readme_python_blocks()
    assert len(blocks) == 1
    env = dict(os.environ, PROVIDER=mock.url, OAUTH_LOCK_DIR=str(tmp_path / "store"))
    p = subprocess.run(
        [sys.executable, "-c", blocks[0]], env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("AccessToken(fingerprint=")
    assert lines[1:3] == ["200", "200"]
    assert lines[3] == "1 ['demo']"
    token = oauth_lock.Store(tmp_path / "store").source("demo").access_token()
    assert token.value not in p.stdout + p.stderr
