"""Fleet store benchmarks (issue 15): figures, not tests. Run by scripts/bench-fleet, which
makes the three hosts (network namespaces on a bridge) and the PostgreSQL on the bridge
(tests/fleet_hosts/hosts.sh) and passes them in the environment.

- hand-off across hosts: a holder on host 1 refreshes under the lock (a callback refresher,
  tests/fleet_hosts/workers/holder.py) while `oauth-lock probe` processes on hosts 2 and 3
  are blocked on the lock in the server (seen in pg_locks as not granted); the holder is let
  go; from the moment its refresher answers (the commit, the release follow) to each blocked
  caller's return with the new token. p50 / p99 over the rounds.
- the same hand-off between long-lived processes (bench/fleet/long_lived.py, Python: a holder
  on host 1, a waiter on each of hosts 2 and 3), as a gateway's instances keep their process
  and their database sessions from one refresh to the next; the one-shot hand-off starts new
  processes (and so new server sessions) every round.
- full refresh against the strict mock: one long-lived process on host 1 calls
  access_token() just past expiry (1 s tokens), each call one refresh and commit; the
  PostgreSQL store beside the file store (a directory on that host), same process kind.
- hot path: `oauth-lock worker` (Rust, one thread, a 1 h token: every call answered in
  process) on each store; p50 of its latency sample.
- refreshes per rotation: 3 hosts × 4 `oauth-lock worker` processes (2 threads each) on one
  credential with 1 s tokens for FLEET_BENCH_SECONDS (15): refreshes at the mock / rotations
  in the store.

The peer, in the same run (bench/fleet/redis_peer.py): the Redis `SET NX PX` + 50 ms polling
routine that gateways write by hand, on Debian's redis-server on the bridge (FLEET_REDIS,
started by scripts/bench-fleet), against the same strict mock: its hand-off (the same holder
and blocked callers, the holder's lock a Redis key) and its refreshes per rotation and replays
with the same 3 hosts × 4 processes × 2 threads.

Prints a table; writes the figures as JSON to argv[1] if given.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fleet_hosts"))

import fleet  # noqa: E402
import redis_peer  # noqa: E402
from fleet import Mock, Runner  # noqa: E402

PEER = str(HERE / "redis_peer.py")

ROUNDS = int(os.environ.get("FLEET_BENCH_ROUNDS", "30"))
SECONDS = float(os.environ.get("FLEET_BENCH_SECONDS", "15"))


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


def p(values: List[float], q: float) -> float:
    v = fleet.percentile(values, q)
    assert v is not None
    return v


def waiting_on_lock() -> int:
    return int(fleet.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))


def start_holder(run: Runner, host: fleet.Host, name: str, argv: List[str], marker: Path) -> fleet.Proc:
    """Starts a holder and returns once it holds the lock (it has written MARKER)."""
    holder = run.start(host, name, argv)
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()):
        assert holder.p.poll() is None and time.monotonic() < deadline, holder.stderr()
        time.sleep(0.005)
    return holder


def let_go(holder: fleet.Proc, waiters: List[fleet.Proc], go: Path) -> "tuple[Dict[str, Any], List[Dict[str, Any]]]":
    """Lets the holder go; its report and the waiters', each waiter having got its token."""
    go.write_text("go")
    assert holder.wait(60) == 0, holder.stderr()
    h = holder.report()
    assert h and h["ok"], h
    reports = []
    for w in waiters:
        assert w.wait(60) == 0, w.stderr()
        r = w.report()
        assert r and r.get("error") is None and r["generation"] == h["generation"], (r, h)
        reports.append(r)
    return h, reports


def hand_off_figures(samples: List[float], holder_part: List[float]) -> Dict[str, Any]:
    """A hand-off's figures: p50/p99 over the waiters, and the holder's part per round (its
    refresher answering → its call returning: the commit and the release), slowest last."""
    return {
        "rounds": ROUNDS,
        "waiters": len(samples),
        "p50_ns": p(samples, 0.5),
        "p99_ns": p(samples, 0.99),
        "holder_part_ns": sorted(holder_part),
    }


def hand_off(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    mock = Mock(logs)
    try:
        store, key = fleet.store_url("bench_handoff"), "bench:handoff"
        samples: List[float] = []
        from_return: List[float] = []
        holder_part: List[float] = []
        for i in range(ROUNDS):
            # A login (a 1 s token), then it is stale: the holder refreshes, with a 60 s token
            # of its own making, which the waiters adopt.
            fleet.log_in(run, hs[0], mock, store, key)
            time.sleep(1.1)
            tmp = Path(tempfile.mkdtemp(dir=logs))
            marker, go = tmp / "holding", tmp / "go"
            holder = start_holder(run, hs[0], "holder", [
                sys.executable, str(fleet.WORKERS / "holder.py"), store, key, str(marker), str(go),
            ], marker)
            waiters = [run.start(h, "waiter", [fleet.cli(), "--store", store, "probe", key]) for h in hs[1:]]
            deadline = time.monotonic() + 30
            while waiting_on_lock() < len(waiters):
                assert time.monotonic() < deadline, "the waiters never blocked on the lock"
                time.sleep(0.01)
            h, reports = let_go(holder, waiters, go)
            holder_part.append(int(h["returned_ns"]) - int(h["go_seen_ns"]))
            for r in reports:
                samples.append(int(r["returned_ns"]) - int(h["go_seen_ns"]))
                from_return.append(int(r["returned_ns"]) - int(h["returned_ns"]))
        stats = mock.stats()
        assert stats["replays"] == 0, stats
        return {
            **hand_off_figures(samples, holder_part),
            "after_holder_returned_p50_ns": p(from_return, 0.5),
            # Where the tail is: the waiters' part (the holder's call returning → theirs) per
            # waiter, slowest last.
            "after_holder_returned_ns": sorted(from_return),
        }
    finally:
        mock.close()


def hand_off_warm(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    """The same hand-off between long-lived processes (bench/fleet/long_lived.py: one holder on
    host 1, one waiter on each of hosts 2 and 3, all three Python), as a gateway's instances
    keep their process and their sessions from one refresh to the next."""
    mock = Mock(logs)
    tmp = Path(tempfile.mkdtemp(dir=logs))
    procs: List[fleet.Proc] = []
    try:
        store, key = fleet.store_url("bench_handoff_warm"), "bench:handoff-warm"
        fleet.log_in(run, hs[0], mock, store, key)
        worker = str(HERE / "long_lived.py")
        holder = run.start(hs[0], "warm-holder", [sys.executable, worker, "holder", store, key, str(tmp), str(ROUNDS)])
        waiters = [run.start(h, "warm-waiter", [sys.executable, worker, "waiter", store, key, str(tmp), str(ROUNDS)])
                   for h in hs[1:]]
        procs = [holder, *waiters]
        samples: List[float] = []
        holder_part: List[float] = []

        def reports(proc: fleet.Proc, n: int) -> Dict[str, Any]:
            deadline = time.monotonic() + 60
            while True:
                lines: List[Dict[str, Any]] = [
                    json.loads(ln) for ln in proc.out.read_text().splitlines() if ln.startswith("{")
                ]
                done = [r for r in lines if r["round"] == n]
                if done:
                    return done[0]
                assert proc.p.poll() is None and time.monotonic() < deadline, proc.stderr()
                time.sleep(0.005)

        for n in range(ROUNDS):
            if n:
                fleet.log_in(run, hs[0], mock, store, key)
            time.sleep(1.1)
            (tmp / f"holder-{n}").write_text("")
            deadline = time.monotonic() + 30
            while not (tmp / f"holding-{n}").exists():
                assert holder.p.poll() is None and time.monotonic() < deadline, holder.stderr()
                time.sleep(0.005)
            (tmp / f"waiter-{n}").write_text("")
            while waiting_on_lock() < len(waiters):
                assert time.monotonic() < deadline, "the waiters never blocked on the lock"
                time.sleep(0.01)
            (tmp / f"go-{n}").write_text("go")
            h = reports(holder, n)
            holder_part.append(int(h["returned_ns"]) - int(h["go_seen_ns"]))
            for w in waiters:
                r = reports(w, n)
                assert r["generation"] == h["generation"], (r, h)
                samples.append(int(r["returned_ns"]) - int(h["go_seen_ns"]))
        stats = mock.stats()
        assert stats["replays"] == 0, stats
        return {**hand_off_figures(samples, holder_part), "samples_ns": sorted(samples)}
    finally:
        for proc in procs:
            if proc.p.poll() is None:
                proc.p.kill()
        mock.close()


REFRESH_LOOP = """
import json, sys, time, oauth_lock
store, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = oauth_lock.Store(store).source(key)
g = source.access_token().generation
out = []
for _ in range(n):
    time.sleep(1.05)  # past the 1 s token: the next call refreshes
    t = time.perf_counter_ns()
    tok = source.access_token()
    out.append(time.perf_counter_ns() - t)
    assert tok.generation == g + 1, (tok.generation, g)
    g = tok.generation
print(json.dumps(out))
"""


def full_refresh(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    mock = Mock(logs)
    out: Dict[str, Any] = {}
    try:
        n = max(5, ROUNDS // 3)
        for name, store in (("postgres", fleet.store_url("bench_refresh")), ("directory", str(logs / "dir-refresh"))):
            key = f"bench:refresh-{name}"
            fleet.log_in(run, hs[0], mock, store, key)
            d = run.run(hs[0], f"refresh-{name}", [sys.executable, "-c", REFRESH_LOOP, store, key, str(n)], timeout=300)
            assert d.rc == 0, d.stderr
            values = json.loads(d.stdout.strip().splitlines()[-1])
            out[name] = {"n": len(values), "p50_ns": p(values, 0.5), "p99_ns": p(values, 0.99)}
        stats = mock.stats()
        assert stats["replays"] == 0, stats
        return out
    finally:
        mock.close()


def hot_path(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    mock = Mock(logs, lifetime="1h")
    out: Dict[str, Any] = {}
    try:
        for name, store in (("postgres", fleet.store_url("bench_hot")), ("directory", str(logs / "dir-hot"))):
            key = f"bench:hot-{name}"
            fleet.log_in(run, hs[0], mock, store, key)
            d = run.run(hs[0], f"hot-{name}", [
                fleet.cli(), "--store", store, "worker", "--key", key, "--duration", "3s", "--threads", "1",
            ], timeout=60)
            assert d.rc == 0, d.stderr
            r = json.loads(d.stdout.strip().splitlines()[-1])
            assert not r["errors"], r
            lat = r["latencies_ns"][1:]  # the first call reads the store
            out[name] = {"calls": r["calls"], "p50_ns": p(lat, 0.5), "p99_ns": p(lat, 0.99)}
        return out
    finally:
        mock.close()


def per_rotation(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    mock = Mock(logs)
    try:
        store, key = fleet.store_url("bench_rotation"), "bench:rotation"
        fleet.log_in(run, hs[0], mock, store, key)
        gen0 = fleet.status(run, hs[0], store, key)["generation"]
        procs = [
            run.start(h, "worker", [
                fleet.cli(), "--store", store, "worker", "--key", key, "--duration", f"{SECONDS:g}s",
                "--threads", "2", "--resource", mock.url + "/resource",
            ])
            for h in hs for _ in range(4)
        ]
        calls = 0
        errors: Dict[str, int] = {}
        for pr in procs:
            assert pr.wait(SECONDS + 120) == 0, pr.stderr()
            r = pr.report()
            assert r is not None
            calls += r["calls"]
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        gen1 = fleet.status(run, hs[0], store, key)["generation"]
        stats = mock.stats()
        rotations = gen1 - gen0
        return {
            "processes": len(procs),
            "seconds": SECONDS,
            "calls": calls,
            "errors": errors,
            "refreshes": stats["refreshes"],
            "rotations": rotations,
            "replays": stats["replays"],
            "refreshes_per_rotation": stats["refreshes"] / rotations if rotations else None,
        }
    finally:
        mock.close()


def peer_log_in(mock: Mock, address: str, key: str) -> None:
    """A login for the peer: the provider's fresh token response written to Redis."""
    r = redis_peer.Redis(address)
    try:
        redis_peer.save(r, key, redis_peer.credential_from(fleet.http("POST", mock.local + "/login"), 0))
        r.command("DEL", redis_peer.lock_key(key))
    finally:
        r.close()


def peer_generation(address: str, key: str) -> int:
    r = redis_peer.Redis(address)
    try:
        return int(redis_peer.load(r, key)["generation"])
    finally:
        r.close()


def peer_hand_off(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    """The same rounds as hand_off, the lock a Redis key: the blocked callers poll every 50 ms."""
    mock = Mock(logs)
    address = fleet.env("FLEET_REDIS")
    try:
        key = "bench:peer-handoff"
        samples: List[float] = []
        for i in range(ROUNDS):
            peer_log_in(mock, address, key)
            time.sleep(1.1)
            tmp = Path(tempfile.mkdtemp(dir=logs))
            marker, go = tmp / "holding", tmp / "go"
            holder = start_holder(run, hs[0], "peer-holder", [
                sys.executable, PEER, "holder", address, key, str(marker), str(go),
            ], marker)
            blocked = [tmp / f"blocked-{j}" for j in range(len(hs) - 1)]
            waiters = [run.start(h, "peer-waiter", [sys.executable, PEER, "probe", address, key, str(b)])
                       for h, b in zip(hs[1:], blocked)]
            deadline = time.monotonic() + 30
            while not all(b.exists() and b.read_text().strip() for b in blocked):
                assert time.monotonic() < deadline, "the peer's waiters never found the lock taken"
                time.sleep(0.01)
            # A waiter has just begun a 50 ms sleep when its marker appears; letting the holder
            # go at once would time the hand-off at nearly a whole interval every round. In a
            # gateway the release comes at any moment of the waiters' polling: a random phase.
            time.sleep(random.uniform(0, redis_peer.POLL_S))
            h, reports = let_go(holder, waiters, go)
            for r in reports:
                samples.append(int(r["returned_ns"]) - int(h["go_seen_ns"]))
        return {"rounds": ROUNDS, "waiters": len(samples), "p50_ns": p(samples, 0.5), "p99_ns": p(samples, 0.99)}
    finally:
        mock.close()


def peer_per_rotation(run: Runner, hs: List[fleet.Host], logs: Path) -> Dict[str, Any]:
    """The same load as per_rotation (3 hosts × 4 processes × 2 threads, 1 s tokens, each
    token used at the resource), every process running the hand-written routine."""
    mock = Mock(logs)
    address = fleet.env("FLEET_REDIS")
    try:
        key = "bench:peer-rotation"
        peer_log_in(mock, address, key)
        gen0 = peer_generation(address, key)
        procs = [
            run.start(h, "peer-worker", [
                sys.executable, PEER, "worker", address, key, mock.url + "/oauth/token", mock.url + "/resource",
                f"{SECONDS:g}", "2",
            ])
            for h in hs for _ in range(4)
        ]
        calls = refreshes_sent = lock_waits = unauthorized = 0
        errors: Dict[str, int] = {}
        for pr in procs:
            assert pr.wait(SECONDS + 120) == 0, pr.stderr()
            r = pr.report()
            assert r is not None, pr.stderr()
            calls += r["calls"]
            refreshes_sent += r["refreshes_sent"]
            lock_waits += r["lock_waits"]
            unauthorized += r["resource_unauthorized"]
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        rotations = peer_generation(address, key) - gen0
        stats = mock.stats()
        return {
            "processes": len(procs),
            "seconds": SECONDS,
            "lock_ttl_ms": redis_peer.LOCK_TTL_MS,
            "poll_ms": int(redis_peer.POLL_S * 1000),
            "calls": calls,
            "errors": errors,
            "lock_waits": lock_waits,
            "resource_unauthorized": unauthorized,
            "refresh_requests": stats["token_requests"],
            "refreshes": stats["refreshes"],
            "rotations": rotations,
            "replays": stats["replays"],
            "revoked_families": stats["revoked_families"],
            "refreshes_per_rotation": stats["refreshes"] / rotations if rotations else None,
        }
    finally:
        mock.close()


def main() -> int:
    hs = fleet.hosts()
    logs = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    run = Runner(logs)
    figures: Dict[str, Any] = {}
    only = os.environ.get("FLEET_BENCH_ONLY")
    if only:
        # One part alone (e.g. hand_off, when working on it): printed, not recorded.
        parts = {f.__name__: f for f in (hand_off, hand_off_warm, full_refresh, hot_path, per_rotation,
                                         peer_hand_off, peer_per_rotation)}
        print(json.dumps({only: parts[only](run, hs, logs)}, indent=1))
        return 0
    figures["hand_off"] = hand_off(run, hs, logs)
    figures["hand_off_warm"] = hand_off_warm(run, hs, logs)
    figures["full_refresh"] = full_refresh(run, hs, logs)
    figures["hot_path"] = hot_path(run, hs, logs)
    figures["per_rotation"] = per_rotation(run, hs, logs)
    figures["peer_hand_off"] = peer_hand_off(run, hs, logs)
    figures["peer_per_rotation"] = peer_per_rotation(run, hs, logs)
    password = fleet.env("FLEET_PG_PASSWORD")
    leaked = [str(x) for x in fleet.LOGS if x.exists() and password in x.read_text(errors="replace")]
    assert not leaked, f"the password appears in {leaked}"

    h, f, hot, rot = figures["hand_off"], figures["full_refresh"], figures["hot_path"], figures["per_rotation"]
    print("\nfleet store benchmarks (3 hosts = network namespaces on a bridge; PostgreSQL and the mock on it)")
    print(f"hand-off across hosts (holder on host 1 → {h['waiters']} blocked callers on hosts 2-3, {h['rounds']} rounds): "
          f"p50 {ms(h['p50_ns'])}, p99 {ms(h['p99_ns'])} (from the holder's call returning: p50 {ms(h['after_holder_returned_p50_ns'])})")
    hw = figures["hand_off_warm"]
    print(f"hand-off across hosts between long-lived processes (holder on host 1 → {hw['waiters']} blocked callers, "
          f"{hw['rounds']} rounds): p50 {ms(hw['p50_ns'])}, p99 {ms(hw['p99_ns'])}")
    for name in ("postgres", "directory"):
        print(f"full refresh against the mock, {name} store: p50 {ms(f[name]['p50_ns'])}, p99 {ms(f[name]['p99_ns'])} ({f[name]['n']} refreshes)")
    for name in ("postgres", "directory"):
        print(f"hot path (Rust, cached token), {name} store: p50 {hot[name]['p50_ns']:.0f} ns, p99 {hot[name]['p99_ns']:.0f} ns ({hot[name]['calls']} calls)")
    print(f"refreshes per rotation, 3 hosts × 4 processes × 2 threads, {rot['seconds']:g} s of 1 s tokens: "
          f"{rot['refreshes']} refreshes / {rot['rotations']} rotations = {rot['refreshes_per_rotation']:.2f}, "
          f"replays {rot['replays']}, {rot['calls']} calls, errors {rot['errors'] or 'none'}")
    ph, pr = figures["peer_hand_off"], figures["peer_per_rotation"]
    print(f"peer (Redis SET NX PX {pr['lock_ttl_ms']} + {pr['poll_ms']} ms polling), hand-off across hosts "
          f"({ph['waiters']} blocked callers, {ph['rounds']} rounds): p50 {ms(ph['p50_ns'])}, p99 {ms(ph['p99_ns'])}")
    ppr = pr["refreshes_per_rotation"]
    print(f"peer refreshes per rotation, same load: {pr['refreshes']} refreshes / {pr['rotations']} rotations = "
          f"{'n/a' if ppr is None else f'{ppr:.2f}'}, {pr['refresh_requests']} token requests, replays {pr['replays']}, "
          f"revoked families {pr['revoked_families']}, {pr['calls']} calls, {pr['resource_unauthorized']} 401s, "
          f"errors {pr['errors'] or 'none'}")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
