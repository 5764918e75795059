"""The "Waiters wake together" figures of docs/BENCHMARKS.md (issue 14, DESIGN.md §4 step 2.3),
all in one run, written to one JSON file for bench/report.py. scripts/bench-waiters builds the
probes and runs this in bench/.venv (it needs `oauth_lock` and the pinned `filelock`).

Hand-off with N = 2, 6, 16, 64 waiting processes, the variants interleaved round by round so
that a change of load hits them alike:

- rust: one `oauth-lock probe` (the winner) refreshes an expired credential at `oauth-lock
  mock-server --latency 300ms`; N more probes start 40 ms later (`--start-at-ns`) and block
  behind it. A waiter's figure = its returned_ns − the winner's returned_ns (the issue's
  measure). The winner is back a few µs after its unlock when it runs at once; with N
  processes waking on 2 cores it often runs after them, and they count as back "before" the
  winner (negative; counted). The core's counters of each probe say who took the exclusive
  lock and who waited on the shared one; the mock's /stats, the refreshes.
- python: the same with bench/waiters/probe.py processes (`Store(dir).source(key)
  .access_token()`), the winner one of them; each started by a line on stdin once imported
  (the winner first, the others once it holds the lock).
- rust_holder / python_holder / node_holder: N such waiters (node_holder: bench/waiters/
  probe.mjs processes, `accessToken()` of bindings/node's addon) behind
  bench/waiters/flock_probe.c holding the lock; it renames a fresh record into place (a commit) and releases, stamping the moment
  just before LOCK_UN: hand-off from the exact release.
- rust_holder_before (with --cli-before, scripts/bench-waiters' BENCH_BEFORE=REV): the same as
  rust_holder with an earlier build's `oauth-lock probe`, interleaved round by round, so that
  a change's effect is measured in one run.
- kernel_sh / kernel_ex: N flock_probe waiters blocked in flock(LOCK_SH) (all wake at once)
  or flock(LOCK_EX) (they take it in turn, each unlocking at once) behind the same holder.
- filelock: N probe.py processes in `FileLock.acquire()` (polling every 50 ms) behind a
  FileLock held here, released at a random moment of one poll interval after a fresh file
  was written; each re-reads the file; they take the lock in turn.

Every waiter is seen blocked before the release: in the kernel's lock table (/proc/locks, a
"->" request of its pid on the lock file) for the flock-based variants, and by its "ready"
line plus one poll interval for filelock. A round where one was not (or where the winner did
not refresh, or a waiter returned another token) is run again and counted as discarded.
No waiter exits before every report of its round is in (a Python exit takes ms of CPU that
the waiters still waking would lose): the Python and C probes wait for their stdin to close,
and `oauth-lock probe` writes its report into a full pipe, where it blocks until drained.
This process sleeps through the hand-off and reads the reports afterwards.

Scale: 64 `oauth-lock worker` processes × 8 threads on one credential with 1 s tokens for 20 s
(as bench/contention.py runs them, keeping the workers' errors by kind and latencies), and a store of 10 000 credentials: `oauth-lock status` (list) wall
time, and bench/waiters/scale_probe.c (hot path with one credential vs the 10 000 loaded,
memory per slot).

Usage: waiters.py --cli OAUTH_LOCK --flock-probe BIN --scale-probe BIN --out FILE [--quick]
       [--only VARIANT,…] [--sizes 2,6,…] [--no-scale] [--cli-before OAUTH_LOCK --before-rev REV]
Figures, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import resource
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

Proc = subprocess.Popen[str]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LATENCY = "300ms"  # the mock's answer to the winner's refresh
LATENCY_S = 0.3
VARIANTS = ["rust", "python", "rust_holder", "python_holder", "node_holder", "kernel_sh", "kernel_ex", "filelock"]
# With --cli-before: `oauth-lock probe` of an earlier build behind the same holder, interleaved
# with the rest, so that a change's effect is measured in one run, under one load.
BEFORE = "rust_holder_before"
SIZES = [2, 6, 16, 64]


# ---- small helpers ------------------------------------------------------------------------------


def http_json(method: str, url: str) -> Any:
    req = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def pct(values: Sequence[float], p: float) -> Optional[float]:
    if not values:
        return None
    s = sorted(values)
    return float(s[round((len(s) - 1) * p)])


def summary(values: Sequence[float]) -> Dict[str, Any]:
    return {
        "n": len(values),
        "p50_ns": pct(values, 0.5),
        "p99_ns": pct(values, 0.99),
        "min_ns": min(values) if values else None,
        "max_ns": max(values) if values else None,
    }


def lock_id(path: Path) -> str:
    """The lock file as /proc/locks names it: MAJ:MIN:INODE (hex, hex, decimal)."""
    st = os.stat(path)
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def lock_table(ident: str) -> Tuple[Dict[int, str], Set[int]]:
    """(holders: pid → READ/WRITE, pids with a blocked request) of one file's flock locks."""
    holders: Dict[int, str] = {}
    blocked: Set[int] = set()
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            waiting = len(parts) > 1 and parts[1] == "->"
            rest = parts[2:] if waiting else parts[1:]
            if len(rest) < 5 or rest[0] != "FLOCK" or rest[4] != ident:
                continue
            pid = int(rest[3])
            if waiting:
                blocked.add(pid)
            else:
                holders[pid] = rest[2]
    return holders, blocked


def wait_until(cond: Callable[[], bool], limit: float, step: float = 0.001) -> bool:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def readline(p: Proc, limit: float) -> str:
    assert p.stdout is not None
    r, _, _ = select.select([p.stdout], [], [], limit)
    return p.stdout.readline() if r else ""


def stalled_pipe() -> Tuple[int, int]:
    """A pipe filled to the brim: a process whose stdout it is blocks in its first write until
    the reader drains it. `oauth-lock probe` prints its report after taking the return time, so
    it stays blocked, using no CPU, instead of exiting while the other waiters still wake."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    os.set_blocking(w, False)
    for chunk in (4096, 1):
        try:
            while True:
                os.write(w, b"\n" * chunk)
        except BlockingIOError:
            pass
    os.set_blocking(w, True)
    return r, w


def spawn_stalled(argv: List[str], env: Dict[str, str]) -> Proc:
    r, w = stalled_pipe()
    try:
        p = subprocess.Popen(argv, stdout=w, stderr=subprocess.PIPE, text=True, env=env)
    finally:
        os.close(w)
    p.stalled = r  # type: ignore[attr-defined]
    return p


def spawn_lingering(argv: List[str], env: Optional[Dict[str, str]] = None) -> Proc:
    """A probe that prints its report when asked (a line on stdin, which flock_probe ignores),
    then waits for its stdin to close."""
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def drain(fd: int) -> str:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def finish(procs: Sequence[Proc], limit: float = 30) -> List[Tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each probe. Lingering ones are read first and only then
    let go (stdin closed), stalled ones drained one by one: no probe exits before every report
    of the round is in."""
    lines = {}
    for p in procs:
        if p.stdin is not None:
            try:
                p.stdin.write("report\n")
                p.stdin.flush()
            except BrokenPipeError:
                pass
    for p in procs:
        if p.stdin is not None:
            lines[p.pid] = readline(p, limit)
    for p in procs:
        if p.stdin is not None:
            p.stdin.close()
            p.stdin = None  # communicate() below must not flush it
    out = []
    for p in procs:
        head = lines.get(p.pid, "")
        fd = getattr(p, "stalled", None)
        if fd is not None:
            head += drain(fd)
            p.stalled = None  # type: ignore[attr-defined]
        try:
            o, e = p.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
        out.append((p.returncode, head + (o or ""), e or ""))
    return out


def kill_all(procs: Sequence[Proc]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        fd = getattr(p, "stalled", None)
        if fd is not None:
            os.close(fd)
            p.stalled = None  # type: ignore[attr-defined]
    for p in procs:
        try:
            p.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def last_json(text: str) -> Optional[Dict[str, Any]]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                doc: Dict[str, Any] = json.loads(line)
                return doc
            except ValueError:
                return None
    return None


def settle(n: int, python: bool) -> None:
    """Sleeps through the hand-off before collecting: the reports are read only once the
    waiters are (most likely) all back, so that this process takes no CPU from them."""
    time.sleep(0.05 + (0.1 + 0.01 * n if python else 0.003 * n))


class Invalid(Exception):
    """A round whose set-up did not hold (a waiter not blocked behind the holder in time)."""


# ---- the context --------------------------------------------------------------------------------


class Mock:
    def __init__(self, cli: str, latency: str) -> None:
        self.proc = subprocess.Popen(
            [cli, "mock-server", "--port", "0", "--lifetime", "1h", "--latency", latency],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            sys.exit(f"waiters: the mock said {line!r}")
        self.url = line.removeprefix("listening on ")
        self.latency = latency

    def stats(self) -> Dict[str, int]:
        stats: Dict[str, int] = http_json("GET", self.url + "/stats")
        return stats

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Ctx:
    def __init__(self, a: argparse.Namespace, work: Path) -> None:
        self.cli = a.cli
        self.cli_before = a.cli_before or a.cli
        self.flock_probe = a.flock_probe
        self.python = sys.executable
        self.probe_py = str(HERE / "probe.py")
        self.probe_mjs = str(HERE / "probe.mjs")
        self.work = work
        self.store = work / "store"
        self.store.mkdir(mode=0o700)
        self.next_dir = work / "next"
        self.next_dir.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k != "OAUTH_LOCK_DIR"}

    def save_expired(self, key: str, mock: Mock) -> Path:
        """A login at the mock saved through the CLI with an already expired access token; the
        lock file made beforehand (0600, as the core makes it) so its inode is known."""
        cred = http_json("POST", mock.url + "/login")
        cred["expires_in"] = 0
        cred["refresh"] = {"token_url": mock.url + "/oauth/token", "client_id": "oauth-lock-demo"}
        subprocess.run([self.cli, "--dir", str(self.store), "save", key], input=json.dumps(cred),
                       text=True, check=True, capture_output=True, env=self.env)
        return self.lock_file(key)

    def lock_file(self, key: str) -> Path:
        lock = self.store / f"{key}.lock"
        os.close(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600))
        return lock

    def write_record(self, path: Path, key: str, generation: int, fresh: bool) -> None:
        now = int(time.time() * 1000)
        rec = {"format": 1, "key": key, "generation": generation,
               "access_token": f"at-{key}-{generation}", "token_type": "Bearer",
               "issued_at_ms": now - (0 if fresh else 3_600_000),
               "expires_at_ms": now + 3_600_000 if fresh else now - 1000,
               "refresh_token": "rt", "state": "ok"}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f)

    def cli_probe(self, key: str, start_at_ns: Optional[int] = None, before: bool = False) -> Proc:
        argv = [self.cli_before if before else self.cli, "--dir", str(self.store), "probe", key]
        if start_at_ns is not None:
            argv += ["--start-at-ns", str(start_at_ns)]
        return spawn_stalled(argv, self.env)

    def py_probe(self, *args: str) -> Proc:
        return spawn_lingering([self.python, self.probe_py, *args], self.env)

    def node_probe(self, key: str) -> Proc:
        return spawn_lingering(["node", self.probe_mjs, str(self.store), key], self.env)


def watching(pid: int, ino: int) -> bool:
    """Whether process `pid` has a close watch on the lock file (inode `ino`): an inotify
    descriptor watching it, which oauth-lock's shared wait sets before it first finds the lock
    held (on Linux; a blocking caller then polls it, an async one waits in the runtime's
    reactor), so a release from then on wakes it. Such a wait makes no request in
    /proc/locks."""
    want = f"ino:{ino:x} "
    try:
        for fd in os.listdir(f"/proc/{pid}/fdinfo"):
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                if any(ln.startswith("inotify wd:") and want in ln for ln in f):
                    return True
    except OSError:
        return False
    return False


def all_blocked(ident: str, holder: int, waiters: Sequence[Proc]) -> Callable[[], bool]:
    """Every waiter has a blocked request on the lock, or polls a close watch of it (see
    `watching`), while `holder` holds it exclusively."""
    pids = {w.pid for w in waiters}
    ino = int(ident.rsplit(":", 1)[1])

    def check() -> bool:
        holders, blocked = lock_table(ident)
        if holders.get(holder) != "WRITE":
            raise Invalid("the holder released before every waiter was blocked")
        return all(p in blocked or watching(p, ino) for p in pids)

    return check


def ready_all(procs: Sequence[Proc], limit: float) -> None:
    for p in procs:
        line = readline(p, limit).strip()
        if line != "ready":
            err = p.stderr.read() if p.poll() is not None and p.stderr else ""
            raise RuntimeError(f"a probe said {line!r}: {err[-800:]}")


# ---- one round of each variant ------------------------------------------------------------------


def round_rust(ctx: Ctx, n: int, key: str, mock: Mock) -> Dict[str, Any]:
    lock = ctx.save_expired(key, mock)
    ident = lock_id(lock)
    # Start times far enough ahead for every process to be up (Rust starts in a few ms).
    start = time.time_ns() + int((0.08 + 0.012 * n) * 1e9)
    leader = ctx.cli_probe(key, start)
    waiters = [ctx.cli_probe(key, start + 40_000_000) for _ in range(n)]
    procs = [leader] + waiters
    try:
        if not wait_until(lambda: lock_table(ident)[0].get(leader.pid) == "WRITE", 10):
            raise Invalid("the leader never took the lock")
        locked = time.monotonic()
        if not wait_until(all_blocked(ident, leader.pid, waiters), 10):
            raise Invalid("waiters not blocked in time")
    except BaseException:
        kill_all(procs)
        raise
    time.sleep(max(0.0, locked + LATENCY_S - time.monotonic()))
    settle(n, python=False)
    results = finish(procs)
    reports = []
    for code, out, err in results:
        doc = last_json(out)
        if doc is None:
            raise RuntimeError(f"oauth-lock probe exit {code}: {err[-800:]}")
        reports.append(doc)
    lead, rest = reports[0], reports[1:]
    if lead.get("error") or lead.get("exclusive_locks") != 1:
        raise Invalid(f"the leader did not refresh under the lock: {lead}")
    for rep in rest:
        if rep.get("error") or rep.get("fingerprint") != lead.get("fingerprint"):
            raise Invalid(f"a waiter did not return the leader's token: {rep}")
    winner = int(lead["returned_ns"])
    return {
        "handoffs_ns": [int(w["returned_ns"]) - winner for w in rest],
        "waiter_exclusive_locks": sum(int(w["exclusive_locks"]) for w in rest),
        "waiter_shared_waits": sum(int(w["shared_waits"]) for w in rest),
        "leader_exclusive_locks": int(lead["exclusive_locks"]),
    }


def round_python(ctx: Ctx, n: int, key: str, mock: Mock) -> Dict[str, Any]:
    lock = ctx.save_expired(key, mock)
    ident = lock_id(lock)
    procs = [ctx.py_probe("oauth-lock", str(ctx.store), key) for _ in range(n + 1)]
    leader, waiters = procs[0], procs[1:]
    try:
        ready_all(procs, 60)
        assert leader.stdin is not None
        leader.stdin.write("go\n")
        leader.stdin.flush()
        if not wait_until(lambda: lock_table(ident)[0].get(leader.pid) == "WRITE", 10):
            raise Invalid("the leader never took the lock")
        locked = time.monotonic()
        for w in waiters:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        if not wait_until(all_blocked(ident, leader.pid, waiters), 10):
            raise Invalid("waiters not blocked in time")
    except BaseException:
        kill_all(procs)
        raise
    time.sleep(max(0.0, locked + LATENCY_S - time.monotonic()))
    settle(n, python=True)
    results = finish(procs)
    reports = []
    for code, out, err in results:
        doc = last_json(out)
        if doc is None:
            raise RuntimeError(f"probe.py exit {code}: {err[-800:]}")
        reports.append(doc)
    lead, rest = reports[0], reports[1:]
    if lead.get("error"):
        raise Invalid(f"the leader failed: {lead}")
    for rep in rest:
        if rep.get("error") or rep.get("fingerprint") != lead.get("fingerprint"):
            raise Invalid(f"a waiter did not return the leader's token: {rep}")
    winner = int(lead["returned_ns"])
    return {"handoffs_ns": [int(w["returned_ns"]) - winner for w in rest]}


def holder(ctx: Ctx, lock: Path, commit: Optional[Tuple[Path, Path]] = None) -> Proc:
    argv = [ctx.flock_probe, "hold", str(lock)] + ([str(commit[0]), str(commit[1])] if commit else [])
    h = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if readline(h, 10).strip() != "locked":
        h.kill()
        raise RuntimeError("flock_probe hold did not lock")
    return h


def release(h: Proc, n: int, python: bool) -> Dict[str, int]:
    """Tells the holder to commit and release, sleeps through the hand-off (settle), then reads
    its stamps."""
    assert h.stdin is not None
    h.stdin.write("go\n")
    h.stdin.flush()
    settle(n, python)
    doc: Dict[str, int] = json.loads(readline(h, 30))
    h.wait()
    return doc


def round_holder(ctx: Ctx, n: int, key: str, lang: str, before: bool = False) -> Dict[str, Any]:
    """N waiters (`oauth-lock probe`, of the earlier build if `before`; probe.py for Python,
    probe.mjs for Node) behind flock_probe's commit."""
    record = ctx.store / f"{key}.json"
    ctx.write_record(record, key, 1, fresh=False)
    nxt = ctx.next_dir / f"{key}.json"
    ctx.write_record(nxt, key, 2, fresh=True)
    lock = ctx.lock_file(key)
    ident = lock_id(lock)
    h = holder(ctx, lock, (nxt, record))
    if lang == "rust":
        waiters = [ctx.cli_probe(key, before=before) for _ in range(n)]
    elif lang == "node":
        waiters = [ctx.node_probe(key) for _ in range(n)]
    else:
        waiters = [ctx.py_probe("oauth-lock", str(ctx.store), key) for _ in range(n)]
    try:
        if lang != "rust":
            ready_all(waiters, 60)
            for w in waiters:
                assert w.stdin is not None
                w.stdin.write("go\n")
                w.stdin.flush()
        if not wait_until(all_blocked(ident, h.pid, waiters), 20):
            raise Invalid("waiters not blocked in time")
    except BaseException:
        kill_all([h] + waiters)
        raise
    rel = release(h, n, python=lang != "rust")
    reports = []
    for code, out, err in finish(waiters):
        doc = last_json(out)
        if doc is None:
            raise RuntimeError(f"{lang} probe exit {code}: {err[-800:]}")
        reports.append(doc)
    for rep in reports:
        if rep.get("error") or rep.get("generation") != 2:
            raise Invalid(f"a waiter did not return the committed token: {rep}")
    res: Dict[str, Any] = {
        "handoffs_ns": [int(w["returned_ns"]) - rel["release_ns"] for w in reports],
        "unlock_ns": rel["released_ns"] - rel["release_ns"],
    }
    if lang == "rust":
        res["waiter_exclusive_locks"] = sum(int(w["exclusive_locks"]) for w in reports)
        res["waiter_shared_waits"] = sum(int(w["shared_waits"]) for w in reports)
    return res


def round_kernel(ctx: Ctx, n: int, mode: str, r: int) -> Dict[str, Any]:
    lock = ctx.work / f"kernel-{mode}-{n}-{r}.lock"
    h = holder(ctx, lock)
    ident = lock_id(lock)
    waiters = [spawn_lingering([ctx.flock_probe, "wait", str(lock), mode]) for _ in range(n)]
    try:
        if not wait_until(all_blocked(ident, h.pid, waiters), 20):
            raise Invalid("waiters not blocked in time")
    except BaseException:
        kill_all([h] + waiters)
        raise
    rel = release(h, n, python=False)
    woke = []
    for code, out, err in finish(waiters):
        doc = last_json(out)
        if doc is None:
            raise RuntimeError(f"flock_probe wait exit {code}: {err[-800:]}")
        woke.append(int(doc["returned_ns"]))
    return {"handoffs_ns": [t - rel["release_ns"] for t in woke],
            "unlock_ns": rel["released_ns"] - rel["release_ns"]}


def round_filelock(ctx: Ctx, n: int, r: int) -> Dict[str, Any]:
    import filelock

    path = ctx.work / f"filelock-{n}-{r}.json"
    path.write_text(json.dumps({"access_token": "old"}))
    lock = filelock.FileLock(str(path) + ".lock")
    lock.acquire()
    waiters = [ctx.py_probe("filelock", str(path)) for _ in range(n)]
    try:
        ready_all(waiters, 60)
        # Each has tried once and sleeps in its 50 ms poll; the refresh ends at a random moment.
        time.sleep(0.06)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"access_token": "new"}))
        os.replace(tmp, path)
        time.sleep(random.uniform(0, 0.05))
    except BaseException:
        lock.release()
        kill_all(waiters)
        raise
    released = time.time_ns()
    lock.release()
    time.sleep(0.1 + 0.005 * n)
    reports = []
    for code, out, err in finish(waiters):
        doc = last_json(out)
        if doc is None or doc.get("access_token") != "new":
            raise RuntimeError(f"filelock probe exit {code}: {out[-200:]} {err[-800:]}")
        reports.append(doc)
    return {"handoffs_ns": [int(w["returned_ns"]) - released for w in reports]}


# ---- the hand-off rounds ------------------------------------------------------------------------


def handoffs(ctx: Ctx, variants: List[str], sizes: List[int], quick: bool) -> Dict[str, Any]:
    rounds = {2: 10, 6: 10, 16: 10, 64: 5} if not quick else {2: 3, 6: 3, 16: 2, 64: 1}
    latency = LATENCY
    mock = Mock(ctx.cli, latency) if {"rust", "python"} & set(variants) else None
    raw: Dict[str, Dict[int, List[Dict[str, Any]]]] = {v: {n: [] for n in sizes} for v in variants}
    discarded: Dict[str, Dict[int, List[str]]] = {v: {n: [] for n in sizes} for v in variants}
    refreshes: Dict[str, int] = {"rust": 0, "python": 0}
    replays = 0
    seconds: Dict[int, float] = {}
    try:
        before = mock.stats() if mock else {}
        for n in sizes:
            began = time.monotonic()
            for r in range(rounds.get(n, 5)):
                for v in variants:
                    for attempt in range(4):
                        key = f"{v.replace('_', '-')}-{n}-{r}-{attempt}"
                        s0 = mock.stats() if mock and v in ("rust", "python") else None
                        try:
                            if v == "rust":
                                res = round_rust(ctx, n, key, mock)  # type: ignore[arg-type]
                            elif v == "python":
                                res = round_python(ctx, n, key, mock)  # type: ignore[arg-type]
                            elif v in ("rust_holder", "python_holder", "node_holder", BEFORE):
                                res = round_holder(ctx, n, key, v.split("_")[0], before=v == BEFORE)
                            elif v in ("kernel_sh", "kernel_ex"):
                                res = round_kernel(ctx, n, v.split("_")[1], r * 10 + attempt)
                            else:
                                res = round_filelock(ctx, n, r * 10 + attempt)
                        except Invalid as e:
                            discarded[v][n].append(str(e)[:300])
                            print(f"  {v} N={n} round {r}: discarded ({str(e)[:120]})", file=sys.stderr)
                            time.sleep(0.3)  # let the leader finish before the next attempt
                            continue
                        if s0 is not None and mock is not None:
                            s1 = mock.stats()
                            res["provider_refreshes"] = s1["refreshes"] - s0["refreshes"]
                            refreshes[v] += res["provider_refreshes"]
                        raw[v][n].append(res)
                        break
            line = []
            for v in variants:
                h = [x for res in raw[v][n] for x in res["handoffs_ns"]]
                if h:
                    line.append(f"{v} p50 {pct(h, 0.5) / 1e3:.0f} µs p99 {pct(h, 0.99) / 1e3:.0f} µs")  # type: ignore[operator]
            seconds[n] = round(time.monotonic() - began, 1)
            print(f"N={n} ({seconds[n]} s): " + "; ".join(line), flush=True)
        after = mock.stats() if mock else {}
        replays = after.get("replays", 0) - before.get("replays", 0)
    finally:
        if mock:
            mock.stop()

    out: Dict[str, Any] = {}
    for v in variants:
        out[v] = {}
        for n in sizes:
            rs = raw[v][n]
            flat = [x for res in rs for x in res["handoffs_ns"]]
            lasts = [max(res["handoffs_ns"]) for res in rs]
            entry: Dict[str, Any] = {
                "waiters": n,
                "rounds": len(rs),
                "discarded_rounds": len(discarded[v][n]),
                "discarded_why": discarded[v][n][:3],
                "handoff": summary(flat),
                "last": summary(lasts),
                "negative": sum(1 for x in flat if x < 0),
                "samples_ns": flat,
            }
            for k in ("waiter_exclusive_locks", "waiter_shared_waits", "leader_exclusive_locks",
                      "provider_refreshes"):
                if rs and k in rs[0]:
                    entry[k] = sum(int(res[k]) for res in rs)
            if rs and "unlock_ns" in rs[0]:
                entry["unlock"] = summary([res["unlock_ns"] for res in rs])
            out[v][n] = entry
    return {"variants": out, "mock_latency": latency, "provider_replays": replays,
            "provider_refreshes": refreshes, "rounds_per_size": {n: rounds.get(n, 5) for n in sizes}, "seconds_per_size": seconds}


# ---- scale --------------------------------------------------------------------------------------


def contention(ctx: Ctx, quick: bool) -> Dict[str, Any]:
    """bench/contention.py's run for `oauth-lock worker` at scale, keeping what each worker
    reports: its errors by kind and its sample of token-call latencies."""
    processes, threads, seconds = (8, 4, 3) if quick else (64, 8, 20)
    store = ctx.work / "soak"
    mock = subprocess.Popen([ctx.cli, "mock-server", "--port", "0", "--lifetime", "1s"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert mock.stdout is not None
        url = mock.stdout.readline().strip().removeprefix("listening on ")
        login = http_json("POST", url + "/login")
        subprocess.run([ctx.cli, "--dir", str(store), "save", "soak", "--token-url", url + "/oauth/token",
                        "--client-id", "oauth-lock-demo"], input=json.dumps(login), text=True, check=True,
                       capture_output=True, env=ctx.env)

        def generation() -> int:
            out = subprocess.run([ctx.cli, "--dir", str(store), "status", "soak", "--json"], check=True,
                                 capture_output=True, text=True, env=ctx.env).stdout
            doc = json.loads(out)
            return int((doc[0] if isinstance(doc, list) else doc)["generation"])

        before, gen0 = http_json("GET", url + "/stats"), generation()
        started = time.monotonic()
        procs = [subprocess.Popen([ctx.cli, "--dir", str(store), "worker", "--key", "soak", "--threads",
                                   str(threads), "--duration", f"{seconds}s", "--resource", url + "/resource"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ctx.env)
                 for _ in range(processes)]
        outputs = [p.communicate(timeout=seconds + 120) for p in procs]
        wall = time.monotonic() - started
        after, gen1 = http_json("GET", url + "/stats"), generation()
    finally:
        mock.kill()
        mock.wait()
    calls = 0
    errors: Dict[str, int] = {}
    latencies: List[int] = []
    max_latency = 0
    failures = []
    for p, (out, err) in zip(procs, outputs):
        doc = last_json(out)
        if p.returncode != 0 or doc is None:
            failures.append(f"exit {p.returncode}: {(err.strip() or out.strip())[-600:]}")
            continue
        calls += int(doc["calls"])
        for k, v in doc.get("errors", {}).items():
            errors[k] = errors.get(k, 0) + int(v)
        latencies += doc.get("latencies_ns", [])
        max_latency = max(max_latency, int(doc.get("max_latency_ns", 0)))
    delta = {k: int(after[k]) - int(before.get(k, 0)) for k in after if isinstance(after[k], int)}
    rotations = gen1 - gen0
    return {
        "processes": processes, "threads": threads, "seconds": seconds, "wall_s": round(wall, 2),
        "token_lifetime_s": 1, "calls": calls, "client_errors": sum(errors.values()),
        "errors_by_kind": errors, "worker_failures": failures,
        "refreshes": delta.get("refreshes", 0), "rotations": rotations,
        "refreshes_per_rotation": delta.get("refreshes", 0) / rotations if rotations else None,
        "replays": delta.get("replays", 0), "revoked_families": delta.get("revoked_families", 0),
        "invalid_grants": delta.get("invalid_grants", 0), "resource_ok": delta.get("resource_ok", 0),
        "resource_unauthorized": delta.get("resource_unauthorized", 0),
        "token_call_p50_ns": pct(latencies, 0.5), "token_call_p99_ns": pct(latencies, 0.99),
        "token_call_max_ns": max_latency, "token_call_samples": len(latencies),
    }


def big_store(ctx: Ctx, a: argparse.Namespace, quick: bool) -> Dict[str, Any]:
    n = 1_000 if quick else 10_000
    big = ctx.work / "big"
    big.mkdir(mode=0o700)
    started = time.monotonic()
    for i in range(n):
        ctx.write_record(big / f"key-{i}.json", f"key-{i}", 1, fresh=True)
    ctx.write_record(big / "hot.json", "hot", 1, fresh=True)
    written_s = time.monotonic() - started

    status = []
    lines = 0
    for _ in range(5):
        t = time.monotonic_ns()
        p = subprocess.run([ctx.cli, "--dir", str(big), "status"], capture_output=True, text=True,
                           env=ctx.env)
        status.append(time.monotonic_ns() - t)
        if p.returncode != 0:
            raise RuntimeError(f"oauth-lock status: {p.stderr[-800:]}")
        lines = len(p.stdout.splitlines())
    t = time.monotonic_ns()
    p = subprocess.run([ctx.cli, "--dir", str(big), "status", "--json"], capture_output=True,
                       text=True, env=ctx.env, check=True)
    status_json_ns = time.monotonic_ns() - t
    listed = len(json.loads(p.stdout))
    # The same command on a one-credential store: the process's own start-up.
    one = ctx.work / "one"
    one.mkdir(mode=0o700)
    ctx.write_record(one / "hot.json", "hot", 1, fresh=True)
    status_one = []
    for _ in range(5):
        t = time.monotonic_ns()
        subprocess.run([ctx.cli, "--dir", str(one), "status"], capture_output=True, env=ctx.env,
                       check=True)
        status_one.append(time.monotonic_ns() - t)

    small = ctx.work / "small"
    rounds, calls = (3, 100_000) if quick else (7, 1_000_000)
    p = subprocess.run([a.scale_probe, str(small), str(big), str(n), str(rounds), str(calls)],
                       capture_output=True, text=True, check=True)
    probe = json.loads(p.stdout)
    rss = probe["rss_kb"]
    return {
        "credentials": n,
        "records_written_s": round(written_s, 2),
        "status_ns": status,
        "status_p50_ns": pct(status, 0.5),
        "status_lines": lines,
        "status_json_ns": status_json_ns,
        "status_json_listed": listed,
        "status_one_credential_p50_ns": pct(status_one, 0.5),
        "probe": probe,
        "hot_one_credential_ns": pct(probe["hot_one_credential_ns"], 0.5),
        "hot_big_store_ns": pct(probe["hot_big_store_ns"], 0.5),
        "hot_all_loaded_ns": pct(probe["hot_all_loaded_ns"], 0.5),
        "cycle_all_ns": pct(probe["cycle_all_ns"], 0.5),
        "load_all_per_credential_ns": probe["load_all_ns"] / n,
        "bytes_per_slot": (rss["loaded"] - rss["baseline"]) * 1024 / n,
        "bytes_per_slot_sources_freed": (rss["sources_freed"] - rss["baseline"]) * 1024 / n,
    }


class Cpu:
    """What the machine's CPUs did over a phase, and how much of it was this run's own
    processes (this one and its reaped children): the rest is other load (CI, builds)."""

    def __init__(self) -> None:
        self.start = self.snapshot()

    @staticmethod
    def snapshot() -> Tuple[float, float, float]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
        busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        return time.monotonic(), busy, ours

    def phase(self) -> Dict[str, float]:
        end = self.snapshot()
        wall, busy, ours = (end[i] - self.start[i] for i in range(3))
        self.start = end
        return {"wall_s": round(wall, 1), "busy_cpus": round(busy / wall, 2), "ours_cpus": round(ours / wall, 2),
                "others_cpus": round(max(0.0, busy - ours) / wall, 2)}


# ---- main ---------------------------------------------------------------------------------------


def versions(cli: str) -> Dict[str, str]:
    def first(argv: List[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            lines = (p.stdout or p.stderr).strip().splitlines()
            return lines[0] if lines else "?"
        except OSError:
            return "not found"

    v = {"oauth-lock": first([cli, "--version"]), "python": sys.version.split()[0],
         "node": first(["node", "--version"]),
         "cc": first(["cc", "--version"]), "commit": first(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])}
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "core", "cli", "ffi", "bindings/python", "bindings/node/src"],
                           capture_output=True, text=True).stdout.strip()
    v["uncommitted"] = ", ".join(line[3:] for line in dirty.splitlines()) or "none"
    try:
        import filelock

        v["filelock"] = filelock.__version__
    except ImportError:
        v["filelock"] = "not installed"
    try:
        import oauth_lock

        v["oauth_lock (Python)"] = oauth_lock.__version__
    except ImportError:
        v["oauth_lock (Python)"] = "not installed"
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--flock-probe", required=True)
    ap.add_argument("--scale-probe", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(VARIANTS))
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--cli-before", help="an earlier build's oauth-lock: adds the variant " + BEFORE)
    ap.add_argument("--before-rev", default="", help="the commit that --cli-before was built from")
    a = ap.parse_args()
    variants = [v for v in a.only.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")
    if a.cli_before and "rust_holder" in variants:
        variants.insert(variants.index("rust_holder") + 1, BEFORE)
    sizes = [int(s) for s in a.sizes.split(",") if s]

    started_ms = int(time.time() * 1000)
    load_start = os.getloadavg()
    t0 = time.monotonic()
    result: Dict[str, Any] = {
        "lang": "waiters",
        "quick": a.quick,
        "started_at_ms": started_ms,
        "loadavg_start": load_start,
        "cpus": os.cpu_count(),
        "versions": versions(a.cli),
    }
    if a.cli_before:
        result["before_rev"] = a.before_rev
    cpu = Cpu()
    with tempfile.TemporaryDirectory(prefix="oauth-lock-waiters-") as tmp:
        ctx = Ctx(a, Path(tmp))
        result["handoffs"] = handoffs(ctx, variants, sizes, a.quick)
        result["handoffs_s"] = round(time.monotonic() - t0, 1)
        result["cpu_handoffs"] = cpu.phase()
        result["loadavg_after_handoffs"] = os.getloadavg()
        if not a.no_scale:
            t1 = time.monotonic()
            result["contention"] = contention(ctx, a.quick)
            result["cpu_contention"] = cpu.phase()
            result["contention_loadavg_end"] = os.getloadavg()
            result["store"] = big_store(ctx, a, a.quick)
            result["cpu_store"] = cpu.phase()
            result["scale_s"] = round(time.monotonic() - t1, 1)
    result["loadavg_end"] = os.getloadavg()
    result["wall_s"] = round(time.monotonic() - t0, 1)
    result["recorded_at_ms"] = int(time.time() * 1000)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(f"waiters: {result['wall_s']} s; wrote {a.out}")


if __name__ == "__main__":
    main()
