"""What the multi-host test and the fleet benchmarks share: the three hosts (network
namespaces made by tests/fleet_hosts/netns.sh), the PostgreSQL store on the bridge, the strict
mock provider put on the bridge, and running a process on a host with its output kept.

The environment comes from scripts/test-fleet-hosts or scripts/bench-fleet:
FLEET_HOSTS ("ns:ip:ifname …"), FLEET_BRIDGE_IP, FLEET_PG_URL (no password; PGPASSWORD has
it), FLEET_PG_PASSWORD, PG_CLUSTER_DIR / PG_CLUSTER_BIN / PG_CLUSTER_PORT / PG_CLUSTER_USER
(scripts/pg-cluster), OAUTH_LOCK_CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKERS = HERE / "workers"
TORTURE_WORKERS = ROOT / "tests" / "torture" / "workers"
CLIENT_ID = "oauth-lock-demo"

#: Every process's output, so that a last check can look for the password in all of it.
LOGS: List[Path] = []


class Missing(Exception):
    """A component the run needs is not there (under CI that fails; it never skips)."""


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise Missing(f"${name} is not set: run scripts/test-fleet-hosts (or scripts/bench-fleet)")
    return value


@dataclass
class Host:
    ns: str
    ip: str
    ifname: str

    def argv(self, argv: List[str]) -> List[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def link(self, up: bool) -> None:
        subprocess.run(
            ["ip", "-n", self.ns, "link", "set", self.ifname, "up" if up else "down"], check=True
        )


def hosts() -> List[Host]:
    out = []
    for h in env("FLEET_HOSTS").split():
        ns, ip, ifname = h.split(":")
        out.append(Host(ns, ip, ifname))
    if len(out) < 3:
        raise Missing(f"three hosts wanted, FLEET_HOSTS has {len(out)}")
    return out


def cli() -> str:
    path = env("OAUTH_LOCK_CLI")
    if not Path(path).exists():
        raise Missing(f"{path} is missing")
    return path


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def store_url(schema: str) -> str:
    """The store on the bridge, in a schema of its own (no password: PGPASSWORD has it)."""
    return env("FLEET_PG_URL") + f"&schema={schema}"


def store_url_with_password(schema: str) -> str:
    url = store_url(schema)
    return url.replace("://oauth_lock@", f"://oauth_lock:{env('FLEET_PG_PASSWORD')}@", 1)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Optional[Dict[str, Any]] = None) -> Any:
    data = json.dumps(body or {}).encode() if method == "POST" else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_listening(host: Optional[Host], addr: str, port: int) -> None:
    probe = f"import socket; socket.create_connection(({addr!r}, {port}), timeout=1).close()"
    deadline = time.monotonic() + 10
    while True:
        argv = [sys.executable, "-c", probe]
        if subprocess.run(host.argv(argv) if host else argv, capture_output=True).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {addr}:{port} in {host.ns if host else 'the root namespace'}")
        time.sleep(0.05)


class Mock:
    """The strict mock provider (`oauth-lock mock-server`, 127.0.0.1 only) on the bridge: a
    socat relay puts it on BRIDGE_IP, and one relay in each host's namespace listens on that
    host's own 127.0.0.1:PORT and forwards across the bridge, because the core allows plain
    http only to a loopback address. So `url` (http://127.0.0.1:PORT) is the provider on every
    host, every request crossing the bridge; `local` is it for the harness (root namespace)."""

    def __init__(self, logs: Path, lifetime: str = "1s", extra: Optional[List[str]] = None) -> None:
        self.proc = subprocess.Popen(
            [cli(), "mock-server", "--port", "0", "--lifetime", lifetime, *(extra or [])],
            stdout=subprocess.PIPE,
            stderr=open(logs / f"mock-{time.monotonic_ns()}.err", "wb"),
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), line
        self.local = line[len("listening on ") :]
        bridge = env("FLEET_BRIDGE_IP")
        port = free_port(bridge)
        self.bridge_url = f"http://{bridge}:{port}"
        self.relays: "List[subprocess.Popen[bytes]]" = [
            subprocess.Popen(
                [
                    "socat",
                    f"TCP-LISTEN:{port},bind={bridge},fork,reuseaddr,backlog=512",
                    f"TCP:127.0.0.1:{self.local.rsplit(':', 1)[1]}",
                ],
                stderr=subprocess.DEVNULL,
            )
        ]
        wait_listening(None, bridge, port)
        local_port = free_port("127.0.0.1")
        for h in hosts():
            self.relays.append(
                subprocess.Popen(
                    h.argv([
                        "socat",
                        f"TCP-LISTEN:{local_port},bind=127.0.0.1,fork,reuseaddr,backlog=512",
                        f"TCP:{bridge}:{port}",
                    ]),
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_listening(h, "127.0.0.1", local_port)
        self.url = f"http://127.0.0.1:{local_port}"

    def stats(self) -> Dict[str, int]:
        stats: Dict[str, int] = http("GET", self.local + "/stats")
        return stats

    def close(self) -> None:
        procs: "List[subprocess.Popen[Any]]" = [*self.relays, self.proc]
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Runner:
    """Runs processes on the hosts with their output in files under `logs`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.n = 0

    def files(self, name: str) -> "tuple[Path, Path]":
        self.n += 1
        out = self.logs / f"{self.n:03d}-{name}.out"
        err = self.logs / f"{self.n:03d}-{name}.err"
        LOGS.extend([out, err])
        return out, err

    def start(self, host: Optional[Host], name: str, argv: List[str], env_extra: Optional[Dict[str, str]] = None) -> "Proc":
        out, err = self.files(name)
        full = host.argv(argv) if host else argv
        e = dict(os.environ)
        e.update(env_extra or {})
        p = subprocess.Popen(full, stdout=open(out, "wb"), stderr=open(err, "wb"), cwd=ROOT, env=e)
        return Proc(name, p, out, err, time.monotonic())

    def run(self, host: Optional[Host], name: str, argv: List[str], stdin: Optional[str] = None,
            timeout: float = 90, env_extra: Optional[Dict[str, str]] = None) -> "Done":
        out, err = self.files(name)
        full = host.argv(argv) if host else argv
        e = dict(os.environ)
        e.update(env_extra or {})
        started = time.monotonic()
        d = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=e)
        out.write_text(d.stdout)
        err.write_text(d.stderr)
        return Done(d.returncode, d.stdout, d.stderr, time.monotonic() - started)

    def cli(self, host: Optional[Host], store: str, *args: str, stdin: Optional[str] = None,
            timeout: float = 90) -> "Done":
        return self.run(host, f"cli-{args[0]}", [cli(), "--store", store, *args], stdin=stdin, timeout=timeout)


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Proc:
    name: str
    p: "subprocess.Popen[bytes]"
    out: Path
    err: Path
    started: float

    def wait(self, timeout: float) -> int:
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def report(self) -> Optional[Dict[str, Any]]:
        lines = [ln for ln in self.out.read_text(errors="replace").splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def log_in(run: Runner, host: Optional[Host], mock: Mock, store: str, key: str) -> None:
    """A login: a fresh token response from the provider saved through the URL."""
    response = http("POST", mock.local + "/login")
    d = run.cli(
        host, store, "save", key, "--token-url", mock.url + "/oauth/token", "--client-id", CLIENT_ID,
        stdin=json.dumps(response),
    )
    if d.rc != 0:
        raise RuntimeError(f"oauth-lock save exited {d.rc}: {d.stderr}")


def status(run: Runner, host: Optional[Host], store: str, key: str) -> Dict[str, Any]:
    d = run.cli(host, store, "status", key, "--json")
    if d.rc != 0:
        raise RuntimeError(f"oauth-lock status exited {d.rc}: {d.stderr}")
    out = json.loads(d.stdout)
    entry: Dict[str, Any] = out[0] if isinstance(out, list) else out
    return entry


def psql(sql: str) -> str:
    """SQL as the cluster's superuser over its Unix socket (the harness's own view of the
    server: pg_locks, pg_stat_activity)."""
    d = subprocess.run(
        [
            "runuser", "-u", env("PG_CLUSTER_USER"), "--",
            f"{env('PG_CLUSTER_BIN')}/psql", "-qAtX", "-h", env("PG_CLUSTER_DIR"),
            "-p", env("PG_CLUSTER_PORT"), "-U", "postgres", "-d", "oauth_lock_test", "-c", sql,
        ],
        capture_output=True, text=True, timeout=30,
    )
    if d.returncode != 0:
        raise RuntimeError(f"psql: {d.stderr}")
    return d.stdout.strip()


def advisory_locks() -> int:
    return int(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))


def pg_ctl(*args: str) -> None:
    subprocess.run(
        [
            "runuser", "-u", env("PG_CLUSTER_USER"), "--",
            f"{env('PG_CLUSTER_BIN')}/pg_ctl", "-D", f"{env('PG_CLUSTER_DIR')}/data",
            "-l", f"{env('PG_CLUSTER_DIR')}/log", "-w", "-t", "60", *args,
        ],
        check=True, stdout=subprocess.DEVNULL, timeout=90,
    )


def percentile(values: List[float], p: float) -> Optional[float]:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]
