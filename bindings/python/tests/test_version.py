"""One version for every artifact (DESIGN.md §11): `oauth_lock.__version__` is the
workspace's `[workspace.package] version` in Cargo.toml, and the installed distribution's
metadata, the native module, the `oauth-lock` CLI and the C ABI (`oauth_lock_version()`,
where a liboauth_lock is reachable) all say the same.

The expected version is `$OAUTH_LOCK_EXPECTED_VERSION` if set (scripts/test-package-python
runs these tests outside the repository, where there is no Cargo.toml), else the one in the
repository's Cargo.toml."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

import oauth_lock
from support import ROOT, cli


def workspace_version() -> str:
    expected = os.environ.get("OAUTH_LOCK_EXPECTED_VERSION")
    if expected:
        return expected
    manifest = ROOT / "Cargo.toml"
    assert manifest.exists(), f"{manifest} is missing: set OAUTH_LOCK_EXPECTED_VERSION"
    # The `version` key of the `[workspace.package]` table (tomllib is Python >= 3.11).
    table = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[|\Z)", manifest.read_text(), re.M | re.S)
    assert table, f"{manifest} has no [workspace.package]"
    version = re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M)
    assert version, f"{manifest} has no [workspace.package] version"
    return version.group(1)


def c_library() -> Optional[Path]:
    """`$OAUTH_LOCK_C_LIB`, else the debug liboauth_lock.so in the workspace target/."""
    explicit = os.environ.get("OAUTH_LOCK_C_LIB")
    if explicit:
        assert Path(explicit).exists(), f"OAUTH_LOCK_C_LIB={explicit} is missing"
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    built = target / "debug" / "liboauth_lock.so"
    return built if built.exists() else None


def test_the_version_is_the_workspace_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.+-]+)?", oauth_lock.__version__)
    assert oauth_lock.__version__ == workspace_version()
    assert oauth_lock._native.__version__ == oauth_lock.__version__
    assert "__version__" in oauth_lock.__all__


def test_the_installed_distribution_has_the_same_version() -> None:
    # pyproject.toml takes its version from Cargo (dynamic = ["version"]).
    assert importlib.metadata.version("oauth-lock") == oauth_lock.__version__


def test_the_cli_has_the_same_version() -> None:
    out = subprocess.run([cli(), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"oauth-lock {oauth_lock.__version__}"


def test_the_c_abi_has_the_same_version() -> None:
    lib = c_library()
    if lib is None:
        pytest.fail("no liboauth_lock.so (scripts/build-python builds it; or set OAUTH_LOCK_C_LIB)")
    # In a child process: the C library carries its own copy of the core.
    code = (
        "import ctypes, sys\n"
        "f = ctypes.CDLL(sys.argv[1]).oauth_lock_version\n"
        "f.restype = ctypes.c_char_p\n"
        "print(f().decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(lib)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == oauth_lock.__version__, (
        f"{lib} says {out.stdout.strip()}: rebuild it (scripts/build-c) or point "
        "OAUTH_LOCK_C_LIB at the current one"
    )
