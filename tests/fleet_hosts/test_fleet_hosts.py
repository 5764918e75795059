"""The fleet store across hosts (issue 15, DESIGN.md §10): three network namespaces joined by
a bridge, PostgreSQL and the strict mock provider on the bridge, real processes in every
namespace. Run by scripts/test-fleet-hosts, which makes the hosts and the database first.

1. Torture: CLI (`oauth-lock worker`), Python (threads) and Node (async + worker_threads)
   processes, and Go's when its worker is built, on every host, on ONE credential with 1 s
   tokens for FLEET_SECONDS (20), while the provider revokes every access token at random
   (401 → reject), host 1 logs in again midway (`oauth-lock save` through the URL) and host 2
   polls `status`. At the provider: 0 replays, 0 revoked families, 0 invalid_grant, refreshes
   == rotations; at the clients: every process made calls, 0 errors.
2. Faults, each on a credential of its own and a fresh provider, each ending with no advisory
   lock left in pg_locks:
   - a holder SIGKILLed while it holds the lock: the processes blocked on other hosts go on
     at once (the server frees a dead session's lock), one refresh between them;
   - a real refresh SIGKILLed at the core's crash points `locked` and `answered`
     (core/src/fault.rs; the CLI built with them, FLEET_FAULT_CLI): the others go on at once,
     0 replays at `locked`; at `answered` the lost answer's token is presented once more and
     answered inside the provider's grace window, no family revoked;
   - a holder's host cut off (its link down) while it holds the lock: the others go on within
     the bound B (60 s, core/src/backend/postgres.rs HOLDER_BOUND; in practice the server's
     TCP keepalives, ~11 s); the link comes back, the holder's late commit fails (`Io`,
     "the refresh succeeded but was NOT saved", the lock's session ended: fenced) and nothing
     of its made-up tokens reaches the record;
   - PostgreSQL restarted (`pg_ctl restart -m fast`) under load: workers see `Transient` (and
     `Io` for a refresh whose commit the restart broke: kept in the process and committed at
     its next call), go on after it, 0 replays, refreshes == rotations;
   - the database unreachable at start (a closed port, an address nobody answers): CLI,
     Python and Node get `Transient` naming the location without its password.
3. No process's stdout or stderr, in the whole run, holds the database password.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet  # noqa: E402
from fleet import Host, Mock, Proc, Runner  # noqa: E402

SECONDS = float(os.environ.get("FLEET_SECONDS", "20"))
SEED = int(os.environ.get("FLEET_SEED", str(random.randrange(1 << 32))))
#: DESIGN.md §10's B as the PostgreSQL backend sets it (HOLDER_BOUND, idle_session_timeout).
HOLDER_BOUND_S = 60.0
CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet-logs")


@pytest.fixture(scope="session")
def hosts() -> List[Host]:
    try:
        return fleet.hosts()
    except fleet.Missing as e:
        pytest.fail(str(e))


@pytest.fixture
def run(logs: Path) -> Runner:
    return Runner(logs)


@pytest.fixture
def mock(logs: Path) -> Iterator[Mock]:
    m = Mock(logs)
    yield m
    m.close()


def report_line(what: str) -> None:
    """Straight to the terminal, past pytest's capture (the run's figures)."""
    out = sys.__stdout__
    if out is not None:
        out.write(what + "\n")
        out.flush()


# ---- 1. torture ------------------------------------------------------------------------------


def go_worker() -> Optional[str]:
    path = os.environ.get("FLEET_GO_WORKER")
    if path and Path(path).exists():
        return path
    if CI and (fleet.ROOT / "bindings" / "go").is_dir():
        pytest.fail("bindings/go is there but $FLEET_GO_WORKER is not built")
    return None


def start_workers(run: Runner, hosts: List[Host], store: str, key: str, url: str, seconds: float) -> List[Proc]:
    s = f"{seconds:g}"
    python = [sys.executable, str(fleet.TORTURE_WORKERS / "python_worker.py")]
    node = ["node", str(fleet.TORTURE_WORKERS / "node_worker.mjs")]
    go = go_worker()
    procs = []
    for i, h in enumerate(hosts, 1):
        procs.append(run.start(h, f"h{i}-cli", [
            fleet.cli(), "--store", store, "worker", "--key", key, "--duration", f"{s}s",
            "--threads", "2", "--resource", url + "/resource",
        ]))
        procs.append(run.start(h, f"h{i}-python", [*python, "threads", store, key, url, s, "2"]))
        procs.append(run.start(h, f"h{i}-node", [*node, store, key, url, s, "2", "1"]))
        if go:
            procs.append(run.start(h, f"h{i}-go", [go, store, key, url, s, "2"]))
    return procs


@pytest.mark.timeout(SECONDS + 200)
def test_torture_three_hosts_one_credential(run: Runner, hosts: List[Host], mock: Mock) -> None:
    store, key = fleet.store_url("hosts_torture"), "fleet:torture"
    fleet.log_in(run, hosts[0], mock, store, key)
    gen0 = fleet.status(run, hosts[0], store, key)["generation"]
    rng = random.Random(SEED)
    procs = start_workers(run, hosts, store, key, mock.url, SECONDS)
    stop = threading.Event()
    side: Dict[str, Any] = {"revocations": 0, "saves": 0, "save_errors": [], "polls": 0,
                            "status_errors": [], "generations": []}

    def revoker() -> None:
        while not stop.wait(rng.uniform(1.0, 4.0)):
            fleet.http("POST", mock.local + "/admin/revoke-access")
            side["revocations"] += 1

    def saver() -> None:
        if stop.wait(SECONDS / 2):
            return
        try:
            fleet.log_in(run, hosts[0], mock, store, key)
            side["saves"] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            side["save_errors"].append(repr(e))

    def status_loop() -> None:
        while not stop.is_set():
            try:
                g = fleet.status(run, hosts[1], store, key)["generation"]
                if side["generations"] and g < side["generations"][-1]:
                    side["status_errors"].append(f"generation went back {side['generations'][-1]} -> {g}")
                side["generations"].append(g)
                side["polls"] += 1
            except Exception as e:  # noqa: BLE001
                side["status_errors"].append(repr(e))
            stop.wait(0.2)

    helpers = [threading.Thread(target=f) for f in (revoker, saver, status_loop)]
    for t in helpers:
        t.start()
    time.sleep(SECONDS - 2)
    stop.set()
    for t in helpers:
        t.join()
    failed: List[str] = []
    reports: Dict[str, Dict[str, Any]] = {}
    for p in procs:
        rc = p.wait(timeout=120)
        r = p.report()
        if rc != 0 or r is None:
            failed.append(f"{p.name} exited {rc}, report {'printed' if r else 'missing'}: {p.stderr()[-1500:]}")
        if r is not None:
            reports[p.name] = r
    gen1 = fleet.status(run, hosts[2], store, key)["generation"]
    stats = mock.stats()
    rotations = gen1 - gen0 - side["saves"]

    report_line(f"\n\nfleet torture: 3 hosts, {len(procs)} processes, {SECONDS:g} s, 1 s tokens, seed {SEED}")
    report_line(f"{'process':<12} {'calls':>8} {'401s':>6} {'rejects':>8} {'errors':>7}")
    for name, r in reports.items():
        report_line(f"{name:<12} {r['calls']:>8} {r.get('resource_unauthorized', 0):>6} "
                    f"{r.get('rejects', 0):>8} {sum(r['errors'].values()):>7}")
    report_line(f"side: {side['revocations']} revocations, {side['saves']} re-login, "
                f"{side['polls']} status polls")
    report_line("provider: " + ", ".join(f"{k} {stats.get(k)}" for k in (
        "token_requests", "refreshes", "replays", "revoked_families", "invalid_grants",
        "bad_requests", "logins", "resource_ok", "resource_unauthorized")))
    report_line(f"rotations committed: {rotations}; refreshes - rotations = {stats['refreshes'] - rotations}")

    def check(ok: bool, what: str) -> None:
        if not ok:
            failed.append(what)

    check(stats["replays"] == 0, f"{stats['replays']} replays")
    check(stats["revoked_families"] == 0, f"{stats['revoked_families']} revoked families")
    check(stats["invalid_grants"] == 0, f"{stats['invalid_grants']} invalid_grant answers")
    check(stats["bad_requests"] == 0, f"{stats['bad_requests']} bad token requests")
    check(stats["refreshes"] == rotations, f"{stats['refreshes']} refreshes for {rotations} rotations")
    check(stats["logins"] == 2, f"{stats['logins']} logins, want 2")
    for name, r in reports.items():
        check(r["calls"] > 0, f"{name} made no call")
        check(not r["errors"], f"{name} errors: {r['errors']}")
    for h in ("h1", "h2", "h3"):
        for lang in ("cli", "python", "node", *(("go",) if go_worker() else ())):
            check(f"{h}-{lang}" in reports, f"no report from {h}-{lang}")
    check(side["saves"] == 1 and not side["save_errors"], f"re-login: {side['save_errors']}")
    check(not side["status_errors"], f"status: {side['status_errors'][:3]}")
    check(rotations >= SECONDS / 2, f"only {rotations} rotations")
    check(side["revocations"] >= 2, f"only {side['revocations']} revocations")
    check(stats["resource_unauthorized"] > 0, "no 401 at /resource")
    check(fleet.advisory_locks() == 0, "an advisory lock is still held")
    assert not failed, "the fleet torture failed:\n- " + "\n- ".join(failed)


# ---- 2. faults -------------------------------------------------------------------------------


def expired_credential(run: Runner, host: Host, mock: Mock, store: str, key: str) -> int:
    fleet.log_in(run, host, mock, store, key)
    gen = int(fleet.status(run, host, store, key)["generation"])
    time.sleep(1.2)  # the 1 s access token is past its margin: the next call refreshes
    return gen


def start_holder(run: Runner, host: Host, store: str, key: str, tmp: Path) -> "tuple[Proc, Path, int]":
    marker, go = tmp / "holding", tmp / "go"
    holder = run.start(host, "holder", [sys.executable, str(fleet.WORKERS / "holder.py"), store, key, str(marker), str(go)])
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text().strip():
        assert holder.p.poll() is None, f"the holder exited: {holder.stderr()[-1500:]}"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.01)
    return holder, go, int(marker.read_text())


def probe(run: Runner, host: Host, store: str, key: str, name: str) -> Proc:
    return run.start(host, name, [fleet.cli(), "--store", store, "probe", key])


def tokens_of(probes: List[Proc]) -> List[Dict[str, Any]]:
    """The probes' reports, each a token (they may wait up to the bound B and more)."""
    reports = []
    for o in probes:
        assert o.wait(timeout=HOLDER_BOUND_S + 30) == 0, o.stderr()
        r = o.report()
        assert r is not None and r["error"] is None, r
        reports.append(r)
    return reports


def no_lock_left() -> None:
    deadline = time.monotonic() + 5
    while fleet.advisory_locks() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fleet.advisory_locks() == 0, fleet.psql(
        "SELECT pid, objid, granted FROM pg_locks WHERE locktype = 'advisory'"
    )


@pytest.mark.timeout(180)
def test_holder_sigkilled_while_holding(run: Runner, hosts: List[Host], mock: Mock, tmp_path: Path) -> None:
    store, key = fleet.store_url("hosts_kill"), "fleet:kill"
    gen0 = expired_credential(run, hosts[0], mock, store, key)
    holder, _go, pid = start_holder(run, hosts[0], store, key, tmp_path)
    assert fleet.advisory_locks() == 1
    others = [probe(run, h, store, key, f"h{i}-probe") for i, h in ((2, hosts[1]), (3, hosts[2]))]
    time.sleep(1.0)
    assert all(o.p.poll() is None for o in others), "a waiter returned while the lock was held"
    killed_ns = time.time_ns()
    os.kill(pid, signal.SIGKILL)
    holder.wait(timeout=10)
    reports = tokens_of(others)
    after = [(int(r["returned_ns"]) - killed_ns) / 1e9 for r in reports]
    stats = mock.stats()
    gen1 = fleet.status(run, hosts[2], store, key)["generation"]
    report_line(f"\nSIGKILLed holder: the waiters on hosts 2 and 3 returned {after[0]:.3f} s and "
                f"{after[1]:.3f} s after the kill (bound B {HOLDER_BOUND_S:g} s); "
                f"refreshes {stats['refreshes']}, replays {stats['replays']}")
    assert max(after) < HOLDER_BOUND_S
    assert max(after) < 5, "a dead process's lock is freed when its connection closes"
    assert reports[0]["fingerprint"] == reports[1]["fingerprint"], "one refresh, one token"
    assert stats["refreshes"] == 1 and stats["replays"] == 0 and stats["revoked_families"] == 0, stats
    assert gen1 == gen0 + 1
    no_lock_left()


def fault_cli() -> str:
    """The CLI built with the core's crash points (`--features fault-injection`), which
    scripts/test-fleet-hosts keeps beside the plain one."""
    path = os.environ.get("FLEET_FAULT_CLI")
    if not path or not Path(path).exists():
        pytest.fail("$FLEET_FAULT_CLI is not built (scripts/test-fleet-hosts builds it)")
    return path


@pytest.mark.timeout(180)
@pytest.mark.parametrize("point", ["locked", "answered"])
def test_holder_sigkilled_at_a_crash_point(run: Runner, hosts: List[Host], logs: Path, tmp_path: Path,
                                           point: str) -> None:
    """A real refresh (the CLI's `probe` against the mock) parked at one of the core's crash
    points (core/src/fault.rs, as tests/crash.rs uses them) on host 1, SIGKILLed there while
    callers on hosts 2 and 3 wait. At `locked` nothing was sent: the others refresh once, 0
    replays. At `answered` the provider rotated and nobody saved: the answer is lost, so the
    others' refresh presents the spent token; with a grace window (as tests/crash.rs's
    recovering run) that is answered with the lost tokens, no family revoked. Either way the
    others go on at once and no lock stays held."""
    extra = ["--grace", "60s"] if point == "answered" else None
    mock = Mock(logs, extra=extra)
    try:
        store, key = fleet.store_url("hosts_crash"), f"fleet:crash-{point}"
        gen0 = expired_credential(run, hosts[0], mock, store, key)
        marker = tmp_path / "parked"
        holder = run.start(hosts[0], f"crash-{point}", [fault_cli(), "--store", store, "probe", key], env_extra={
            "OAUTH_LOCK_FAULT": point, "OAUTH_LOCK_FAULT_MARKER": str(marker),
        })
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            assert holder.p.poll() is None, f"the holder exited: {holder.stderr()[-1500:]}"
            assert time.monotonic() < deadline, f"the holder never reached {point}"
            time.sleep(0.01)
        assert fleet.advisory_locks() == 1
        sent = mock.stats()["refreshes"]
        assert sent == (1 if point == "answered" else 0), (point, sent)
        others = [probe(run, h, store, key, f"h{i}-probe") for i, h in ((2, hosts[1]), (3, hosts[2]))]
        time.sleep(1.0)
        assert all(o.p.poll() is None for o in others), "a waiter returned while the lock was held"
        killed_ns = time.time_ns()
        os.kill(int(marker.read_text()), signal.SIGKILL)
        holder.wait(timeout=10)
        reports = tokens_of(others)
        after = [(int(r["returned_ns"]) - killed_ns) / 1e9 for r in reports]
        stats = mock.stats()
        gen1 = fleet.status(run, hosts[2], store, key)["generation"]
        report_line(f"\nholder SIGKILLed at {point}: the waiters on hosts 2 and 3 returned {after[0]:.3f} s "
                    f"and {after[1]:.3f} s after the kill; refreshes {stats['refreshes']}, "
                    f"replays {stats['replays']} (grace reuses {stats['grace_reuses']})")
        assert max(after) < 5, "a dead process's lock is freed when its connection closes"
        assert reports[0]["fingerprint"] == reports[1]["fingerprint"], "one new token for both"
        assert gen1 == gen0 + 1
        assert stats["revoked_families"] == 0 and stats["invalid_grants"] == 0, stats
        if point == "locked":
            assert stats["refreshes"] == 1 and stats["replays"] == 0, stats
        else:
            # The lost answer's refresh token presented once more, inside the grace window.
            assert stats["refreshes"] == 1 and stats["replays"] == 1 and stats["grace_reuses"] == 1, stats
        no_lock_left()
    finally:
        mock.close()


@pytest.mark.timeout(240)
def test_holder_host_cut_off_while_holding(run: Runner, hosts: List[Host], mock: Mock, tmp_path: Path) -> None:
    store, key = fleet.store_url("hosts_cut"), "fleet:cut"
    gen0 = expired_credential(run, hosts[0], mock, store, key)
    holder, go, _pid = start_holder(run, hosts[0], store, key, tmp_path)
    assert fleet.advisory_locks() == 1
    cut = time.monotonic()
    cut_ns = time.time_ns()
    hosts[0].link(up=False)
    try:
        others = [probe(run, h, store, key, f"h{i}-probe") for i, h in ((2, hosts[1]), (3, hosts[2]))]
        reports = tokens_of(others)
        went_on = [(int(r["returned_ns"]) - cut_ns) / 1e9 for r in reports]
    finally:
        hosts[0].link(up=True)
    go.write_text("go")
    assert holder.wait(timeout=90) == 0, holder.stderr()
    late = holder.report()
    assert late is not None
    stats = mock.stats()
    gen1 = fleet.status(run, hosts[0], store, key)["generation"]
    # Host 1, back on the bridge, gets a token as any host does (its held rotation was
    # superseded by the others' refresh, so it is dropped, never replayed).
    after = probe(run, hosts[0], store, key, "h1-probe-after")
    assert after.wait(timeout=60) == 0, after.stderr()
    r1 = after.report()
    assert r1 is not None and r1["error"] is None, r1
    assert mock.stats()["replays"] == 0
    report_line(f"\nholder's host cut off: the waiters on hosts 2 and 3 went on {went_on[0]:.2f} s and "
                f"{went_on[1]:.2f} s after the cut (bound B {HOLDER_BOUND_S:g} s, "
                f"{time.monotonic() - cut:.1f} s in all); the holder's late commit: "
                f"{late.get('code')}: {late.get('message', '')[:400]}")
    assert max(went_on) < HOLDER_BOUND_S
    assert reports[0]["fingerprint"] == reports[1]["fingerprint"], "one refresh, one token"
    # The error §10 names for a commit whose session the server ended: nothing written (Io,
    # the refresh NOT saved), and the record is the others' (generation + 1, their token).
    assert late["ok"] is False and late["code"] == "Io", late
    assert "NOT saved" in late["message"], late
    assert gen1 == gen0 + 1, (gen0, gen1)
    assert stats["refreshes"] == 1 and stats["replays"] == 0 and stats["revoked_families"] == 0, stats
    no_lock_left()


@pytest.mark.timeout(240)
def test_postgres_restarted_under_load(run: Runner, hosts: List[Host], mock: Mock) -> None:
    store, key = fleet.store_url("hosts_restart"), "fleet:restart"
    seconds = 16.0
    fleet.log_in(run, hosts[0], mock, store, key)
    gen0 = fleet.status(run, hosts[0], store, key)["generation"]
    procs = [
        run.start(h, f"h{i}-cli", [
            fleet.cli(), "-v", "--store", store, "worker", "--key", key, "--duration", f"{seconds:g}s",
            "--threads", "2", "--resource", mock.url + "/resource",
        ])
        for i, h in enumerate(hosts, 1)
    ]
    time.sleep(4)
    restarted = time.monotonic()
    fleet.pg_ctl("restart", "-m", "fast")
    restart_s = time.monotonic() - restarted
    time.sleep(4)
    gen_mid = fleet.status(run, hosts[1], store, key)["generation"]
    errors: Dict[str, int] = {}
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr()
        r = p.report()
        assert r is not None and r["calls"] > 0, p.stderr()
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    # Every host gets a token after it (a refresh, most likely: counted before the figures).
    afters = [probe(run, h, store, key, f"h{i}-probe") for i, h in enumerate(hosts, 1)]
    for a in afters:
        assert a.wait(timeout=60) == 0 and (a.report() or {}).get("error") is None, a.stderr()
    gen1 = fleet.status(run, hosts[2], store, key)["generation"]
    stats = mock.stats()
    held = sum(p.stderr().count('"rotation_held"') for p in procs)
    recommitted = sum(p.stderr().count('"rotation_recommitted"') for p in procs)
    rotations = gen1 - gen0
    report_line(f"\nPostgreSQL restarted under load ({restart_s:.1f} s): worker errors {errors or 'none'}; "
                f"rotations {rotations} ({gen1 - gen_mid} after the restart), refreshes {stats['refreshes']}, "
                f"replays {stats['replays']}, revoked families {stats['revoked_families']}")
    report_line(f"  refreshes whose commit the restart broke (kept in the process, committed at its next "
                f"call): {held} held, {recommitted} recommitted")
    # Transient: the database could not be reached. Io: a refresh answered by the provider whose
    # commit the restart broke, reported to its caller as "NOT saved" and kept in the process
    # (rotation_held), which commits it at its next call (rotation_recommitted): no replay.
    assert set(errors) <= {"Transient", "Io"}, errors
    assert recommitted == held, (held, recommitted)
    assert stats["replays"] == 0 and stats["revoked_families"] == 0 and stats["invalid_grants"] == 0, stats
    assert stats["refreshes"] == rotations, (stats, rotations)
    assert gen1 > gen_mid, "no rotation after the restart"
    no_lock_left()


NODE_OPEN_ASYNC = """
const { Store } = require(process.argv[1]);
(async () => {
  try {
    await new Store(process.argv[2]).source('fleet:down').accessToken();
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, code: e.codeName ?? e.name, message: String(e.message) }));
  }
})();
"""

PY_OPEN = """
import json, sys, oauth_lock
try:
    oauth_lock.Store(sys.argv[1]).source("fleet:down").access_token()
    print(json.dumps({"ok": True}))
except oauth_lock.Error as e:
    print(json.dumps({"ok": False, "code": e.code, "message": str(e)}))
"""


@pytest.mark.timeout(180)
def test_database_unreachable_at_start(run: Runner, hosts: List[Host]) -> None:
    bridge = fleet.env("FLEET_BRIDGE_IP")
    password = fleet.env("FLEET_PG_PASSWORD")
    closed = fleet.free_port(bridge)
    nobody = bridge.rsplit(".", 1)[0] + ".99"
    cases = [
        (f"postgresql://oauth_lock:{password}@{bridge}:{closed}/oauth_lock_test?sslmode=disable",
         f"postgresql://oauth_lock@{bridge}:{closed}/oauth_lock_test"),
        (f"postgresql://oauth_lock:{password}@{nobody}:5432/oauth_lock_test?sslmode=disable&connect_timeout=2",
         f"postgresql://oauth_lock@{nobody}:5432/oauth_lock_test"),
    ]
    node_lib = str(fleet.ROOT / "bindings" / "node" / "lib" / "index.js")
    lines = []
    for url, shown in cases:
        d = run.run(hosts[0], "cli-unreachable", [fleet.cli(), "--store", url, "token", "fleet:down"], timeout=60)
        assert d.rc == 14, (d.rc, d.stderr)  # 10 + Transient
        assert shown in d.stderr, d.stderr
        lines.append(f"cli rc {d.rc} in {d.seconds:.1f} s: {d.stderr.strip().splitlines()[-1][:200]}")
        py = run.run(hosts[1], "python-unreachable", [sys.executable, "-c", PY_OPEN, url], timeout=60)
        r = json.loads(py.stdout.strip().splitlines()[-1])
        assert r["code"] == "Transient" and shown in r["message"], r
        lines.append(f"python {r['code']} in {py.seconds:.1f} s")
        nd = run.run(hosts[2], "node-unreachable", ["node", "-e", NODE_OPEN_ASYNC, node_lib, url], timeout=60)
        r = json.loads(nd.stdout.strip().splitlines()[-1])
        assert r["code"] == "Transient" and shown in r["message"], (r, nd.stderr)
        lines.append(f"node {r['code']} in {nd.seconds:.1f} s")
    report_line("\ndatabase unreachable at start:\n  " + "\n  ".join(lines))


def test_zz_no_password_in_any_output() -> None:
    """Every process of the run, its stdout and stderr: the password never shows."""
    password = fleet.env("FLEET_PG_PASSWORD")
    assert len(password) >= 12
    seen = [p for p in fleet.LOGS if p.exists() and password in p.read_text(errors="replace")]
    assert not seen, f"the password appears in {seen}"
    assert len(fleet.LOGS) > 20, f"only {len(fleet.LOGS)} outputs looked at"
