"""`Store.import_login`: Claude Code's and Codex's own files become records whose refreshes
keep the file in step; a file that holds no usable login is refused, naming it, with nothing
written (DESIGN.md §6.1)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

import oauth_lock
from conftest import MockFactory

CLAUDE_CLIENT = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
CODEX_CLIENT = "app_EMoamEEZ73f0CkXaXp7hrann"


def claude_file(path: Path, login: Dict[str, Any], expires_in_ms: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    oauth = {
        "accessToken": login["access_token"],
        "refreshToken": login["refresh_token"],
        "expiresAt": int(time.time() * 1000) + expires_in_ms,
        "scopes": ["user:inference"],
        "subscriptionType": "max",
    }
    path.write_text(json.dumps({"claudeAiOauth": oauth, "mcpOAuth": {"srv": {"x": 1}}}))


def test_a_claude_code_login_is_imported_refreshed_and_written_back(
    start_mock: MockFactory, store: oauth_lock.Store, tmp_path: Path
) -> None:
    mock = start_mock("--client-id", CLAUDE_CLIENT, "--body", "json")
    target = tmp_path / "dotfiles" / "credentials.json"
    claude_file(target, mock.login(), expires_in_ms=0)
    link = tmp_path / "claude" / ".credentials.json"
    link.parent.mkdir()
    link.symlink_to(target)

    status = store.import_login("claude-code", file=link, token_url=mock.token_url)
    assert (status.key, status.mirror_shape, status.mirror_path) == ("claude-code", "claude_code", link)
    assert status.has_refresh_config and status.generation == 1

    token = store.source("claude-code").access_token()  # expired: one refresh
    assert mock.stats()["refreshes"] == 1 and mock.stats()["replays"] == 0
    assert link.is_symlink() and link.resolve() == target
    oauth = json.loads(target.read_text())["claudeAiOauth"]
    assert oauth["accessToken"] == token.value
    assert oauth["subscriptionType"] == "max"
    assert json.loads(target.read_text())["mcpOAuth"] == {"srv": {"x": 1}}
    assert not (link.parent / ".oauth_refresh.lock").exists(), "Claude Code's lock released"


def jwt(exp: float) -> str:
    def enc(v: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none'})}.{enc({'exp': int(exp)})}.sig"


def test_a_codex_login_takes_its_expiry_from_the_jwt(store: oauth_lock.Store, tmp_path: Path) -> None:
    exp = time.time() + 3600
    auth = tmp_path / "codex" / "auth.json"
    auth.parent.mkdir()
    tokens = {"access_token": jwt(exp), "refresh_token": "rt-1", "id_token": "id", "account_id": "a"}
    auth.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": tokens, "auth_mode": "chatgpt"}))
    status = store.import_login("codex", key="codex:work", file=auth)
    assert status.key == "codex:work" and status.mirror_shape == "codex"
    assert status.expires_at is not None and abs(status.expires_at.timestamp() - int(exp)) < 1


@pytest.mark.parametrize(
    "content, says",
    [
        ('{"OPENAI_API_KEY": "sk-test", "tokens": null}', "no OAuth login"),
        ('{"tokens": {"access_token": "", "refresh_token": ""}}', "logged out"),
        ('{"tokens": ', "not JSON"),
        (None, "no such file"),
    ],
)
def test_a_file_without_a_usable_login_is_refused_and_nothing_is_written(
    store: oauth_lock.Store, tmp_path: Path, content: Optional[str], says: str
) -> None:
    auth = tmp_path / "auth.json"
    if content is not None:
        auth.write_text(content)
    with pytest.raises(oauth_lock.InvalidArgument) as err:
        store.import_login("codex", file=auth)
    assert str(auth) in str(err.value) and says in str(err.value)
    assert err.value.key == "codex"
    assert not store.status("codex").exists
    assert [p.name for p in store.path.iterdir() if p.suffix == ".json"] == []
    if content is not None:
        assert auth.read_text() == content, "the program's file is left as it was"
    else:
        assert not auth.exists()


def test_an_unknown_program_is_an_invalid_argument(store: oauth_lock.Store) -> None:
    with pytest.raises(oauth_lock.InvalidArgument):
        store.import_login("vim")  # type: ignore[arg-type]
