"""The mirror demo (scripts/demo-mirror): N Claude Code sessions (the stand-in,
tests/standins/claude-code.mjs) and 2 agent processes share Claude Code's credential against
the strict mock provider with short tokens, twice:

1. WITHOUT oauth-lock: the agents share the file the way programs did before (read it,
   refresh themselves without Claude Code's locks, write it back: `claude-code.mjs --naive`).
2. WITH oauth-lock: `oauth-lock import claude-code` and `oauth-lock keepalive`; the agents take
   their token with `oauth-lock token` (tests/mirrors/oauth_lock_worker.py cli).

Prints a before/after table; exits 1 if the run with oauth-lock had a replay, a logout or an
error. Never prints a token.

Usage: demo_mirror.py OAUTH_LOCK_CLI [--sessions N] [--seconds S] [--lifetime S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLAUDE_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
AGENTS = 2

Json = Dict[str, Any]


def http(method: str, url: str) -> Any:
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.cli: str = args.cli
        self.sessions: int = args.sessions
        self.seconds: float = args.seconds
        self.lifetime: float = args.lifetime
        self.node = shutil.which("node") or "node"

    def mock(self) -> Tuple["subprocess.Popen[str]", str]:
        proc = subprocess.Popen(
            [self.cli, "mock-server", "--port", "0", "--grace", "0s", "--lifetime", f"{self.lifetime:g}s",
             "--client-id", CLAUDE_CLIENT_ID, "--body", "json", "--latency", "100ms"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"the mock provider did not start: {line!r}")
        return proc, line[len("listening on ") :]

    def credentials(self, url: str, path: Path) -> None:
        login = http("POST", url + "/login")
        now_ms = int(time.time() * 1000)
        value = {
            "claudeAiOauth": {
                "accessToken": login["access_token"],
                "refreshToken": login["refresh_token"],
                "expiresAt": now_ms + int(login["expires_in"] * 1000),
                "refreshTokenExpiresAt": now_ms + 30 * 86_400_000,
                "scopes": ["user:inference"],
                "subscriptionType": "max",
                "rateLimitTier": "default_claude_max_20x",
                "clientId": CLAUDE_CLIENT_ID,
            },
            "mcpOAuth": {},
        }
        path.write_text(json.dumps(value, indent=2))
        path.chmod(0o600)

    def session(self, file: Path, url: str, margin_ms: int, naive: bool = False) -> List[str]:
        return [
            self.node, str(HERE / "claude-code.mjs"), "--file", str(file),
            "--token-url", url + "/oauth/token", "--resource-url", url + "/resource",
            "--margin-ms", str(margin_ms), "--seconds", f"{self.seconds:g}", "--every-ms", "50",
            "--retry-scale", "0.1", *(["--naive"] if naive else []),
        ]  # fmt: skip

    def run(self, argvs: List[List[str]], env: Dict[str, str], logs: Path) -> List[Json]:
        procs = []
        for i, argv in enumerate(argvs):
            out = open(logs / f"{i}.out", "wb")
            err = open(logs / f"{i}.err", "wb")
            procs.append(subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT))
        reports: List[Json] = []
        for i, p in enumerate(procs):
            p.wait(timeout=self.seconds + 60)
            lines = [x for x in (logs / f"{i}.out").read_text().splitlines() if x.startswith("{")]
            reports.append(json.loads(lines[-1]) if lines else {"errors": {"no_report": 1}, "calls": 0})
        return reports

    def phase(self, with_oauth_lock: bool) -> Json:
        work = Path(tempfile.mkdtemp(prefix="oauth-lock-demo-mirror-"))
        try:
            home, store, logs = work / "home", work / "store", work / "logs"
            (home / ".claude").mkdir(parents=True)
            logs.mkdir()
            env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CONFIG_DIR", "OAUTH_LOCK_DIR")}
            env["HOME"] = str(home)
            file = home / ".claude" / ".credentials.json"
            mock, url = self.mock()
            keeper: Optional["subprocess.Popen[bytes]"] = None
            try:
                self.credentials(url, file)
                lifetime_ms = int(self.lifetime * 1000)
                if with_oauth_lock:
                    subprocess.run(
                        [self.cli, "--dir", str(store), "import", "claude-code", "--file", str(file),
                         "--token-url", url + "/oauth/token"],
                        env=env, check=True, capture_output=True,
                    )  # fmt: skip
                    keeper = subprocess.Popen(
                        [self.cli, "--dir", str(store), "keepalive", "--ahead", f"{lifetime_ms * 6 // 10}ms",
                         "--check-every", "1s"],
                        env=env, stdout=subprocess.DEVNULL, stderr=open(logs / "keepalive.err", "wb"),
                    )  # fmt: skip
                    # Claude Code's 5 min margin is well after the keep-alive's refresh.
                    sessions = [self.session(file, url, lifetime_ms // 10) for _ in range(self.sessions)]
                    worker = str(ROOT / "tests" / "mirrors" / "oauth_lock_worker.py")
                    agents = [
                        [sys.executable, worker, "cli", str(store), "claude-code", url + "/resource",
                         f"{self.seconds:g}", "50", self.cli]
                        for _ in range(AGENTS)
                    ]  # fmt: skip
                else:
                    # Everybody refreshes at the same margin, as in reality (5 min).
                    sessions = [self.session(file, url, lifetime_ms // 2) for _ in range(self.sessions)]
                    agents = [self.session(file, url, lifetime_ms // 2, naive=True) for _ in range(AGENTS)]
                reports = self.run(sessions + agents, env, logs)
                if keeper is not None:
                    keeper.send_signal(signal.SIGTERM)
                    keeper.wait(timeout=30)
                stats: Json = http("GET", url + "/stats")
            finally:
                if keeper is not None and keeper.poll() is None:
                    keeper.kill()
                mock.terminate()
                mock.wait(timeout=15)
            return {"sessions": reports[: self.sessions], "agents": reports[self.sessions :], "stats": stats}
        finally:
            shutil.rmtree(work, ignore_errors=True)


def failing(report: Json) -> bool:
    return bool(report.get("logged_out")) or bool(report.get("errors"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cli")
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--seconds", type=float, default=12)
    p.add_argument("--lifetime", type=float, default=3)
    demo = Demo(p.parse_args())
    n = demo.sessions
    print(
        f"oauth-lock mirror demo: {n} Claude Code sessions and {AGENTS} agents share Claude Code's credential\n"
        f"  ~/.claude/.credentials.json; the strict mock provider issues {demo.lifetime:g} s tokens, rotates the\n"
        f"  refresh token on every refresh and revokes the whole family when a spent one comes back; "
        f"{demo.seconds:g} s each.\n"
    )
    print("  1. without oauth-lock: the agents read the file, refresh themselves, write it back ...", flush=True)
    before = demo.phase(with_oauth_lock=False)
    print("  2. with oauth-lock: `oauth-lock import claude-code`, `oauth-lock keepalive`, agents on `oauth-lock token` ...\n", flush=True)
    after = demo.phase(with_oauth_lock=True)

    def row(label: str, f: Any) -> Tuple[str, str, str]:
        return (label, str(f(before)), str(f(after)))

    rows = [
        ("", "without oauth-lock", "with oauth-lock"),
        row("Claude Code sessions logged out", lambda r: f"{sum(1 for s in r['sessions'] if s.get('logged_out'))} of {n}"),
        row("agents logged out or failing", lambda r: f"{sum(1 for a in r['agents'] if failing(a))} of {AGENTS}"),
        row("replays at the provider", lambda r: r["stats"]["replays"]),
        row("token families revoked", lambda r: r["stats"]["revoked_families"]),
        row("refreshes at the provider", lambda r: r["stats"]["refreshes"]),
        row("refreshes by Claude Code itself", lambda r: sum(s.get("refreshes", 0) for s in r["sessions"])),
        row("resource calls ok", lambda r: r["stats"]["resource_ok"]),
        row("resource calls 401", lambda r: r["stats"]["resource_unauthorized"]),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"  {r[0].ljust(widths[0])}  {r[1].rjust(widths[1])}  {r[2].rjust(widths[2])}")
    s = after["stats"]
    ok = (
        s["replays"] == 0
        and s["revoked_families"] == 0
        and not any(failing(x) for x in after["sessions"] + after["agents"])
        and all(x.get("calls", 0) > 0 for x in after["sessions"] + after["agents"])
    )
    print()
    if ok:
        print("PASS: with oauth-lock every refresh token was spent once and nobody was logged out.")
    else:
        print("FAIL: the run with oauth-lock had a replay, a logout or an error.")
        print(json.dumps(after, indent=1)[:4000])
    if before["stats"]["replays"] == 0 and not any(x.get("logged_out") for x in before["sessions"]):
        print("(this time the run without oauth-lock got away with it; run it again to see the race)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
