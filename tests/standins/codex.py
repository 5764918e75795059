"""A stand-in for Codex CLI's OAuth credential handling, scaled down for tests: a test fixture
that behaves as the real program does with `$CODEX_HOME/auth.json` (DESIGN.md §6.1).

The file, as Codex writes it (codex-rs/login/src/auth/storage.rs `AuthDotJson`)::

    {"OPENAI_API_KEY": null,
     "tokens": {"id_token": JWT, "access_token": JWT, "refresh_token": "...", "account_id": "..."},
     "last_refresh": "<RFC 3339>", "auth_mode": "chatgpt"}

What it copies from Codex (codex-rs/login/src/auth/manager.rs):

- It loads the file once and keeps it in memory (`AuthManager` caches the loaded auth).
- The access token's expiry is its JWT `exp`; a token is stale when it expires within the
  margin (`--margin-ms`; the current Codex refreshes at `exp` itself, margin 0; earlier
  releases and DESIGN.md say 5 minutes) or when `last_refresh` is older than 8 days.
- No cross-process lock: only an in-process one (one thread here). Before refreshing it
  re-reads the file ("guarded reload"); if the file differs from what it holds in memory,
  another process refreshed: it adopts the file and does not refresh.
- Refresh: POST JSON `{"client_id", "grant_type": "refresh_token", "refresh_token"}`. On 200 it
  re-reads the file again, sets the tokens the answer carries (a missing one keeps the old
  value) and `last_refresh`, and writes the file IN PLACE: open with truncate, write, no
  rename, mode 0600 when created. Codex deserializes into a struct and serializes it back, so
  fields it does not know are DROPPED by its write; this stand-in does the same.
- A permanent refresh failure logs the session out (Codex caches it and stops refreshing
  until the file changes). Codex treats a 401 and the codes `refresh_token_expired`,
  `refresh_token_reused` and `refresh_token_invalidated` as permanent; the mock provider
  answers a spent or revoked token with RFC 6749's `invalid_grant`, which this stand-in counts
  as OpenAI's `refresh_token_reused` (real Codex would take a 400 `invalid_grant` as
  transient and retry the dead token on every call: logged out all the same).
- A 401 from the resource: reload the file; if it changed, retry with it; else refresh with
  the (reloaded) refresh token, then retry once.

Never prints a token: fingerprints (first 8 hex of SHA-256) only. At the end prints ONE JSON
line: {"program": "codex", "calls", "refreshes", "adopted", "logged_out", "resource_ok",
"resource_unauthorized", "lock_waits" (always 0: Codex has no cross-process lock), "errors"}.

Usage: codex.py --file PATH --token-url URL --resource-url URL [--client-id ID]
       [--margin-ms N] [--seconds S] [--every-ms N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional

#: Codex CLI's OAuth client id.
CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
#: Codex refreshes a token whose last refresh is older than this, whatever its expiry.
TOKEN_REFRESH_INTERVAL = timedelta(days=8)
#: The error codes Codex takes as a permanent refresh failure (plus any 401), and the mock's
#: RFC 6749 equivalent.
PERMANENT = {"refresh_token_expired", "refresh_token_reused", "refresh_token_invalidated", "invalid_grant"}
#: The top-level fields of Codex's `AuthDotJson`; anything else is dropped when Codex writes.
KNOWN_FIELDS = ("auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh", "agent_identity", "personal_access_token")
TOKEN_FIELDS = ("id_token", "access_token", "refresh_token", "account_id")

Json = Dict[str, Any]


def fingerprint(token: Optional[str]) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8] if token else "(empty)"


def jwt_exp(token: str) -> Optional[float]:
    """The `exp` claim of a JWT, in Unix seconds; None when it is not a JWT or has none."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class Codex:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.path: str = args.file
        self.margin_s: float = args.margin_ms / 1000
        self.report: Json = {
            "program": "codex",
            "pid": os.getpid(),
            "calls": 0,
            "refreshes": 0,
            "adopted": 0,
            "logged_out": False,
            "resource_ok": 0,
            "resource_unauthorized": 0,
            "lock_waits": 0,
            "errors": {},
        }
        self.memory: Optional[Json] = self.load()

    def error(self, code: str, detail: object) -> None:
        errors: Dict[str, int] = self.report["errors"]
        if code not in errors:
            print(f"codex pid {os.getpid()}: {code}: {detail}", file=sys.stderr)
        errors[code] = errors.get(code, 0) + 1

    def load(self) -> Optional[Json]:
        """The file, if it parses and holds ChatGPT tokens (Codex's `load_auth`)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                value = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict):
            return None
        tokens = value.get("tokens")
        if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str):
            return None
        return value

    def save(self, auth: Json) -> None:
        """Codex's `FileAuthStorage::save`: truncate and write in place, known fields only."""
        kept = {k: auth[k] for k in KNOWN_FIELDS if k in auth and (auth[k] is not None or k == "OPENAI_API_KEY")}
        data = json.dumps(kept, indent=2).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()

    def access_token(self) -> Optional[str]:
        tokens = (self.memory or {}).get("tokens") or {}
        token = tokens.get("access_token")
        return token if isinstance(token, str) and token else None

    def is_stale(self) -> bool:
        """`is_stale_for_proactive_refresh`, with the margin."""
        token = self.access_token()
        if token is None:
            return True
        exp = jwt_exp(token)
        if exp is not None:
            return exp - time.time() <= self.margin_s
        last = (self.memory or {}).get("last_refresh")
        if not isinstance(last, str):
            return False
        try:
            at = datetime.fromisoformat(last.replace("Z", "+00:00"))
        except ValueError:
            return False
        return at < datetime.now(timezone.utc) - TOKEN_REFRESH_INTERVAL

    def reload_changed(self) -> bool:
        """The guarded reload: adopts the file when it differs from memory; whether it did."""
        on_disk = self.load()
        if on_disk is None or on_disk == self.memory:
            return False
        self.memory = on_disk
        self.report["adopted"] += 1
        return True

    def refresh_from_authority(self) -> None:
        tokens = (self.memory or {}).get("tokens") or {}
        refresh_token = tokens.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            self.report["logged_out"] = True
            self.error("no_refresh_token", self.path)
            return
        body = json.dumps(
            {"client_id": self.args.client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
        ).encode()
        request = urllib.request.Request(
            self.args.token_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        except OSError as e:
            self.error("transient", e)
            return
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if status == 200 and isinstance(answer, dict):
            # persist_tokens: re-read the file, set what the answer carries, write in place.
            auth = self.load() or dict(self.memory or {})
            new_tokens = dict(auth.get("tokens") or {})
            for field in ("id_token", "access_token", "refresh_token"):
                if isinstance(answer.get(field), str):
                    new_tokens[field] = answer[field]
            auth["tokens"] = {k: new_tokens.get(k) for k in TOKEN_FIELDS}
            auth["last_refresh"] = rfc3339_now()
            self.save(auth)
            self.memory = self.load() or auth
            self.report["refreshes"] += 1
            print(
                f"codex pid {os.getpid()}: refreshed {fingerprint(refresh_token)} -> "
                f"{fingerprint(new_tokens.get('refresh_token'))}",
                file=sys.stderr,
            )
            return
        error = answer.get("error") if isinstance(answer, dict) else None
        code = error.get("code") if isinstance(error, dict) else error
        if status == 401 or code in PERMANENT:
            self.report["logged_out"] = True
            print(f"codex pid {os.getpid()}: {code} for {fingerprint(refresh_token)}: logged out", file=sys.stderr)
        else:
            self.error(f"token_http_{status}", code)

    def refresh_token(self) -> None:
        """`AuthManager::refresh_token`: guarded reload, refresh only if the file is unchanged."""
        if not self.reload_changed():
            self.refresh_from_authority()

    def resource(self, token: str) -> int:
        request = urllib.request.Request(self.args.resource_url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                r.read()
                return int(r.status)
        except urllib.error.HTTPError as e:
            e.read()
            return int(e.code)

    def call(self) -> None:
        self.report["calls"] += 1
        if self.is_stale():
            self.refresh_token()
        token = self.access_token()
        if self.report["logged_out"] or token is None:
            return
        status = self.resource(token)
        if status == 401:
            self.report["resource_unauthorized"] += 1
            # UnauthorizedRecovery: reload; if unchanged, refresh from the authority.
            if not self.reload_changed():
                self.refresh_from_authority()
                if self.report["logged_out"]:
                    return
            token = self.access_token()
            status = self.resource(token) if token else 401
            if status == 401:
                self.report["resource_unauthorized"] += 1
        if status == 200:
            self.report["resource_ok"] += 1
        else:
            self.error(f"resource_http_{status}", "after one retry")

    def run(self) -> Json:
        if self.memory is None:
            self.report["logged_out"] = True
            self.error("not_logged_in", f"no ChatGPT tokens in {self.path}")
        end = time.monotonic() + self.args.seconds
        while not self.report["logged_out"] and time.monotonic() < end:
            try:
                self.call()
            except Exception as e:  # noqa: BLE001 - counted and reported
                self.error(type(e).__name__, e)
            time.sleep(self.args.every_ms / 1000)
        return self.report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--file", required=True)
    p.add_argument("--token-url", required=True)
    p.add_argument("--resource-url", required=True)
    p.add_argument("--client-id", default=CODEX_CLIENT_ID)
    p.add_argument("--margin-ms", type=float, default=300_000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--every-ms", type=float, default=50)
    report = Codex(p.parse_args()).run()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
