"""Mirrors (DESIGN.md §6.1, issue 13): the programs that keep their own credential file, run
as stand-ins beside oauth-lock processes against the strict mock provider.

The stand-ins (tests/standins/) behave as Claude Code and Codex do with their files: Claude
Code takes its proper-lockfile locks (the real npm package, its options), re-reads under them,
refreshes with a JSON body, writes temp + rename and writes the logged-out stub on
invalid_grant; Codex reads the expiry from the access token's JWT, re-reads its file before
refreshing, has no cross-process lock and writes its file in place.

Scenarios (each asserts counts at the provider, GET /stats, and in the stand-ins' reports):

a. Claude Code's file is a symlink into a dotfiles directory; `oauth-lock import claude-code`;
   4 Claude Code stand-ins and oauth-lock processes in Python, Node and the CLI on that
   credential, no keep-alive: 0 replays, 0 revoked families, 0 invalid_grants, nobody logged
   out, the file always parses and never holds a stub, and it ends holding the record's tokens.
b. The same with `oauth-lock keepalive`: the stand-ins never refresh themselves, every refresh
   at the provider is a rotation committed to the record, the symlink stays a link.
c. Scenario a with oauth-lock's interop switched off (OAUTH_LOCK_TEST_NO_FOREIGN_LOCKS=1): the
   provider sees replays or a stand-in is logged out. This shows the test can fail.
d. Codex: 3 Codex stand-ins on one auth.json (JWT access tokens) with the keep-alive: 0
   replays, nobody logged out, the file ends holding the newest tokens with `last_refresh`
   rewritten (RFC 3339) and `auth_mode` and unknown fields kept.
e. oauth-lock SIGKILLed while holding Claude Code's lock: the leftover is never touched again,
   blocks Claude Code until Claude Code's own staleness rule (60 s) clears it, and the file
   parses throughout.
f. `oauth-lock import` of an API-key-only, stubbed, malformed or missing file: exit 20
   (InvalidArgument) naming the path, no record, the file unchanged.
g. A logged-out stub written over Claude Code's file (as a failing session does) is never
   adopted by the oauth-lock processes and the keep-alive repairs the file from the record.

The margins are scaled with the tokens' lifetime (LIFETIME_S, 4 s here, ~8 h in reality). In
reality Claude Code refreshes 5 min before expiry and oauth-lock too (its margin is 5 min,
capped at half the lifetime), while the keep-alive refreshes 30 min ahead. Scaled down, the
oauth-lock processes refresh at half the lifetime, so in a and c the stand-ins do too
(CONTENDED_MARGIN_MS: both sides refresh at the same moment, the contention of reality); in b
and d the keep-alive refreshes at half the lifetime (its `--ahead` is capped there) and the
stand-ins at a tenth (CALM_MARGIN_MS), keeping reality's order: keep-alive first.

Run by scripts/test-mirrors, which builds everything first: OAUTH_LOCK_CLI (the CLI), the
Python package in the venv that runs this file, the Node addon, the stand-ins' npm packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STANDINS = ROOT / "tests" / "standins"

CLAUDE_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"

#: The tokens' lifetime at the mock provider.
LIFETIME_S = 4.0
#: The stand-ins' margin where they contend with the oauth-lock processes (a, c, e): the
#: oauth-lock processes' own margin, half the lifetime.
CONTENDED_MARGIN_MS = int(LIFETIME_S * 1000 / 2)
#: The stand-ins' margin beside the keep-alive (b, d): well after the keep-alive's refresh.
CALM_MARGIN_MS = int(LIFETIME_S * 1000 / 10)
#: The keep-alive's --ahead: about 60 % of the lifetime (the keep-alive caps it at half).
KEEPALIVE_AHEAD = f"{int(LIFETIME_S * 600)}ms"
#: Claude Code's lock retries, 1-2 s each, scaled by this.
RETRY_SCALE = "0.1"
#: How long the load of scenarios a, b and d lasts.
RUN_S = float(os.environ.get("MIRRORS_SECONDS", "25"))
#: Scenario c: attempts, and how long each lasts.
BROKEN_ATTEMPTS = 3
BROKEN_RUN_S = 10.0


# ---- plumbing ---------------------------------------------------------------------------------


def cli() -> str:
    value = os.environ.get("OAUTH_LOCK_CLI")
    target = Path(os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    path = Path(value) if value else target / "debug" / "oauth-lock"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/test-mirrors, which builds it")
    return str(path)


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not on PATH (Node 20 is required)")
    if not (STANDINS / "node_modules" / "proper-lockfile").is_dir():
        pytest.fail("tests/standins/node_modules is missing: run scripts/test-mirrors (npm ci)")
    return path


def fp(token: Optional[str]) -> Optional[str]:
    """oauth-lock's fingerprint of a token: the first 8 hex of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:8] if token else None


def http(method: str, url: str) -> Any:
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@dataclass
class Mock:
    proc: "subprocess.Popen[str]"
    url: str

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    @property
    def resource_url(self) -> str:
        return self.url + "/resource"

    def stats(self) -> Dict[str, int]:
        stats: Dict[str, int] = http("GET", self.url + "/stats")
        return stats

    def login(self) -> Dict[str, Any]:
        response: Dict[str, Any] = http("POST", self.url + "/login")
        return response


@contextmanager
def mock_server(*args: str) -> Iterator[Mock]:
    """`oauth-lock mock-server --port 0 ARGS…`; its URL from the one line it prints."""
    proc = subprocess.Popen(
        [cli(), "mock-server", "--port", "0", "--grace", "0s", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield Mock(proc, line[len("listening on ") :])
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def child_env(home: Path, **extra: str) -> Dict[str, str]:
    """The environment of every child: HOME in the test's directory (nothing reaches the real
    ~/.claude or ~/.codex), no CLAUDE_CONFIG_DIR/CODEX_HOME/OAUTH_LOCK_DIR of the caller's."""
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "OAUTH_LOCK_DIR")}
    env.pop("OAUTH_LOCK_TEST_NO_FOREIGN_LOCKS", None)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_cli(store: Path, *args: str, env: Dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [cli(), "--dir", str(store), *args], capture_output=True, text=True, timeout=90, env=env
    )


def oauth_lock(store: Path, *args: str, env: Dict[str, str]) -> str:
    done = run_cli(store, *args, env=env)
    if done.returncode != 0:
        raise AssertionError(f"oauth-lock {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def status(store: Path, key: str, env: Dict[str, str]) -> Dict[str, Any]:
    out = json.loads(oauth_lock(store, "status", key, "--json", env=env))
    assert isinstance(out, dict) and out["key"] == key, out
    return out


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2))
    path.chmod(0o600)


def claude_credentials(login: Dict[str, Any], expires_at_ms: Optional[int] = None) -> Dict[str, Any]:
    """A Claude Code credentials file holding `login`, with the fields Claude Code writes and
    some that oauth-lock does not own (`mcpOAuth`, an unknown top-level and inner field)."""
    now_ms = int(time.time() * 1000)
    return {
        "claudeAiOauth": {
            "accessToken": login["access_token"],
            "refreshToken": login["refresh_token"],
            "expiresAt": expires_at_ms if expires_at_ms is not None else now_ms + int(login["expires_in"] * 1000),
            "refreshTokenExpiresAt": now_ms + 30 * 86_400_000,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max",
            "rateLimitTier": "default_claude_max_20x",
            "clientId": CLAUDE_CLIENT_ID,
            "futureField": {"kept": True},
        },
        "mcpOAuth": {"github|4f2a": {"serverName": "github", "accessToken": "mcp-not-ours", "expiresAt": 0}},
        "someUnknownTopLevel": [1, 2, 3],
    }


# ---- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    argv: List[str]
    env: Dict[str, str]
    proc: Optional["subprocess.Popen[bytes]"] = None
    out: Optional[Path] = None
    err: Optional[Path] = None
    report: Optional[Dict[str, Any]] = None
    returncode: Optional[int] = None

    def start(self, logs: Path, index: int) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.out = logs / f"{index:02}-{self.name}.out"
        self.err = logs / f"{index:02}-{self.name}.err"
        self.proc = subprocess.Popen(
            self.argv, stdout=open(self.out, "wb"), stderr=open(self.err, "wb"), env=self.env, cwd=ROOT
        )

    def finish(self, timeout: float) -> None:
        assert self.proc is not None and self.out is not None
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
        lines = [line for line in self.out.read_text(errors="replace").splitlines() if line.startswith("{")]
        if lines:
            self.report = json.loads(lines[-1])

    def stop(self) -> None:
        """SIGTERM (a long-lived process such as the keep-alive), then wait."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.finish(30)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err else ""

    def logs(self) -> str:
        return (self.out.read_text(errors="replace") if self.out else "") + self.stderr()


def claude_standin(env: Dict[str, str], file: Path, mock: Mock, seconds: float, margin_ms: int, name: str = "claude-code") -> Proc:
    argv = [
        node(), str(STANDINS / "claude-code.mjs"),
        "--file", str(file),
        "--token-url", mock.token_url,
        "--resource-url", mock.resource_url,
        "--client-id", CLAUDE_CLIENT_ID,
        "--margin-ms", str(margin_ms),
        "--seconds", f"{seconds:g}",
        "--every-ms", "20",
        "--retry-scale", RETRY_SCALE,
    ]  # fmt: skip
    return Proc(name, argv, env)


def codex_standin(env: Dict[str, str], file: Path, mock: Mock, seconds: float, margin_ms: int) -> Proc:
    argv = [
        sys.executable, str(STANDINS / "codex.py"),
        "--file", str(file),
        "--token-url", mock.token_url,
        "--resource-url", mock.resource_url,
        "--client-id", CODEX_CLIENT_ID,
        "--margin-ms", str(margin_ms),
        "--seconds", f"{seconds:g}",
        "--every-ms", "20",
    ]  # fmt: skip
    return Proc("codex", argv, env)


def oauth_lock_workers(env: Dict[str, str], store: Path, key: str, mock: Mock, seconds: float) -> List[Proc]:
    """oauth-lock processes in three languages: the Python package, the Node package, the CLI."""
    common = [str(store), key, mock.resource_url, f"{seconds:g}"]
    worker = str(HERE / "oauth_lock_worker.py")
    return [
        Proc("oauth-lock-python", [sys.executable, worker, "python", *common, "5"], env),
        Proc("oauth-lock-node", [node(), str(HERE / "oauth_lock_worker.mjs"), *common, "5"], env),
        Proc("oauth-lock-cli", [sys.executable, worker, "cli", *common, "20", cli()], env),
    ]


def keepalive(env: Dict[str, str], store: Path, key: str) -> Proc:
    argv = [cli(), "--dir", str(store), "keepalive", key, "--ahead", KEEPALIVE_AHEAD, "--check-every", "1s"]
    return Proc("keepalive", argv, env)


def run_all(procs: List[Proc], logs: Path, seconds: float) -> None:
    for i, p in enumerate(procs):
        p.start(logs, i)
    deadline = time.monotonic() + seconds + 60
    for p in procs:
        p.finish(max(1.0, deadline - time.monotonic()))


# ---- the file checker -------------------------------------------------------------------------


@dataclass
class FileCheck:
    """What a thread reading the program's file every ~10 ms saw."""

    reads: int = 0
    unparsable: int = 0
    missing: int = 0
    stubs: int = 0
    first_problem: Optional[str] = None
    #: time.monotonic() of the last read that found a stub.
    last_stub_at: Optional[float] = None

    def problem(self, what: str) -> None:
        if self.first_problem is None:
            self.first_problem = what


class Checker:
    def __init__(self, path: Path, shape: str) -> None:
        self.path, self.shape = path, shape
        self.seen = FileCheck()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FileCheck:
        self._thread.start()
        return self.seen

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.seen.reads += 1
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                self.seen.missing += 1
                self.seen.problem("missing")
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                self.seen.unparsable += 1
                self.seen.problem(f"unparsable ({len(raw)} bytes)")
                continue
            if self.shape == "claude":
                o = value.get("claudeAiOauth") or {}
                stub = not o.get("accessToken") or not o.get("refreshToken") or not o.get("expiresAt")
            else:
                t = value.get("tokens") or {}
                stub = not t.get("access_token") or not t.get("refresh_token")
            if stub:
                self.seen.stubs += 1
                self.seen.last_stub_at = time.monotonic()
                self.seen.problem("a logged-out stub")


# ---- reporting --------------------------------------------------------------------------------

PROVIDER_FIELDS = ("token_requests", "refreshes", "replays", "revoked_families", "invalid_grants", "bad_requests",
                   "resource_ok", "resource_unauthorized")  # fmt: skip


def table(title: str, procs: List[Proc], stats: Dict[str, int], notes: List[str]) -> str:
    cols = ("process", "calls", "ok", "401s", "refreshes", "adopted", "lock waits", "logged out", "errors")
    rows: List[Tuple[str, ...]] = [cols]
    for p in procs:
        r = p.report or {}
        rows.append(
            (
                p.name,
                str(r.get("calls", "-")),
                str(r.get("resource_ok", "-")),
                str(r.get("resource_unauthorized", "-")),
                str(r.get("refreshes", "-")),
                str(r.get("adopted", "-")),
                str(r.get("lock_waits", "-")),
                str(r.get("logged_out", "-")),
                json.dumps(r.get("errors", "no report")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) if i in (0, 8) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("provider: " + ", ".join(f"{k} {stats.get(k)}" for k in PROVIDER_FIELDS))
    lines.extend(notes)
    return f"\n\n{title}\n" + "\n".join(lines) + "\n"


class Checks:
    """Every check is made and every failed one reported together."""

    def __init__(self) -> None:
        self.failed: List[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)

    def done(self, title: str) -> None:
        assert not self.failed, f"{title} failed:\n- " + "\n- ".join(self.failed)


def check_reports(check: Checks, procs: List[Proc]) -> None:
    """Every process reported, exited 0, made calls and had no error."""
    for p in procs:
        check(
            p.report is not None and p.returncode == 0,
            f"{p.name} exited {p.returncode}, report {'printed' if p.report else 'missing'}: {p.logs()[-1500:]}",
        )
        if p.report is not None:
            check(p.report["calls"] > 0, f"{p.name} made no call")
            check(not p.report["errors"], f"{p.name} pid {p.report.get('pid')} errors: {p.report['errors']}")


#: What the mock's tokens look like: `at-<family uuid>-<32 hex>`, `rt-…`, and `--jwt` JWTs.
TOKEN_SHAPES = re.compile(r"\b(?:at|rt)-[0-9a-f]{8}-[0-9a-f-]{27}-[0-9a-f]{32}\b|eyJ[A-Za-z0-9_-]{8,}\.eyJ")


def check_no_token_in_logs(check: Checks, procs: List[Proc], tokens: List[str]) -> None:
    """No process printed a token: neither one of `tokens` nor anything shaped like one."""
    for p in procs:
        text = p.logs()
        for t in tokens:
            if t and t in text:
                check(False, f"{p.name} printed a token (fingerprint {fp(t)})")
        leaked = TOKEN_SHAPES.search(text)
        check(leaked is None, f"{p.name} printed something shaped like a token (fingerprint {fp(leaked and leaked.group(0))})")


# ---- scenarios a, b, c: Claude Code beside oauth-lock -----------------------------------------


@dataclass
class ClaudeRun:
    store: Path
    link: Path
    target: Path
    standins: List[Proc]
    workers: List[Proc]
    keeper: Optional[Proc]
    stats: Dict[str, int]
    seen: FileCheck
    gen0: int
    gen1: int
    tokens: List[str] = field(default_factory=list)
    #: `oauth-lock verify` after the run (its refresh is in `stats`).
    verified: Optional["subprocess.CompletedProcess[str]"] = None

    @property
    def procs(self) -> List[Proc]:
        return [*self.standins, *self.workers, *([self.keeper] if self.keeper else [])]

    def standin_sum(self, field_name: str) -> int:
        return sum(int((p.report or {}).get(field_name, 0)) for p in self.standins)


def claude_run(
    tmp: Path,
    *,
    keep_alive: bool,
    no_foreign_locks: bool,
    seconds: float,
    margin_ms: int,
    latency: str,
    verify: bool = False,
) -> ClaudeRun:
    """Claude Code's file as a symlink into dotfiles/, imported; 4 Claude Code stand-ins and
    oauth-lock processes in three languages (and the keep-alive if asked) for `seconds`."""
    home = tmp / "home"
    (home / ".claude").mkdir(parents=True)
    (tmp / "dotfiles").mkdir()
    store = tmp / "store"
    env = child_env(home)
    oauth_env = child_env(home, **({"OAUTH_LOCK_TEST_NO_FOREIGN_LOCKS": "1"} if no_foreign_locks else {}))
    target = tmp / "dotfiles" / "claude-credentials.json"
    link = home / ".claude" / ".credentials.json"
    with mock_server(
        "--lifetime", f"{LIFETIME_S:g}s", "--client-id", CLAUDE_CLIENT_ID, "--body", "json", "--latency", latency
    ) as mock:
        login = mock.login()
        write_json(target, claude_credentials(login))
        link.symlink_to(target)
        oauth_lock(store, "import", "claude-code", "--file", str(link), "--token-url", mock.token_url, env=oauth_env)
        gen0 = status(store, "claude-code", env)["generation"]
        standins = [claude_standin(env, link, mock, seconds, margin_ms) for _ in range(4)]
        workers = oauth_lock_workers(oauth_env, store, "claude-code", mock, seconds)
        keeper = keepalive(oauth_env, store, "claude-code") if keep_alive else None
        with Checker(link, "claude") as seen:
            if keeper:
                keeper.start(tmp / "logs", 99)
            run_all([*standins, *workers], tmp / "logs", seconds)
            if keeper:
                keeper.stop()
        gen1 = status(store, "claude-code", env)["generation"]
        verified = run_cli(store, "verify", "claude-code", env=oauth_env) if verify else None
        stats = mock.stats()
    return ClaudeRun(store, link, target, standins, workers, keeper, stats, seen, gen0, gen1,
                     tokens=[login["access_token"], login["refresh_token"]], verified=verified)  # fmt: skip


def check_claude_file(check: Checks, run: ClaudeRun, env: Dict[str, str]) -> Dict[str, Any]:
    """The file (read through the path as Claude Code reads it) parses, holds the record's
    tokens and every field oauth-lock does not own; the record's status."""
    value = json.loads(run.link.read_text())
    o = value["claudeAiOauth"]
    st = status(run.store, "claude-code", env)
    check(st["mirror_path"] == str(run.link), f"status names mirror {st['mirror_path']!r}, want the path as given")
    check(st["mirror_shape"] == "claude_code", f"mirror shape {st['mirror_shape']!r}")
    check(
        (fp(o["accessToken"]), fp(o["refreshToken"])) == (st["access_token_fingerprint"], st["refresh_token_fingerprint"]),
        f"the file holds tokens {fp(o['accessToken'])}/{fp(o['refreshToken'])}, the record "
        f"{st['access_token_fingerprint']}/{st['refresh_token_fingerprint']}",
    )
    check(o.get("expiresAt") == st["expires_at_ms"], f"expiresAt {o.get('expiresAt')} vs record {st['expires_at_ms']}")
    original = claude_credentials({"access_token": "", "refresh_token": "", "expires_in": 0})
    for name in ("subscriptionType", "rateLimitTier", "clientId", "futureField", "refreshTokenExpiresAt"):
        if name == "refreshTokenExpiresAt":
            check(isinstance(o.get(name), int), f"claudeAiOauth.{name} lost: {o.get(name)!r}")
        else:
            check(o.get(name) == original["claudeAiOauth"][name], f"claudeAiOauth.{name} changed: {o.get(name)!r}")
    check(isinstance(o.get("scopes"), list) and bool(o["scopes"]), f"scopes lost: {o.get('scopes')!r}")
    check(value.get("mcpOAuth") == original["mcpOAuth"], "mcpOAuth was not kept")
    check(value.get("someUnknownTopLevel") == [1, 2, 3], "an unknown top-level field was not kept")
    run.tokens += [o["accessToken"], o["refreshToken"]]
    return st


def check_claude_common(check: Checks, run: ClaudeRun) -> None:
    s = run.stats
    check(s["replays"] == 0, f"{s['replays']} replays at the provider")
    check(s["revoked_families"] == 0, f"{s['revoked_families']} families revoked")
    check(s["invalid_grants"] == 0, f"{s['invalid_grants']} invalid_grant answers")
    check(s["bad_requests"] == 0, f"{s['bad_requests']} bad token requests")
    check(s["token_requests"] == s["refreshes"], f"{s['token_requests']} token requests for {s['refreshes']} refreshes")
    check(s["resource_unauthorized"] == 0, f"{s['resource_unauthorized']} 401s at the resource")
    check_reports(check, run.standins + run.workers)
    for p in run.standins:
        check(p.report is not None and p.report["logged_out"] is False, f"{p.name} pid {(p.report or {}).get('pid')} was logged out")
    seen = run.seen
    check(seen.reads > 500, f"the checker read the file only {seen.reads} times")
    check(
        seen.unparsable == 0 and seen.missing == 0 and seen.stubs == 0,
        f"the file was unparsable {seen.unparsable}, missing {seen.missing}, a stub {seen.stubs} "
        f"times in {seen.reads} reads (first: {seen.first_problem})",
    )
    check_no_token_in_logs(check, run.procs, run.tokens)


@pytest.mark.timeout(RUN_S + 120)
def test_a_claude_code_beside_oauth_lock_in_three_languages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = claude_run(
        tmp_path, keep_alive=False, no_foreign_locks=False, seconds=RUN_S, margin_ms=CONTENDED_MARGIN_MS, latency="100ms",
        verify=True,
    )
    env = child_env(tmp_path / "home")
    check = Checks()
    # The last refresh may be a stand-in's, which the record has not seen yet: one forced
    # refresh under the protocol re-reads the file and writes back, after which the record and
    # the file hold the same tokens, and it shows the chain of refresh tokens is intact.
    verified = run.verified
    check(
        verified is not None and verified.returncode == 0,
        f"verify after the run exited {verified and verified.returncode}: {verified and verified.stderr}",
    )
    st = check_claude_file(check, run, env)
    standin_refreshes = run.standin_sum("refreshes")
    with capsys.disabled():
        print(
            table(
                f"a. Claude Code beside oauth-lock (python, node, cli), no keep-alive: {RUN_S:g} s, "
                f"{LIFETIME_S:g} s tokens, stand-in margin {CONTENDED_MARGIN_MS} ms",
                run.procs,
                run.stats,
                [
                    f"file checks: {run.seen.reads} reads, {run.seen.unparsable} unparsable, {run.seen.stubs} stubs",
                    f"record generation {run.gen0} -> {run.gen1} -> {st['generation']} (after verify); "
                    f"symlink kept: {run.link.is_symlink()}",
                ],
            )
        )
    check_claude_common(check, run)
    # Both sides took part in the rotation at the same margin: oauth-lock refreshed, and every
    # stand-in went through its locked path (it refreshed, or adopted what it found under the
    # locks) and some met a held Claude Code lock. Which side wins each expiry is a race (the
    # stand-ins won 3 to 7 of 15-19 in the runs measured), so the stand-ins' own refreshes are
    # printed, not asserted; scenario c shows the same contention without the interop breaks.
    check(run.stats["refreshes"] > standin_refreshes, "oauth-lock never refreshed: no contention")
    for p in run.standins:
        r = p.report or {}
        check(
            int(r.get("refreshes", 0)) + int(r.get("adopted", 0)) > 0,
            f"{p.name} pid {r.get('pid')} never needed a new token",
        )
    check(run.standin_sum("lock_waits") > 0, "no stand-in ever met a held Claude Code lock")
    # Claude Code's own temp + rename replaces a symlinked file with a regular one (the real
    # behaviour, issue 13); oauth-lock's writes keep the link (scenario b checks them alone).
    check(
        run.link.is_symlink() == (standin_refreshes == 0),
        f"symlink kept {run.link.is_symlink()} after {standin_refreshes} stand-in refreshes",
    )
    check.done("scenario a")


@pytest.mark.timeout(RUN_S + 120)
def test_b_with_the_keepalive_claude_code_never_refreshes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = claude_run(
        tmp_path, keep_alive=True, no_foreign_locks=False, seconds=RUN_S, margin_ms=CALM_MARGIN_MS, latency="100ms"
    )
    env = child_env(tmp_path / "home")
    check = Checks()
    st = check_claude_file(check, run, env)
    # Every write of the record adds one to its generation (core/src/record.rs `stamp`); here
    # the only writes are committed refreshes (nobody else rotates the token to be adopted, no
    # refresh fails), so refreshes at the provider == rotations committed, exactly (the
    # torture run's ROTATION_BOUND reasoning: no process is killed).
    rotations = run.gen1 - run.gen0
    keeper = run.keeper
    assert keeper is not None
    with capsys.disabled():
        print(
            table(
                f"b. the same WITH `oauth-lock keepalive --ahead {KEEPALIVE_AHEAD} --check-every 1s`: "
                f"stand-in margin {CALM_MARGIN_MS} ms",
                run.procs,
                run.stats,
                [
                    f"file checks: {run.seen.reads} reads, {run.seen.unparsable} unparsable, {run.seen.stubs} stubs",
                    f"rotations committed (generation {run.gen0} -> {run.gen1}): {rotations}; "
                    f"symlink kept: {run.link.is_symlink()}; file mode {oct(run.target.stat().st_mode & 0o777)}",
                ],
            )
        )
    check_claude_common(check, run)
    check(keeper.returncode == 0, f"keepalive exited {keeper.returncode} on SIGTERM: {keeper.stderr()[-1500:]}")
    check("refreshed" in keeper.stderr(), "the keep-alive never said it refreshed")
    check(run.standin_sum("refreshes") == 0, f"the stand-ins refreshed {run.standin_sum('refreshes')} times themselves")
    for p in run.standins:
        check(
            p.report is not None and p.report["adopted"] > 0,
            f"{p.name} pid {(p.report or {}).get('pid')} never took a new token from its file",
        )
    check(run.stats["refreshes"] == rotations, f"{run.stats['refreshes']} refreshes for {rotations} rotations")
    check(rotations >= RUN_S / LIFETIME_S, f"only {rotations} rotations in {RUN_S:g} s of {LIFETIME_S:g} s tokens")
    # Nobody but oauth-lock wrote the file: the link is still a link to the same target, which
    # holds the tokens, with its mode kept.
    check(run.link.is_symlink(), "the symlink was replaced by a regular file")
    check(
        run.link.is_symlink() and Path(os.readlink(run.link)) == run.target,
        f"the symlink now points elsewhere: {os.readlink(run.link) if run.link.is_symlink() else '-'}",
    )
    check(run.target.stat().st_mode & 0o777 == 0o600, f"the target's mode is {oct(run.target.stat().st_mode & 0o777)}")
    check(
        json.loads(run.target.read_text())["claudeAiOauth"]["refreshToken"] != run.tokens[1],
        "the target still holds the first refresh token",
    )
    leftovers = [p.name for p in run.link.parent.iterdir() if p.name != run.link.name]
    check(not leftovers, f"files left beside the credentials: {leftovers}")
    check(not Path(os.path.realpath(run.link.parent) + ".lock").exists(), "Claude Code's legacy lock was left behind")
    check(st["generation"] == run.gen1, "the record changed after the run")
    check.done("scenario b")


@pytest.mark.timeout(BROKEN_ATTEMPTS * (BROKEN_RUN_S + 60) + 60)
def test_c_without_the_lock_interop_the_race_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Scenario a with OAUTH_LOCK_TEST_NO_FOREIGN_LOCKS=1 for the oauth-lock processes: they
    no longer take Claude Code's locks, so a stand-in and an oauth-lock process can send the
    same refresh token. A slower provider (300 ms) widens the window; up to BROKEN_ATTEMPTS
    runs, stopping at the first that shows it."""
    shown: List[str] = []
    for attempt in range(1, BROKEN_ATTEMPTS + 1):
        run = claude_run(
            tmp_path / f"attempt-{attempt}",
            keep_alive=False,
            no_foreign_locks=True,
            seconds=BROKEN_RUN_S,
            margin_ms=CONTENDED_MARGIN_MS,
            latency="300ms",
        )
        logged_out = sum(1 for p in run.standins if (p.report or {}).get("logged_out"))
        with capsys.disabled():
            print(
                table(
                    f"c. attempt {attempt}: scenario a with OAUTH_LOCK_TEST_NO_FOREIGN_LOCKS=1 "
                    f"({BROKEN_RUN_S:g} s, provider latency 300 ms)",
                    run.procs,
                    run.stats,
                    [f"stand-ins logged out: {logged_out}; file checks: {run.seen.stubs} stubs in {run.seen.reads} reads"],
                )
            )
        if run.stats["replays"] > 0 or logged_out > 0:
            shown.append(f"attempt {attempt}: {run.stats['replays']} replays, {logged_out} stand-ins logged out")
            break
    assert shown, f"{BROKEN_ATTEMPTS} runs without the lock interop showed no replay and no logout"


# ---- d: Codex with the keep-alive ----------------------------------------------------------------


def fake_jwt(claims: Dict[str, Any]) -> str:
    import base64

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def codex_auth(login: Dict[str, Any]) -> Dict[str, Any]:
    """Codex's auth.json holding `login`, plus fields oauth-lock does not own."""
    return {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": fake_jwt(
                {"email": "user@example.com", "https://api.openai.com/auth": {"chatgpt_plan_type": "pro"}}
            ),
            "access_token": login["access_token"],
            "refresh_token": login["refresh_token"],
            "account_id": login["account"]["uuid"],
        },
        "last_refresh": "2026-01-02T03:04:05.678901Z",
        "auth_mode": "chatgpt",
        "someUnknownTopLevel": {"kept": True},
    }


@pytest.mark.timeout(RUN_S + 120)
def test_d_codex_with_the_keepalive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    store = tmp_path / "store"
    env = child_env(home)
    auth = codex_home / "auth.json"
    started = datetime.now(timezone.utc)
    with mock_server("--lifetime", f"{LIFETIME_S:g}s", "--client-id", CODEX_CLIENT_ID, "--jwt") as mock:
        login = mock.login()
        original = codex_auth(login)
        write_json(auth, original)
        oauth_lock(store, "import", "codex", "--file", str(auth), "--token-url", mock.token_url, env=env)
        gen0 = status(store, "codex", env)["generation"]
        standins = [codex_standin(env, auth, mock, RUN_S, CALM_MARGIN_MS) for _ in range(3)]
        keeper = keepalive(env, store, "codex")
        with Checker(auth, "codex") as seen:
            keeper.start(tmp_path / "logs", 99)
            run_all(standins, tmp_path / "logs", RUN_S)
            keeper.stop()
        stats = mock.stats()
        st = status(store, "codex", env)
    rotations = st["generation"] - gen0
    value = json.loads(auth.read_text())
    tokens = value.get("tokens") or {}
    with capsys.disabled():
        print(
            table(
                f"d. 3 Codex stand-ins with `oauth-lock keepalive`: {RUN_S:g} s, {LIFETIME_S:g} s JWT tokens, "
                f"stand-in margin {CALM_MARGIN_MS} ms",
                [*standins, keeper],
                stats,
                [
                    f"file checks: {seen.reads} reads, {seen.unparsable} unparsable, {seen.stubs} stubs",
                    f"rotations committed (generation {gen0} -> {st['generation']}): {rotations}; "
                    f"last_refresh {value.get('last_refresh')}",
                ],
            )
        )
    check = Checks()
    check(stats["replays"] == 0, f"{stats['replays']} replays at the provider")
    check(stats["revoked_families"] == 0, f"{stats['revoked_families']} families revoked")
    check(stats["invalid_grants"] == 0, f"{stats['invalid_grants']} invalid_grant answers")
    check(stats["bad_requests"] == 0, f"{stats['bad_requests']} bad token requests")
    check(stats["resource_unauthorized"] == 0, f"{stats['resource_unauthorized']} 401s at the resource")
    check(stats["refreshes"] == rotations, f"{stats['refreshes']} refreshes for {rotations} rotations")
    check(rotations >= RUN_S / LIFETIME_S, f"only {rotations} rotations in {RUN_S:g} s of {LIFETIME_S:g} s tokens")
    check_reports(check, standins)
    check(keeper.returncode == 0, f"keepalive exited {keeper.returncode} on SIGTERM: {keeper.stderr()[-1500:]}")
    for p in standins:
        r = p.report or {}
        check(r.get("logged_out") is False, f"codex pid {r.get('pid')} was logged out")
        check(r.get("refreshes") == 0, f"codex pid {r.get('pid')} refreshed {r.get('refreshes')} times itself")
        check(int(r.get("adopted", 0)) > 0, f"codex pid {r.get('pid')} never took a new token from its file")
    check(
        seen.unparsable == 0 and seen.missing == 0 and seen.stubs == 0 and seen.reads > 500,
        f"the file was unparsable {seen.unparsable}, missing {seen.missing}, a stub {seen.stubs} "
        f"times in {seen.reads} reads (first: {seen.first_problem})",
    )
    # The file holds the record's (newest) tokens, last_refresh rewritten, the rest kept.
    check(
        (fp(tokens.get("access_token")), fp(tokens.get("refresh_token")))
        == (st["access_token_fingerprint"], st["refresh_token_fingerprint"]),
        "auth.json does not hold the record's tokens",
    )
    check(tokens.get("refresh_token") != login["refresh_token"], "auth.json still holds the first refresh token")
    check(tokens.get("id_token") == original["tokens"]["id_token"], "tokens.id_token was not kept")
    check(tokens.get("account_id") == original["tokens"]["account_id"], "tokens.account_id was not kept")
    check(value.get("auth_mode") == "chatgpt", f"auth_mode is {value.get('auth_mode')!r}")
    check("OPENAI_API_KEY" in value and value["OPENAI_API_KEY"] is None, "OPENAI_API_KEY was not kept as null")
    check(value.get("someUnknownTopLevel") == {"kept": True}, "an unknown field was not kept")
    try:
        last = datetime.fromisoformat(str(value.get("last_refresh")))
        check(last.tzinfo is not None and last >= started, f"last_refresh {value.get('last_refresh')} is not this run's")
    except ValueError:
        check(False, f"last_refresh {value.get('last_refresh')!r} is not RFC 3339")
    check(auth.stat().st_mode & 0o777 == 0o600, f"auth.json's mode is {oct(auth.stat().st_mode & 0o777)}")
    check_no_token_in_logs(
        check,
        [*standins, keeper],
        [login["access_token"], login["refresh_token"], str(tokens.get("access_token")), str(tokens.get("refresh_token"))],
    )
    check.done("scenario d")


# ---- e: oauth-lock killed while holding Claude Code's lock -------------------------------------


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.005)


@pytest.mark.timeout(120)
def test_e_a_killed_holder_leaves_a_lock_that_claude_codes_staleness_rule_clears(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    claude_dir = home / ".claude"
    claude_dir.mkdir(parents=True)
    store = tmp_path / "store"
    env = child_env(home)
    file = claude_dir / ".credentials.json"
    primary = claude_dir / ".oauth_refresh.lock"
    legacy = Path(os.path.realpath(claude_dir) + ".lock")
    check = Checks()
    # A slow provider: the refresh takes 3 s, so the holder is killed with the request in flight.
    with mock_server(
        "--lifetime", f"{LIFETIME_S:g}s", "--client-id", CLAUDE_CLIENT_ID, "--body", "json", "--latency", "3s"
    ) as mock:
        login = mock.login()
        # The file says the token expired a second ago, so `oauth-lock token` refreshes.
        write_json(file, claude_credentials(login, expires_at_ms=int(time.time() * 1000) - 1000))
        oauth_lock(store, "import", "claude-code", "--file", str(file), "--token-url", mock.token_url, env=env)
        with Checker(file, "claude") as seen:
            holder = subprocess.Popen(
                [cli(), "--dir", str(store), "token", "claude-code"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            )  # fmt: skip
            wait_for(lambda: primary.is_dir() and legacy.is_dir(), 10, "oauth-lock to take both Claude Code locks")
            # Let the token request reach the provider, then kill the holder in the middle of it.
            # The mock (axum) drops a request whose client went away before it answers, so the
            # killed holder spent nothing (checked below): what is left is the lock alone.
            wait_for(lambda: mock.stats()["token_requests"] == 1, 10, "the token request")
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            left = [p for p in (primary, legacy) if p.is_dir()]
            mtimes = {p: p.stat().st_mtime_ns for p in left}
            # Nobody touches the leftovers any more (a holder touches its lock every 5 s).
            time.sleep(6.5)
            still = {p: p.stat().st_mtime_ns for p in left if p.is_dir()}
            check(left == [primary, legacy], f"leftover locks after the kill: {[str(p) for p in left]}")
            check(still == mtimes, "a leftover lock's mtime moved after its holder died")
            stats_after_kill = mock.stats()
            # While the leftover is younger than 60 s, Claude Code cannot take its lock: it gives
            # up after its retries (lock_timeout) and does not refresh.
            blocked = claude_standin(env, file, mock, 2.0, CONTENDED_MARGIN_MS, name="claude-code (blocked)")
            run_all([blocked], tmp_path / "logs", 2.0)
            # Claude Code's own staleness rule: a lock whose mtime is older than 60 s is stale.
            # Age the leftovers by 61 s instead of waiting a minute.
            aged = time.time() - 61
            for p in left:
                os.utime(p, (aged, aged))
            after = claude_standin(env, file, mock, 2.0, CONTENDED_MARGIN_MS, name="claude-code (after aging)")
            run_all([after], tmp_path / "logs", 2.0)
            # oauth-lock itself goes on: its own kernel lock died with the holder; the next
            # call adopts the stand-in's rotation from the file.
            again = run_cli(store, "token", "claude-code", env=env)
        stats = mock.stats()
        st = status(store, "claude-code", env)
    value = json.loads(file.read_text())
    with capsys.disabled():
        print(
            table(
                "e. oauth-lock SIGKILLed holding Claude Code's lock (provider latency 3 s)",
                [blocked, after],
                stats,
                [
                    f"leftovers: {[p.name for p in left]}, mtimes unchanged over 6.5 s: {still == mtimes}; "
                    f"the killed request was answered by the provider: {stats_after_kill['refreshes']}",
                    f"file checks: {seen.reads} reads, {seen.unparsable} unparsable, {seen.stubs} stubs; "
                    f"oauth-lock token afterwards exited {again.returncode}",
                ],
            )
        )
    b, a = blocked.report or {}, after.report or {}
    check(blocked.returncode == 0 and after.returncode == 0, f"stand-ins exited {blocked.returncode}, {after.returncode}")
    check(int(b.get("errors", {}).get("lock_timeout", 0)) > 0, f"the blocked stand-in did not time out on the lock: {b}")
    check(b.get("refreshes") == 0 and b.get("logged_out") is False, f"the blocked stand-in: {b}")
    # Its token expired meanwhile, so its calls fail too: what a Claude Code user sees then.
    check(
        set(b.get("errors", {})) <= {"lock_timeout", "resource_http_401"},
        f"the blocked stand-in's errors: {b.get('errors')}",
    )
    check(a.get("refreshes") == 1 and a.get("errors") == {} and a.get("logged_out") is False, f"after aging: {a}")
    check(not primary.exists() and not legacy.exists(), "the stand-in left Claude Code's locks behind")
    # The killed request: the provider dropped it with its connection, so nothing was spent.
    check(stats_after_kill["refreshes"] == 0, f"the killed holder's request was answered: {stats_after_kill}")
    check(stats["replays"] == 0 and stats["invalid_grants"] == 0, f"provider after the crash: {stats}")
    check(again.returncode == 0, f"oauth-lock token after the crash exited {again.returncode}: {again.stderr}")
    check_no_token_in_logs(check, [blocked, after], [login["access_token"], login["refresh_token"]])
    check(
        (fp(value["claudeAiOauth"]["accessToken"]), fp(value["claudeAiOauth"]["refreshToken"]))
        == (st["access_token_fingerprint"], st["refresh_token_fingerprint"]),
        "the record did not take the stand-in's rotation",
    )
    check(
        seen.unparsable == 0 and seen.missing == 0 and seen.stubs == 0 and seen.reads > 300,
        f"the file was unparsable {seen.unparsable}, missing {seen.missing}, a stub {seen.stubs} "
        f"times in {seen.reads} reads (first: {seen.first_problem})",
    )
    check.done("scenario e")


# ---- g: a blanked stub in the file is never adopted, and is repaired ----------------------------


@pytest.mark.timeout(120)
def test_g_a_logged_out_stub_is_never_adopted_and_the_keepalive_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Claude Code session that failed writes the logged-out stub (empty tokens, expiresAt 0)
    over the file. oauth-lock never takes it for a rotation by another writer (its processes go
    on, no NeedsLogin, nothing sent with an empty token), and the keep-alive's next write-back
    repairs the file from the record."""
    home = tmp_path / "home"
    claude_dir = home / ".claude"
    claude_dir.mkdir(parents=True)
    store = tmp_path / "store"
    env = child_env(home)
    file = claude_dir / ".credentials.json"
    seconds = 10.0
    with mock_server("--lifetime", f"{LIFETIME_S:g}s", "--client-id", CLAUDE_CLIENT_ID, "--body", "json") as mock:
        login = mock.login()
        write_json(file, claude_credentials(login))
        oauth_lock(store, "import", "claude-code", "--file", str(file), "--token-url", mock.token_url, env=env)
        workers = oauth_lock_workers(env, store, "claude-code", mock, seconds)
        keeper = keepalive(env, store, "claude-code")
        with Checker(file, "claude") as seen:
            keeper.start(tmp_path / "logs", 99)
            for i, w in enumerate(workers):
                w.start(tmp_path / "logs", i)
            time.sleep(2.0)
            # What a failing Claude Code writes: the stub, every other field kept, temp + rename.
            stubbed = json.loads(file.read_text())
            stubbed["claudeAiOauth"].update(accessToken="", refreshToken="", expiresAt=0)
            tmp = claude_dir / ".credentials.json.tmp-standin"
            write_json(tmp, stubbed)
            tmp.rename(file)
            stubbed_at = time.monotonic()
            for w in workers:
                w.finish(seconds + 60)
            keeper.stop()
        stats = mock.stats()
        st = status(store, "claude-code", env)
    value = json.loads(file.read_text())
    o = value["claudeAiOauth"]
    # A checker that never saw the stub (it polls every few ms) saw it repaired within a poll.
    repaired_after = (seen.last_stub_at - stubbed_at) if seen.last_stub_at is not None else 0.0
    with capsys.disabled():
        print(
            table(
                "g. a logged-out stub written over Claude Code's file, with the keep-alive",
                [*workers, keeper],
                stats,
                [
                    f"file checks: {seen.reads} reads, {seen.stubs} saw the stub, the last "
                    f"{repaired_after if repaired_after is None else round(repaired_after, 2)} s after it was written",
                    f"record: state {st['state']}, generation {st['generation']}",
                ],
            )
        )
    check = Checks()
    check_reports(check, workers)
    check(keeper.returncode == 0, f"keepalive exited {keeper.returncode}: {keeper.stderr()[-1500:]}")
    check(stats["replays"] == 0 and stats["invalid_grants"] == 0, f"provider: {stats}")
    check(stats["bad_requests"] == 0, f"{stats['bad_requests']} bad token requests (an empty token sent?)")
    check(stats["resource_unauthorized"] == 0, f"{stats['resource_unauthorized']} 401s at the resource")
    check(seen.unparsable == 0 and seen.missing == 0, f"the file was unparsable or missing: {seen.first_problem}")
    # Repaired at the next write-back: the keep-alive refreshes within half a lifetime, and
    # checks at least every second.
    bound = LIFETIME_S / 2 + 1.0 + 1.0
    check(
        repaired_after is not None and repaired_after < bound,
        f"the stub stayed {repaired_after} s (bound {bound:g} s)",
    )
    check(
        (fp(o["accessToken"]), fp(o["refreshToken"])) == (st["access_token_fingerprint"], st["refresh_token_fingerprint"]),
        "the file does not hold the record's tokens at the end",
    )
    check(o.get("expiresAt") == st["expires_at_ms"], "the file's expiresAt is not the record's")
    check(value.get("mcpOAuth") == claude_credentials(login)["mcpOAuth"], "mcpOAuth was not kept through the repair")
    check(st["state"] == "ok", f"the record's state is {st['state']!r}")
    check(stats["refreshes"] >= 2, f"only {stats['refreshes']} refreshes in {seconds:g} s")
    check_no_token_in_logs(check, [*workers, keeper], [login["access_token"], login["refresh_token"]])
    check.done("scenario g")


# ---- f: import errors --------------------------------------------------------------------------

IMPORT_ERRORS: List[Tuple[str, str, Optional[str]]] = [
    ("codex", "api-key-only", json.dumps({"OPENAI_API_KEY": "sk-test-not-a-real-key", "tokens": None, "auth_mode": "apikey"})),
    ("claude-code", "stub", json.dumps({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}, "mcpOAuth": {}})),
    ("claude-code", "malformed", '{"claudeAiOauth": {"accessToken": "at-x", '),
    ("codex", "malformed", "not json at all"),
    ("claude-code", "missing", None),
    ("codex", "missing", None),
]  # fmt: skip


@pytest.mark.parametrize("program,case,content", IMPORT_ERRORS, ids=[f"{p}-{c}" for p, c, _ in IMPORT_ERRORS])
def test_f_import_refuses_files_it_cannot_use(tmp_path: Path, program: str, case: str, content: Optional[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    store = tmp_path / "store"
    env = child_env(home)
    file = tmp_path / "program" / ("auth.json" if program == "codex" else ".credentials.json")
    file.parent.mkdir()
    if content is not None:
        file.write_text(content)
        file.chmod(0o600)
    before = file.read_bytes() if content is not None else None
    done = run_cli(store, "import", program, "--file", str(file), "--token-url", "http://127.0.0.1:9/oauth/token", env=env)
    check = Checks()
    check(done.returncode == 20, f"import of a {case} file exited {done.returncode}, want 20: {done.stderr}")
    check(str(file) in done.stderr, f"the error does not name {file}: {done.stderr!r}")
    check(done.stdout == "", f"import printed {done.stdout!r}")
    check((file.read_bytes() if file.exists() else None) == before, "the program's file changed")
    check(sorted(p.name for p in file.parent.iterdir()) == ([file.name] if content is not None else []), "files were added beside it")
    st = status(store, program, env)
    check(st["exists"] is False, f"a record was created: {st}")
    records = [p.name for p in store.iterdir() if p.suffix == ".json"] if store.exists() else []
    check(records == [], f"the store holds {records}")
    check("sk-test-not-a-real-key" not in done.stderr, "the error printed the API key")
    check.done(f"import {program} ({case})")
