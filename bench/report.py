"""Renders the benchmark report from the JSON results of scripts/bench-<lang>: writes
docs/BENCHMARKS.md in full, the plot docs/handoff-latency.png, and the README's region
between `<!-- bench:begin -->` and `<!-- bench:end -->`, so none of them drifts from the
figures. The prose explaining each line lives here, in the template, so regenerating keeps it.

Usage (scripts/bench runs it): bench/.venv/bin/python bench/report.py [RESULTS_DIR]
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PLOT = "handoff-latency.png"

Results = Dict[str, Dict[str, Any]]


# ---- formatting -----------------------------------------------------------------------------


def fmt(ns: Optional[float]) -> str:
    """A duration in the unit that reads best."""
    if ns is None:
        return "—"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs" if ns < 100_000 else f"{ns / 1e3:.0f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms" if ns < 10e6 else f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def times(slow: float, fast: float) -> str:
    r = slow / fast
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def cmd(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


# ---- results --------------------------------------------------------------------------------


def load(results_dir: Path) -> Tuple[Results, Results, Dict[str, Any]]:
    langs: Results = {}
    contention: Results = {}
    for f in sorted(results_dir.glob("*.json")):
        doc = json.loads(f.read_text())
        if f.stem.endswith("-contention"):
            contention[doc["lang"]] = doc
        elif f.stem not in ("run", "waiters"):
            langs[doc["lang"]] = doc
    run_file = results_dir / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    return langs, contention, run


def med(langs: Results, lang: str, mid: str) -> Optional[float]:
    m = langs.get(lang, {}).get("measurements", {}).get(mid)
    return None if m is None else float(m["median_ns"])


def p99(langs: Results, lang: str, mid: str) -> Optional[float]:
    m = langs.get(lang, {}).get("measurements", {}).get(mid)
    return None if m is None else float(m["p99_ns"])


# ---- the template ---------------------------------------------------------------------------

# Per language: (key in results, title, command, rows, prose). A row is (measurement id,
# "loop" for per-call loops (samples are per-round means) or "dist" (one sample per event),
# notes(langs) → str). The prose says what each line measures.
Row = Tuple[str, str, Callable[[Results], str]]


def ratio_note(lang: str, mid: str, other_lang: str, other_mid: str, what: str, suffix: str = "") -> Callable[[Results], str]:
    def note(r: Results) -> str:
        a, b = med(r, lang, mid), med(r, other_lang, other_mid)
        return "" if a is None or b is None else f"{times(a, b)} {what}{suffix}"

    return note


def faster_note(lang: str, ours: str, peer: str) -> Callable[[Results], str]:
    def note(r: Results) -> str:
        a, b = med(r, lang, ours), med(r, lang, peer)
        what = "hot path" if ours == "hot" else "hand-off"
        return "" if a is None or b is None else f"takes {times(b, a)} as long as oauth-lock's {what}"

    return note


def blank(_: Results) -> str:
    return ""


LANGS: List[Tuple[str, str, str, List[Row], List[str]]] = [
    (
        "rust",
        "Rust",
        "./scripts/bench-rust      # target/release/oauth-lock-bench (bench/src/main.rs)",
        [
            ("hot", "loop", lambda r: "target < 100 ns"),
            ("hot_async", "loop", blank),
            ("peer_read_parse", "loop", faster_note("rust", "hot", "peer_read_parse")),
            ("cold_read", "dist", blank),
            ("lock_handoff", "dist", lambda r: "the kernel lock alone"),
            ("handoff", "dist", lambda r: "target p99 < 1 ms"),
            ("full_refresh", "dist", lambda r: "lock, HTTP to the local mock, fsync'd commit"),
        ],
        [
            "**Hot path**: `TokenSource::access_token_blocking()` (and its async twin) when the "
            "process already holds a fresh token: two atomic loads, a clock read, an `Arc` clone; "
            "once per second (`revalidate`) one `stat` to notice another process's login or "
            "logout. 1 M calls × 15 rounds; the median is of the per-round means.",
            "**Peer: read + parse per call**: what hand-written integrations commonly do instead "
            "— read the credential file and parse its JSON on every request, with no lock at all.",
            "**Cold read**: the first `access_token_blocking()` of a key in a process, the record "
            "on disk fresh (written directly, as another process would): a flight on the core "
            "runtime, one unlocked read, adopt. 400 keys.",
            "**Lock hand-off**: a thread holds `<stem>.lock`; a second thread is blocked in "
            "`flock` (proved by the blocked-wait counter); time from the holder's release to the "
            "waiter's return: the kernel wake-up plus the hand-over from the core's lock thread.",
            "**Hand-off**: another holder has the lock and commits a fresh record while a caller "
            "is blocked in `access_token_blocking()` on the expired one; time from the release to "
            "the caller's return with the new token (wake, authoritative re-read, adopt, "
            "publish). 200 rounds.",
            "**Full refresh**: `verify_blocking()` against `oauth-lock mock-server` on loopback: "
            "flight, lock, HTTP round trip, record merge, fsync'd atomic write and directory "
            "fsync. 200 rounds.",
        ],
    ),
    (
        "c",
        "C ABI",
        "./scripts/bench-c         # bench/c/bench.c against the release liboauth_lock",
        [
            ("hot", "loop", ratio_note("c", "hot", "rust", "hot", "Rust's", " (target ≤ 2×)")),
            ("cold_read", "dist", ratio_note("c", "cold_read", "rust", "cold_read", "Rust's")),
            ("handoff", "dist", ratio_note("c", "handoff", "rust", "handoff", "Rust's")),
        ],
        [
            "**Hot path**: one `oauth_lock_source_access_token` per request on a fresh cached "
            "token, reading the value, then `oauth_lock_token_free`: the panic guard, the "
            "thread's last-error reset, the core's `cached()`, and one reference-count increment "
            "and decrement (the source keeps its last token handle, so no C string is built per "
            "call). 1 M calls × 15 rounds.",
            "**Cold read**: the first `oauth_lock_source_access_token` of a new source on a key "
            "whose fresh record was written directly to disk. 400 keys.",
            "**Hand-off**: the main thread holds `<stem>.lock` with `flock(2)` while a second "
            "thread is blocked in `oauth_lock_source_access_token` on the expired record (20 ms "
            "after it started); the holder renames a fresh record into place and unlocks; time "
            "until the blocked call returns. 200 rounds.",
        ],
    ),
    (
        "java",
        "Java (JNA)",
        "./scripts/bench-jvm       # bench/jvm/Bench.java with bindings/jvm's jar and JNA",
        [
            ("hot", "loop", ratio_note("java", "hot", "c", "hot", "C's")),
            ("jna_raw", "loop", ratio_note("java", "jna_raw", "c", "hot", "C's: the JNA cost")),
            ("jna_empty", "loop", lambda r: "JNA's fixed cost per crossing"),
            ("cold_read", "dist", ratio_note("java", "cold_read", "rust", "cold_read", "Rust's")),
            ("handoff", "dist", ratio_note("java", "handoff", "rust", "handoff", "Rust's")),
        ],
        [
            "**Hot path**: one `TokenSource.accessToken()` per request on a fresh cached token, "
            "reading the token's value: two JNA crossings (`oauth_lock_source_access_token`, "
            "then `oauth_lock_token_free`). The wrapper keeps the last token handle and its Java "
            "copy, so while the cached token is unchanged no string is read or allocated. "
            "1 M calls × 15 rounds after 5 warm-up rounds (enough for the JIT). The same two C "
            "calls bound directly and one empty JNA call show how much of it is JNA's.",
            "**Cold read**: the first `accessToken()` of a new source on a key whose fresh record "
            "was written directly to disk. 400 keys.",
            "**Hand-off**: the main thread holds `<stem>.lock` with `flock(2)` (called through "
            "JNA: Java's `FileChannel.lock` is an `fcntl` lock, which does not exclude `flock`) "
            "while another thread is blocked in `accessToken()` on the expired record; the holder "
            "moves a fresh record into place and unlocks; time until the blocked call returns. "
            "200 rounds.",
        ],
    ),
    (
        "python",
        "Python",
        "./scripts/bench-python    # pip install ./bindings/python (release) into bench/.venv; bench/python/bench.py",
        [
            ("hot", "loop", lambda r: "target < 1 µs"),
            ("cached", "loop", blank),
            ("hot_async", "loop", lambda r: "the coroutine included"),
            ("peer_filelock", "loop", faster_note("python", "hot", "peer_filelock")),
            ("peer_msal_search", "loop", faster_note("python", "hot", "peer_msal_search")),
            ("peer_msal_locked", "loop", faster_note("python", "hot", "peer_msal_locked")),
            ("cold_read", "dist", blank),
            ("handoff", "dist", blank),
            ("peer_filelock_handoff", "dist", faster_note("python", "handoff", "peer_filelock_handoff")),
            ("peer_msal_handoff", "dist", faster_note("python", "handoff", "peer_msal_handoff")),
        ],
        [
            "**Hot path**: `access_token()` 1 M calls × 7 rounds, the token fresh in the "
            "process's slot. The call holds the GIL (releasing it would cost more than the work); "
            "Python's method call and the `AccessToken` object are most of it (the core's part is "
            "the Rust hot path).",
            "**Peer: `filelock`**: what Python users write by hand: take a `FileLock`, re-read and "
            "parse the JSON file, check the expiry, release — on every call.",
            "**Peer: msal-extensions** (Microsoft's token-cache persistence for MSAL): "
            "`PersistedTokenCache.search` for a cached access token, which `stat`s the cache file "
            "and re-reads it when it changed, without a lock; and the same inside its "
            "`CrossPlatLock`, as callers do to coordinate with a writer. Its `CrossPlatLock` here "
            "is the file-creation lock it falls back to without `portalocker` (its default "
            "install): the lock is a file created with `O_EXCL` and removed on release.",
            "**Cold read**: the first `access_token()` of a new source on a key whose fresh "
            "record was written directly to disk. 400 keys.",
            "**Hand-off**: the main thread holds `<stem>.lock` (`fcntl.flock`) while a second "
            "thread is blocked in `access_token()` on an expired record; the holder commits a "
            "fresh record and releases; time until the blocked call returns the new token "
            "(kernel wake-up, the core's re-read under the lock, the GIL re-taken). 100 rounds.",
            "**Hand-off peers**: the same shape with `filelock` (the waiter in `acquire()`, which "
            "sleeps `poll_interval` = 50 ms between attempts, then re-reads) and with "
            "msal-extensions (a second `PersistedTokenCache`, as another process has, blocked in "
            "`CrossPlatLock`, which retries every 250 ms, then `search`; the holder writes the "
            "new token through the persistence as `modify` does). The holder releases at a random "
            "moment of one poll interval, as a refresh of unknown length would, so the waiter "
            "wakes on average half an interval late.",
        ],
    ),
    (
        "node",
        "Node (`oauth-lock` npm package)",
        "./scripts/bench-node      # napi build --release, then node bench/node/bench.mjs",
        [
            ("hot", "loop", ratio_note("node", "hot", "node", "noop", "the trivial napi async call (target ≤ 3×)")),
            ("noop", "loop", lambda r: "the yardstick: what any napi-rs `async fn` Promise costs"),
            ("resolved", "loop", lambda r: "for scale"),
            ("peer_proper_lockfile", "loop", faster_note("node", "hot", "peer_proper_lockfile")),
            ("cold_read", "dist", blank),
            ("handoff", "dist", blank),
            ("peer_proper_lockfile_handoff", "dist", faster_note("node", "handoff", "peer_proper_lockfile_handoff")),
        ],
        [
            "**Hot path**: `accessToken()` in a tight `await` loop (200 000 calls × 15 rounds) "
            "while the process holds a fresh token. It never leaves the JS thread: one "
            "synchronous native call asks the core's `cached()` whether the fresh token is still "
            "the `AccessToken` object the JS layer holds. The trivial napi async call (a "
            "`#[napi] async fn` returning 0) hops to napi's tokio runtime and back through a "
            "threadsafe function, which is why every `await` that needs the core costs tens of µs "
            "and the hot path avoids it.",
            "**Peer: `proper-lockfile`**: what Node users write by hand (`handToken` in "
            "bench/node/bench.mjs): re-read and parse the JSON file on every call, and only when "
            "stale take a `proper-lockfile` lock (retries `{retries: 100, factor: 1.3, "
            "minTimeout: 5, maxTimeout: 100}`), re-read, refresh, write temp + rename, release.",
            "**Cold read**: the first `await accessToken()` of a new source on a key whose fresh "
            "record was written directly to disk (one promise settled from the core's runtime included). 400 keys.",
            "**Hand-off**: another process (`bench/node/lock_holder.py`: Node cannot `flock`) "
            "holds `<stem>.lock` while this process awaits `accessToken()` on the expired record; "
            "the holder commits a fresh record and releases; time (CLOCK_MONOTONIC in both "
            "processes) from the release to the Promise resolving with the new token — the kernel "
            "wake-up, the core's re-read, and the hop back to the JS thread. 40 rounds.",
            "**Hand-off peer**: the `proper-lockfile` routine in a second Node process polls the "
            "lock (`mkdir` retries with backoff) while this process holds it; the holder renames "
            "a fresh file into place and releases at a random moment of one backoff interval "
            "(100–200 ms after the loser started); time from `release()` resolving to the loser "
            "returning the new token. 40 rounds.",
        ],
    ),
]

CONTENTION_WORKERS = {
    "rust": "`oauth-lock worker` (the CLI's hidden demo worker), threads",
    "c": "`tests/c/multiprocess.c --client`, pthreads",
    "java": "`bench/jvm/Bench.java worker`, threads",
    "python": "`bench/python/bench.py worker`, threads",
    "node": "bindings/node `test/fixtures/racer.mjs`, the main thread + 1 `worker_thread`",
}

PEERS = [
    # (language, peer id, what it is, ours id, per call or hand-off)
    ("rust", "peer_read_parse", "read + parse the JSON file per call, no lock (by hand)", "hot"),
    ("python", "peer_filelock", "`filelock`: lock + re-read + unlock per call (by hand)", "hot"),
    ("python", "peer_msal_search", "msal-extensions `PersistedTokenCache.search` (no lock)", "hot"),
    ("python", "peer_msal_locked", "msal-extensions `CrossPlatLock` + `search`", "hot"),
    ("node", "peer_proper_lockfile", "`proper-lockfile` routine, fresh token (re-read per call)", "hot"),
    ("python", "peer_filelock_handoff", "hand-off: `filelock` waiter (polls every 50 ms)", "handoff"),
    ("python", "peer_msal_handoff", "hand-off: msal-extensions `CrossPlatLock` waiter (polls every 250 ms)", "handoff"),
    ("node", "peer_proper_lockfile_handoff", "hand-off: `proper-lockfile` waiter (backoff polling)", "handoff"),
]

TITLES = {k: t for k, t, *_ in LANGS}
SHORT = {"rust": "Rust", "c": "C", "java": "Java", "python": "Python", "node": "Node"}


# ---- machine facts --------------------------------------------------------------------------


def machine(langs: Results, run: Dict[str, Any]) -> List[Tuple[str, str]]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    v = lambda lang, name: langs.get(lang, {}).get("versions", {}).get(name, "not run")  # noqa: E731
    started = run.get("started_at_ms")
    when = datetime.datetime.fromtimestamp(
        (started or datetime.datetime.now().timestamp() * 1000) / 1000, datetime.timezone.utc
    )
    load = run.get("loadavg_start")
    facts = [
        ("date", when.strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs (`nproc`)"),
        ("memory", mem),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("load average (1 min) at start / end", f"{load[0]:.2f} / {os.getloadavg()[0]:.2f}" if load else f"? / {os.getloadavg()[0]:.2f}"),
        ("Rust", cmd("rustc", "-V") + ", release profile"),
        ("C compiler", cmd("cc", "--version")),
        ("Python", f"{v('python', 'python')}; filelock {v('python', 'filelock')}, msal {v('python', 'msal')}, msal-extensions {v('python', 'msal-extensions')} (`CrossPlatLock` from `{v('python', 'CrossPlatLock from')}`)"),
        ("Node", f"{v('node', 'node')}; proper-lockfile {v('node', 'proper-lockfile')}"),
        ("Java", f"{v('java', 'java')}; JNA {v('java', 'jna')}"),
    ]
    return facts


# ---- the plot -------------------------------------------------------------------------------


def plot(langs: Results, out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6.4), gridspec_kw={"width_ratios": [1.35, 1]})
    colors = {"rust": "#b7410e", "c": "#555555", "java": "#e76f00", "python": "#3776ab", "node": "#3c873a"}
    for lang in ["rust", "c", "java", "python", "node"]:
        m = langs.get(lang, {}).get("measurements", {}).get("handoff")
        if not m:
            continue
        s = sorted(m["samples_ns"])
        y = [(i + 1) / len(s) for i in range(len(s))]
        left.step([x / 1e3 for x in s], y, where="post", color=colors[lang], lw=2,
                  label=f"oauth-lock, {SHORT[lang]} (median {fmt(m['median_ns'])})")
    peers = [("python", "peer_filelock_handoff", "filelock (Python)", "#3776ab"),
             ("python", "peer_msal_handoff", "msal-extensions CrossPlatLock (Python)", "#7b3fa0"),
             ("node", "peer_proper_lockfile_handoff", "proper-lockfile (Node)", "#3c873a")]
    for lang, mid, name, color in peers:
        m = langs.get(lang, {}).get("measurements", {}).get(mid)
        if not m:
            continue
        s = sorted(m["samples_ns"])
        y = [(i + 1) / len(s) for i in range(len(s))]
        left.step([x / 1e3 for x in s], y, where="post", color=color, lw=2, ls="--",
                  label=f"peer: {name} (median {fmt(m['median_ns'])})")
    left.set_xscale("log")
    left.set_xlabel("hand-off latency, µs (log scale): lock released → blocked caller has the new token")
    left.set_ylabel("fraction of hand-offs ≤ x")
    left.set_title("Hand-off to a caller blocked behind a refresh (CDF)")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    left.set_ylim(0, 1.02)

    bars: List[Tuple[str, float, str]] = []
    for lang in ["rust", "c", "java", "python", "node"]:
        v = med(langs, lang, "hot")
        if v is not None:
            bars.append((f"oauth-lock, {SHORT[lang]}", v, colors[lang]))
    for lang, mid, name in [("rust", "peer_read_parse", "read + parse per call (Rust)"),
                            ("python", "peer_msal_search", "msal-extensions search (Python)"),
                            ("python", "peer_msal_locked", "msal CrossPlatLock + search (Python)"),
                            ("python", "peer_filelock", "filelock routine (Python)"),
                            ("node", "peer_proper_lockfile", "proper-lockfile routine (Node)")]:
        v = med(langs, lang, mid)
        if v is not None:
            bars.append((f"peer: {name}", v, "#999999"))
    names = [b[0] for b in bars][::-1]
    values = [b[1] / 1e3 for b in bars][::-1]
    right.barh(names, values, color=[b[2] for b in bars][::-1])
    for i, val in enumerate(values):
        right.text(val * 1.15, i, fmt(val * 1e3), va="center", fontsize=8)
    right.set_xscale("log")
    right.set_xlim(min(values) / 2 if values else 0.01, max(values) * 20 if values else 1)
    right.set_xlabel("median per call, µs (log scale)")
    right.set_title("Reading a fresh token, per call")
    right.tick_params(axis="y", labelsize=8)
    right.grid(True, axis="x", which="both", alpha=0.3)
    fig.suptitle("oauth-lock vs what users write instead — one run, one machine (docs/BENCHMARKS.md)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ---- the markdown ---------------------------------------------------------------------------


def row_name(mid: str, label: str) -> str:
    """The table's name of a measurement: its kind, then what the bench says it timed."""
    for prefix, kind in [("hot", "hot path"), ("cached", "hot path"), ("peer_", "peer"),
                         ("cold_read", "cold read"), ("handoff", "hand-off"),
                         ("full_refresh", "full refresh")]:
        if mid.startswith(prefix):
            return f"{kind}: {label}"
    return label


def measurement_table(langs: Results, lang: str, rows: List[Row]) -> List[str]:
    out = ["| measurement | median | spread | n | notes |", "| --- | ---: | --- | ---: | --- |"]
    ms = langs[lang]["measurements"]
    for mid, kind, note in rows:
        m = ms.get(mid)
        if m is None:
            continue
        if kind == "loop":
            spread = f"rounds {fmt(m['min_ns'])} – {fmt(m['max_ns'])}"
            n = f"{m['n']} rounds"
        else:
            spread = f"p99 {fmt(m['p99_ns'])}, max {fmt(m['max_ns'])}"
            n = str(m["n"])
        out.append(f"| {row_name(mid, m['label'])} | {fmt(m['median_ns'])} | {spread} | {n} | {note(langs)} |")
    return out


def contention_cell(c: Optional[Dict[str, Any]]) -> str:
    if not c:
        return "not run"
    r = c.get("refreshes_per_rotation")
    ratio = "n/a" if r is None else f"{r:.2f}"
    return f"{ratio} ({c['refreshes']}/{c['rotations']}), {c['replays']} replays"


def handoff_cell(langs: Results, lang: str) -> str:
    a, b = med(langs, lang, "handoff"), p99(langs, lang, "handoff")
    return "—" if a is None else f"{fmt(a)} / {fmt(b)}"


def summary_table(langs: Results, contention: Results) -> List[str]:
    out = [
        "| language | hot path (fresh token, per call) | cold read (first call) | hand-off p50 / p99 | refreshes per rotation under contention |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for lang, _title, *_ in LANGS:
        if lang not in langs and lang not in contention:
            out.append(f"| {SHORT[lang]} | not run | | | |")
            continue
        out.append(
            f"| {SHORT[lang]} | {fmt(med(langs, lang, 'hot'))} | {fmt(med(langs, lang, 'cold_read'))} | "
            f"{handoff_cell(langs, lang)} | {contention_cell(contention.get(lang))} |"
        )
    return out


def peers_table(langs: Results) -> List[str]:
    out = [
        "| peer (same run) | peer median | oauth-lock, same language | which way |",
        "| --- | ---: | ---: | --- |",
    ]
    for lang, mid, what, ours in PEERS:
        a, b = med(langs, lang, ours), med(langs, lang, mid)
        if a is None or b is None:
            continue
        ours_label = "hot path" if ours == "hot" else "hand-off"
        way = f"oauth-lock is {times(b, a)} faster" if b >= a else f"the peer is {times(a, b)} faster"
        out.append(f"| {SHORT[lang]}: {what} | {fmt(b)} | {fmt(a)} ({ours_label}) | {way} |")
    return out


def contention_table(contention: Results) -> List[str]:
    out = [
        "| language | worker processes | processes × threads, time | token calls | provider refreshes | rotations committed | refreshes ÷ rotations | replays | revoked families | client errors |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lang, *_ in LANGS:
        c = contention.get(lang)
        if not c:
            out.append(f"| {SHORT[lang]} | not run | | | | | | | | |")
            continue
        r = c.get("refreshes_per_rotation")
        errors = c["client_errors"] + len(c.get("worker_failures", []))
        out.append(
            f"| {SHORT[lang]} | {CONTENTION_WORKERS[lang]} | {c['processes']} × {c['threads']}, {c['seconds']:g} s "
            f"| {c['calls']} | {c['refreshes']} | {c['rotations']} | {'n/a' if r is None else f'{r:.2f}'} "
            f"| {c['replays']} | {c['revoked_families']} | {errors} |"
        )
    return out


def staleness(langs: Results, contention: Results, run: Dict[str, Any]) -> List[str]:
    started = run.get("started_at_ms")
    notes = []
    if any(doc.get("quick") for doc in langs.values()):
        notes.append("**This is a `BENCH_QUICK=1` smoke run** (few rounds): the figures are indicative only.")
    if started:
        old = sorted(
            {SHORT.get(d["lang"], d["lang"]) for d in list(langs.values()) + list(contention.values())
             if d.get("recorded_at_ms", 0) < started}
        )
        if old:
            notes.append(f"Results of {', '.join(old)} come from an earlier run than the others (their language's bench failed or was skipped in this one).")
    return notes


def benchmarks_md(langs: Results, contention: Results, run: Dict[str, Any],
                  waiters: Optional[Dict[str, Any]] = None) -> str:
    L: List[str] = []
    L += [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/report.py from the results of ./scripts/bench; edit the template there, not this file. -->",
        "",
        "Figures, not tests: nothing here asserts a time (the tests assert the counts). Every figure",
        "below comes from one run on one machine, and the peers — what users would write or pick",
        "instead — are measured in the same run. Regenerate this file, the plot and the README's",
        "summary with one command:",
        "",
        "```bash",
        "./scripts/bench                 # release builds, every language, the waiters, then bench/report.py (~9-10 min)",
        "BENCH_QUICK=1 ./scripts/bench   # a smoke run with few rounds (~3 min)",
        "./scripts/bench-<lang>          # one language alone (rust, c, jvm, python, node) → bench/results/",
        "./scripts/bench-waiters         # \"Waiters wake together\" alone → bench/results/waiters.json",
        "./scripts/bench --render        # re-render from bench/results/ without measuring",
        "```",
        "",
        "Each `scripts/bench-<lang>` writes `bench/results/<lang>.json` (medians, p99, and the samples)",
        "and `<lang>-contention.json`; `bench/report.py` (in `bench/.venv`, from the pinned",
        "`bench/requirements.txt`) renders them. Times are medians; a ratio always says which way it goes.",
        "",
    ]
    for n in staleness(langs, contention, run):
        L += [n, ""]
    L += ["## The machine", "", "| | |", "| --- | --- |"]
    L += [f"| {k} | {v} |" for k, v in machine(langs, run)]
    L += [
        "",
        "The load average says how busy the machine was: on a 2-core machine shared with builds and",
        "tests, absolute figures move by 2× or more between runs; ratios within one run hold better.",
        "",
        "## Summary",
        "",
    ]
    L += summary_table(langs, contention)
    L += [
        "",
        "- **hot path**: one call for a token while the process holds a fresh one — the cost per request.",
        "- **cold read**: the first call of a process for a credential that another process keeps fresh.",
        "- **hand-off**: a caller is blocked behind another holder's refresh; from the release of the",
        "  lock to the caller returning the new token.",
        "- **refreshes per rotation under contention**: several processes of the language on one",
        "  credential against the strict mock provider with 1 s tokens; refreshes the provider served ÷",
        "  rotations committed to the record. 1.00 is the promise: one refresh per expiry, none lost.",
        "",
        "### Against the peers",
        "",
    ]
    L += peers_table(langs)
    L += [
        "",
        f"![Hand-off latency CDF and per-call cost, oauth-lock per language vs the peers]({PLOT})",
        "",
        "The polling peers wake only at their next retry, so their hand-off is about half a poll",
        "interval (filelock 50 ms, msal-extensions 250 ms, proper-lockfile's backoff up to 100 ms);",
        "oauth-lock's waiter blocks in the kernel (`flock` on a dedicated thread) and wakes on release.",
        "",
        "## Refreshes per rotation under contention",
        "",
        "```bash",
        "python3 bench/contention.py --help     # run by every scripts/bench-<lang>",
        "```",
        "",
    ]
    L += contention_table(contention)
    L += [
        "",
        "`bench/contention.py` starts `oauth-lock mock-server --lifetime 1s` (it rotates the refresh",
        "token on every refresh and revokes the whole family when a spent one comes back), logs one",
        "credential into a fresh store, and starts the language's worker processes at once. Each",
        "worker loop takes a token, calls the mock's `/resource` with it and, on a 401, rejects the",
        "token and retries once. Afterwards it reads the provider's `/stats` and the record's",
        "`generation`: refreshes ÷ rotations = 1.00 means every refresh the provider served was",
        "committed exactly once (none duplicated by a race, none lost); replays and revoked families",
        "must be 0. Token calls count whole loops and depend mostly on the machine's load (JVM start-up",
        "and JIT warm-up take a large part of a few seconds on 2 busy cores).",
        "",
    ]
    for lang, title, command, rows, prose in LANGS:
        L += [f"## {title}", "", "```bash", command, "```", ""]
        if lang not in langs:
            L += ["Not run in this run.", ""]
            continue
        recorded = datetime.datetime.fromtimestamp(langs[lang]["recorded_at_ms"] / 1000, datetime.timezone.utc)
        versions = ", ".join(f"{k} {v}" for k, v in langs[lang].get("versions", {}).items())
        L += [f"Recorded {recorded:%Y-%m-%d %H:%M} UTC; {versions}.", ""]
        L += measurement_table(langs, lang, rows)
        L += [""] + [f"- {p}" for p in prose] + [""]
    L += waiters_section(waiters, run)
    L += [
        "## The demo",
        "",
        "`./scripts/demo` reports the end-to-end latency of `token` under load — 8 processes × 4",
        "threads, 1 s tokens, each call followed by an HTTP request to the mock's `/resource` — with",
        "exactly one refresh per rotation and 0 replays; its `--naive` run of the same load shows",
        "replays and a revoked token family within a second.",
        "",
    ]
    return "\n".join(L)


def readme_region(langs: Results, contention: Results) -> str:
    L = [
        "## Benchmarks",
        "",
        "<!-- Generated by bench/report.py (./scripts/bench); edit the template there. -->",
        "[`docs/BENCHMARKS.md`](docs/BENCHMARKS.md) has every figure, the machine and what each line",
        "measures, all regenerated by `./scripts/bench` (one language alone: `./scripts/bench-<lang>`).",
        "From its last run:",
        "",
        "| | hot path (per call) | hand-off p50 / p99 | refreshes per rotation | beside the peers (same run) |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    beside = {
        "rust": [("rust", "peer_read_parse", "hot", "reading + parsing the file per call")],
        "c": [],
        "java": [],
        "python": [("python", "peer_filelock", "hot", "a `filelock` routine"),
                   ("python", "peer_msal_locked", "hot", "msal-extensions `CrossPlatLock` + `search`")],
        "node": [("node", "peer_proper_lockfile", "hot", "a `proper-lockfile` routine")],
    }
    for lang, *_ in LANGS:
        if lang not in langs:
            L.append(f"| {SHORT[lang]} | not run | | | |")
            continue
        notes = []
        for plang, pid, ours, what in beside[lang]:
            a, b = med(langs, plang, ours), med(langs, plang, pid)
            if a is not None and b is not None:
                notes.append(f"{times(b, a)} faster than {what} ({fmt(b)})")
        if lang == "c" and med(langs, "rust", "hot") and med(langs, "c", "hot"):
            notes.append(f"{times(med(langs, 'c', 'hot'), med(langs, 'rust', 'hot'))} the time of Rust's hot path")  # type: ignore[arg-type]
        if lang == "java" and med(langs, "java", "jna_empty") is not None:
            notes.append(f"one empty JNA call: {fmt(med(langs, 'java', 'jna_empty'))}")
        c = contention.get(lang)
        L.append(
            f"| {SHORT[lang]} | {fmt(med(langs, lang, 'hot'))} | {handoff_cell(langs, lang)} | "
            f"{contention_cell(c)} | {'; '.join(notes)} |"
        )
    waits = [(lang, mid, name) for lang, mid, name in [
        ("python", "peer_filelock_handoff", "`filelock`'s"),
        ("python", "peer_msal_handoff", "msal-extensions'"),
        ("node", "peer_proper_lockfile_handoff", "`proper-lockfile`'s")] if med(langs, lang, mid) is not None]
    L += [""]
    if waits:
        ours = ", ".join(f"{fmt(med(langs, lang, 'handoff'))} ({SHORT[lang]})" for lang in ["rust", "python", "node"]
                         if med(langs, lang, "handoff") is not None)
        theirs = ", ".join(f"{name} {fmt(med(langs, lang, mid))}" for lang, mid, name in waits)
        L += [
            "A caller blocked behind another process's refresh has the new token a median "
            f"{ours} after the lock is released; the peers' waiters poll: {theirs}.",
            "",
        ]
    L += [f"![hand-off latency, oauth-lock per language vs the peers](docs/{PLOT})"]
    return "\n".join(L)


def write_readme(region: str) -> None:
    path = ROOT / "README.md"
    text = path.read_text()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        sys.exit("README.md has no bench markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{region}\n{end}{tail}")


# ---- waiters wake together (scripts/bench-waiters) ------------------------------------------

WAITERS_BEGIN, WAITERS_END = "<!-- waiters:begin -->", "<!-- waiters:end -->"
WAITER_SIZES = [2, 6, 16, 64]
EXACT_ROWS = [
    ("rust_holder", "oauth-lock, Rust (`oauth-lock probe` processes)"),
    ("python_holder", "oauth-lock, Python (`bench/waiters/probe.py` processes)"),
    ("node_holder", "oauth-lock, Node (`bench/waiters/probe.mjs` processes)"),
    ("kernel_sh", "kernel: `flock(LOCK_SH)` waiters, all woken at once (C)"),
    ("kernel_ex", "kernel: `flock(LOCK_EX)` waiters, in turn (C)"),
    ("filelock", "peer: `filelock` waiters, in turn (Python, polls every 50 ms)"),
]


def exact_rows(w: Dict[str, Any]) -> List[Tuple[str, str]]:
    """EXACT_ROWS, with the earlier build's Rust waiters after ours when the run had them
    (`BENCH_BEFORE=REV ./scripts/bench-waiters`)."""
    rows = list(EXACT_ROWS)
    if any(wentry(w, "rust_holder_before", n) for n in WAITER_SIZES):
        rev = w.get("before_rev") or "an earlier build"
        rows.insert(1, ("rust_holder_before", f"oauth-lock, Rust, the build of {rev} (same probe, same run)"))
    return rows


def load_waiters(results_dir: Path) -> Optional[Dict[str, Any]]:
    f = results_dir / "waiters.json"
    return json.loads(f.read_text()) if f.exists() else None


def wentry(w: Dict[str, Any], variant: str, n: int) -> Optional[Dict[str, Any]]:
    e = w.get("handoffs", {}).get("variants", {}).get(variant, {}).get(str(n))
    return e if e and e.get("rounds") else None


def wstat(w: Dict[str, Any], variant: str, n: int, what: str = "handoff", p: str = "p50_ns") -> Optional[float]:
    e = wentry(w, variant, n)
    return None if e is None else e[what][p]


def sfmt(ns: Optional[float]) -> str:
    """fmt() for a time that may be negative (a waiter back before the winner)."""
    if ns is None:
        return "—"
    return f"−{fmt(-ns)}" if ns < 0 else fmt(ns)


def pair(w: Dict[str, Any], variant: str, n: int, what: str = "handoff") -> str:
    e = wentry(w, variant, n)
    if e is None:
        return "not run"
    return f"{sfmt(e[what]['p50_ns'])} / {sfmt(e[what]['p99_ns'])}"


def size_header(first: str) -> List[str]:
    return [f"| {first} | " + " | ".join(f"{n} waiting" for n in WAITER_SIZES) + " |",
            "| --- | " + " | ".join("---:" for _ in WAITER_SIZES) + " |"]


def kernel_scale_sentence(w: Dict[str, Any]) -> str:
    """The kernel's own 64-vs-6 ratios in this run: what the 5× goal is up against on 2 CPUs."""
    p50 = (wstat(w, "kernel_sh", 64), wstat(w, "kernel_sh", 6))
    p99 = (wstat(w, "kernel_sh", 64, p="p99_ns"), wstat(w, "kernel_sh", 6, p="p99_ns"))
    if None in p50 or None in p99:
        return ""
    return (f"The same holds for the kernel's own `LOCK_SH` waiters: 64 against 6, {p50[0] / p50[1]:.1f}× at "
            f"p50 and {p99[0] / p99[1]:.1f}× at p99 in this run. A p99 over 10 rounds is their maximum, "
            "and scheduling noise on this shared machine reaches 1 ms even for C waiters, so one slow "
            "round moves the p99 ratio either way; the p50 ratio is the steadier measure of what 64 "
            "processes woken together on 2 cores cost.")


def waiters_goals(w: Dict[str, Any]) -> List[str]:
    def yes(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    out = ["| goal (issue 14, this machine) | this run | |", "| --- | --- | --- |"]
    last6, exact6 = wentry(w, "python", 6), wentry(w, "python_holder", 6)
    if last6:
        v = last6["last"]["p99_ns"]
        out.append(
            f"| the last of 6 Python waiters back within 1 ms of the winner (p99 over rounds) | {sfmt(v)} "
            f"(p50 {sfmt(last6['last']['p50_ns'])}, {last6['rounds']} rounds behind a real refresh) | {yes(v <= 1e6)} |")
    if exact6:
        v = exact6["last"]["p99_ns"]
        out.append(
            f"| the same, from the exact release (the winner may return late: see below) | {sfmt(v)} "
            f"(p50 {sfmt(exact6['last']['p50_ns'])}, {exact6['rounds']} rounds) | {yes(v <= 1e6)} |")
    node6 = wentry(w, "node_holder", 6)
    if node6:
        v = node6["last"]["p99_ns"]
        out.append(
            f"| the same for 6 Node waiters, from the exact release (no Node winner is run) | {sfmt(v)} "
            f"(p50 {sfmt(node6['last']['p50_ns'])}, {node6['rounds']} rounds) | {yes(v <= 1e6)} |")
    for variant, name in [("rust_holder", "Rust"), ("python_holder", "Python"), ("node_holder", "Node")]:
        a, b = wstat(w, variant, 64, p="p99_ns"), wstat(w, variant, 6, p="p99_ns")
        if a is None or b is None:
            continue
        out.append(f"| {name}: the 64-process hand-off p99 within 5× the 6-process p99 | {sfmt(a)} vs {sfmt(b)}: "
                   f"{a / b:.1f}× | {yes(a <= 5 * b)} |")
    # The same ratio for the kernel's own waiters, for scale: on 2 CPUs, 64 processes woken
    # together need ~10× the CPU time of 6 before the last one runs, whatever they do.
    a, b = wstat(w, "kernel_sh", 64, p="p99_ns"), wstat(w, "kernel_sh", 6, p="p99_ns")
    if a is not None and b is not None:
        out.append(f"| (for scale, not a goal) the kernel's own `LOCK_SH` waiters: 64 vs 6, p99 | {sfmt(a)} vs "
                   f"{sfmt(b)}: {a / b:.1f}× | the same measure for C processes that do nothing but wake |")
    cells, oks = [], []
    for n in WAITER_SIZES:
        a, b = wstat(w, "rust_holder", n), wstat(w, "kernel_sh", n)
        if a is None or b is None:
            continue
        cells.append(f"{n} waiting: {sfmt(a)} vs {sfmt(b)}, {a / b:.1f}×")
        oks.append((n, a <= 3 * b))
    if cells:
        good = [str(n) for n, ok in oks if ok]
        bad = [str(n) for n, ok in oks if not ok]
        verdict = ("**met**" if not bad else "**not met**" if not good else
                   f"met with {', '.join(good)} waiting; **not met** with {', '.join(bad)}")
        out.append("| Rust's hand-off p50 within 3× the raw kernel hand-off (C `LOCK_SH` waiters, as many) | "
                   + "; ".join(cells) + f" | {verdict} |")
    return out


def waiters_scale(w: Dict[str, Any]) -> List[str]:
    L: List[str] = []
    c = w.get("contention")
    if c:
        r = c.get("refreshes_per_rotation")
        errors = c["client_errors"] + len(c.get("worker_failures", []))
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(c.get("errors_by_kind", {}).items()))
        L += [
            f"**{c['processes']} processes × {c['threads']} threads on one credential** (`oauth-lock worker`, "
            f"run as bench/contention.py runs it; 1 s tokens, {c['seconds']:g} s, {c['wall_s']:g} s wall):",
            "",
            "| token calls | provider refreshes | rotations committed | refreshes ÷ rotations | replays | revoked families "
            "| token call p50 / p99 / max | client errors |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            f"| {c['calls']} | {c['refreshes']} | {c['rotations']} | {'n/a' if r is None else f'{r:.2f}'} | "
            f"{c['replays']} | {c['revoked_families']} | {fmt(c.get('token_call_p50_ns'))} / "
            f"{fmt(c.get('token_call_p99_ns'))} / {fmt(c.get('token_call_max_ns'))} | {errors}"
            + (f" ({kinds})" if kinds else "") + " |",
            "",
            "Each worker thread loops: a token, then the mock's `/resource` with it, and on a 401 `reject` and",
            "retry; an error is counted by its code (`ResourceUnreachable`: the HTTP call to the mock",
            "failed). The latencies are the workers' samples of the token call alone.",
            "",
        ]
    st = w.get("store")
    if st:
        n = st["credentials"]
        ns = f"{n:,}".replace(",", " ")
        one = st["hot_one_credential_ns"]
        calls = f"{st['probe']['calls']:,}".replace(",", " ")

        def vs(v: float) -> str:
            return f"{fmt(v)} ({times(v, one)} the one-credential figure)"

        L += [
            f"**A store of {ns} credentials** (records written directly, fresh; bench/waiters/scale_probe.c "
            f"through the C ABI, the core's hot path plus the ABI's ~20 ns; medians of "
            f"{st['probe']['rounds']} rounds × {calls} calls):",
            "",
            "| | |",
            "| --- | ---: |",
            f"| hot path, a store with one credential | {fmt(one)} |",
            f"| hot path, one credential of the {ns} on disk | {vs(st['hot_big_store_ns'])} |",
            f"| hot path, after this process loaded all {ns} (a slot each) | {vs(st['hot_all_loaded_ns'])} |",
            f"| hot path, cycling over all {ns} sources (a different slot each call) | {vs(st['cycle_all_ns'])} |",
            f"| loading them: new source + first token, per credential | {fmt(st['load_all_per_credential_ns'])} |",
            f"| memory per slot: RSS growth ÷ {ns}, source and token handles held | {st['bytes_per_slot'] / 1024:.1f} KiB |",
            f"| the same after freeing the {ns} source handles | {st['bytes_per_slot_sources_freed'] / 1024:.1f} KiB |",
            f"| `oauth-lock status` (lists all {ns}), wall time, median of {len(st['status_ns'])} | {fmt(st['status_p50_ns'])} |",
            f"| `oauth-lock status --json`, all {ns} | {fmt(st['status_json_ns'])} |",
            f"| `oauth-lock status` on a store with one credential (the process's start) | {fmt(st['status_one_credential_p50_ns'])} |",
            "",
        ]
    return L


def waiters_where(w: Dict[str, Any]) -> List[str]:
    """Where the time goes: the single-waiter gap to the kernel, and the cost of each further
    waiting process (on 2 cores, hand-offs of many processes are CPU-bound)."""
    L = ["### Where the time goes", ""]
    a2, k2 = wstat(w, "rust_holder", 2), wstat(w, "kernel_sh", 2)
    if a2 is not None and k2 is not None:
        L += [f"- With 2 waiting, the kernel wakes a `LOCK_SH` waiter in {sfmt(k2)} (p50) and oauth-lock's Rust "
              f"waiter is back with the token in {sfmt(a2)}: {sfmt(a2 - k2)} is the core's own part of the path."]
    slopes = []
    for variant, name in [("kernel_sh", "the kernel's `LOCK_SH` waiters"), ("kernel_ex", "`LOCK_EX` waiters in turn"),
                          ("rust_holder", "oauth-lock's Rust waiters"),
                          ("rust_holder_before", f"the Rust waiters of {w.get('before_rev') or 'the earlier build'}"),
                          ("python_holder", "its Python waiters"),
                          ("node_holder", "its Node waiters")]:
        hi, lo = wstat(w, variant, 64, "last"), wstat(w, variant, 16, "last")
        if hi is not None and lo is not None:
            slopes.append(f"{name} {sfmt((hi - lo) / 48)}")
    if slopes:
        L += ["- Each further waiting process adds to the last one's return (p50 of the last waiter, from 16 to 64 "
              "waiting, ÷ 48): " + ", ".join(slopes) + ". With 2 cores and every waiter runnable at once, that is "
              "about half the CPU each one spends from its wake-up to its return."]
    L += [
        "- The path of one waiter after the kernel's wake-up, as the code stands (core/src/lock.rs",
        "  `wait_released_watching`, core/src/protocol.rs `after_release`): a blocking caller (Rust's",
        "  `access_token_blocking`, Python's `access_token()`) runs the flight it starts on its own",
        "  thread and polls the close watch there: the holder's close wakes that thread, which takes",
        "  and drops a non-blocking `LOCK_SH`, re-reads the record, adopts and returns: one thread per",
        "  process, as the C waiter. (Before, a thread of the core's blocking pool blocked in",
        "  `flock(LOCK_SH)` and woke the caller: two; `flock` has no timeout, so the caller's own",
        "  thread could not block in it.) Python then re-takes the GIL and builds the `AccessToken`.",
        "  Node's `accessToken()` returns a promise that the core's runtime settles: the close wakes a",
        "  worker of the core's runtime (its reactor; the leader's task, then the call's own task),",
        "  which queues the promise's resolution to the JS thread: two threads per process (three",
        "  until commit dc1199e, when a thread of napi's own runtime awaited the call in between).",
        "",
    ]
    return L


def cpu_note(w: Dict[str, Any]) -> str:
    parts = []
    for key, what in [("cpu_handoffs", "the hand-offs"), ("cpu_contention", "the 64 × 8 run"),
                      ("cpu_store", "the store figures")]:
        c = w.get(key)
        if c:
            parts.append(f"{c['others_cpus']:.2f} during {what}")
    if not parts:
        return ""
    listed = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return (f" Other processes (/proc/stat's busy time minus this run's own CPU time) used on average, of "
            f"the {w.get('cpus', '?')} CPUs, {listed}.")


def waiters_section(w: Optional[Dict[str, Any]], run: Dict[str, Any], alone: bool = False) -> List[str]:
    L = [
        WAITERS_BEGIN,
        "## Waiters wake together",
        "",
        "```bash",
        "./scripts/bench-waiters   # bench/waiters/waiters.py: probes in Rust, Python, Node and C, the filelock peer, the scale figures",
        "```",
        "",
    ]
    if not w:
        return L + ["Not run in this run.", "", WAITERS_END, ""]
    rec = datetime.datetime.fromtimestamp(w["recorded_at_ms"] / 1000, datetime.timezone.utc)
    v = w.get("versions", {})
    ls, lh, le = w["loadavg_start"][0], w.get("loadavg_after_handoffs", [None])[0], w["loadavg_end"][0]
    L += [
        f"Recorded {rec:%Y-%m-%d %H:%M} UTC in one run of {w['wall_s']:g} s ({w['handoffs_s']:g} s of hand-offs"
        + (f", {w['scale_s']:g} s of scale figures" if "scale_s" in w else "")
        + f") on {w['cpus']} logical CPUs; load average (1 min) {ls:.2f} at the start, "
        + (f"{lh:.2f} after the hand-offs, " if lh is not None else "")
        + f"{le:.2f} at the end (the run's own processes count in it)."
        + cpu_note(w)
        + f" {v.get('oauth-lock', '?')} at commit {v.get('commit', '?')}"
        + ("" if v.get("uncommitted", "none") == "none" else f" (uncommitted changes in {v['uncommitted']})")
        + f"; Python {v.get('python', '?')}, filelock {v.get('filelock', '?')}; Node {v.get('node', '?')}; {v.get('cc', '?')}.",
        "",
    ]
    if w.get("quick"):
        L += ["**This is a `BENCH_QUICK=1` smoke run** (few rounds): the figures are indicative only.", ""]
    started = run.get("started_at_ms")
    if started and w.get("started_at_ms", 0) < started:
        L += ["These figures come from an earlier run than the rest of this file (`scripts/bench-waiters` failed or "
              "was skipped in this one).", ""]
    if alone:
        L += ["This section comes from a run of `./scripts/bench-waiters` alone (its own machine facts are",
              "above); the rest of this file from the run described under \"The machine\".", ""]
    h = w["handoffs"]
    rounds = h.get("rounds_per_size", {})
    L += [
        "Processes that find a credential's lock held by a refresh wait for its release without",
        "taking it (on Linux a close watch of the lock file, then a non-blocking shared `flock`;",
        "elsewhere a shared `flock` that the holder's exclusive lock blocks); all wake at the release,",
        "re-read and adopt; none takes the exclusive lock unless the record is still stale",
        "(DESIGN.md §4 step 2.3). Here N processes",
        "wait behind one holder; rounds per N: "
        + ", ".join(f"{n}: {rounds.get(str(n), rounds.get(n, '?'))}" for n in WAITER_SIZES)
        + "; the variants run interleaved, round by round.",
        "",
        "### The goals",
        "",
    ]
    L += waiters_goals(w)
    L += [
        "",
        "### Hand-off from the release",
        "",
        "A holder (`bench/waiters/flock_probe.c hold`) has `<stem>.lock`; N processes are blocked behind",
        "it (each seen in the kernel's lock table, `/proc/locks`, or, for oauth-lock's waiters, with",
        "a close watch on the lock file in `/proc/PID/fdinfo`); it renames a fresh record into",
        "place — another process's commit — and releases (unlocks, then closes, as oauth-lock's",
        "holder does), stamping the moment just before `flock(LOCK_UN)`. A waiter's hand-off is its",
        "return with the new token minus that stamp (CLOCK_REALTIME in every process). p50 / p99",
        "over every waiter of every round:",
        "",
    ]
    L += size_header("release → waiter back with the token, p50 / p99")
    for variant, name in exact_rows(w):
        L.append(f"| {name} | " + " | ".join(pair(w, variant, n) for n in WAITER_SIZES) + " |")
    L += ["", "The last waiter of each round, p50 / p99 over rounds:", ""]
    L += size_header("release → the last waiter back, p50 / p99")
    for variant, name in exact_rows(w):
        L.append(f"| {name} | " + " | ".join(pair(w, variant, n, "last") for n in WAITER_SIZES) + " |")
    L += [
        "",
        "- The C waiters call `flock(2)` on the lock file and print the time it returned: the",
        "  kernel's own hand-off, with nothing of oauth-lock. `LOCK_SH` waiters all wake at the",
        "  release, as oauth-lock's shared wait does; `LOCK_EX` waiters take the lock in turn (each",
        "  unlocks at once), which is what every waiter paid before this change: the k-th back",
        "  after k hand-offs.",
        "- oauth-lock's waiter is one `access_token()` call of a fresh process on an expired record:",
        "  an unlocked read, `try_lock` failing, the shared wait (on Linux a close watch of the lock",
        "  file, inotify, which the holder's close wakes; a blocking call polls it on its own thread,",
        "  so the caller's thread is the one the kernel wakes, as the C waiter's is), a non-blocking",
        "  `LOCK_SH` to see the holder gone, then the re-read and adopt. Node's: see below. Python's",
        "  call includes the GIL re-taken and the `AccessToken` object.",
        "- What is left over the kernel is CPU per waking process (the inotify read and the",
        "  `LOCK_SH` check, the re-read, the interpreter's own work after the return), which 2 CPUs",
        "  pay N times: the",
        "  ratio grows with N. " + kernel_scale_sentence(w),
        "- The woken processes mostly run one after another, on one CPU: this machine's kernel puts",
        "  a process a release wakes on the CPU of the process that released, and the other CPU",
        "  takes some of them only at its next balancing (`perf sched timehist` of a round of 6",
        "  Python waiters: 5 queued on the releasing CPU while the other stayed idle 0.9 ms). The",
        "  last waiter's figure is then close to the sum of every waking process's CPU.",
        "- Every probe reports after the round, not at its return: Python's and Node's print their",
        "  JSON when the harness asks (a line on stdin once the round is over), `oauth-lock probe`",
        "  blocks in the write of its report (a full pipe), the C waiters print with a few µs of",
        "  `printf`. A probe that printed at once took CPU (some 40 µs for Python's `json.dumps` and",
        "  `print`) from the waiters still waiting for one, and that counted in their figures.",
        "  Before commit 201cf6d Python's and Node's probes printed at once (a trial here, 6 Python",
        "  waiters behind a release, 15 rounds each way: the last back p50 841 → 625 µs, the",
        "  slowest of 15 rounds 1.14 ms → 738 µs).",
        "- `filelock` waiters sleep `poll_interval` (50 ms) between non-blocking attempts; the holder",
        "  releases at a random moment of one interval (after writing the fresh file, which each",
        "  waiter then re-reads under the lock), so they come back in turn, at their next poll.",
        "",
        "### Behind a real refresh",
        "",
        f"The issue's own set-up: one process refreshes an expired credential at `oauth-lock mock-server "
        f"--latency {h.get('mock_latency', '?')}` (the winner) while N more",
        "block behind it: `oauth-lock probe` processes (started together with `--start-at-ns`, 40 ms",
        "after the winner), or `bench/waiters/probe.py` processes (started by a line on stdin once",
        "the winner holds the lock). Each prints when it returned; a waiter's figure is its return",
        "minus the winner's. The winner returns a few µs after its release when it runs at once, but",
        "with N processes waking on 2 cores the scheduler often runs waiters first: they come back",
        "\"before\" the winner (negative), and these figures are then short by as much.",
        "",
    ]
    L += size_header("back after the winner")
    for variant, name in [("rust", "Rust"), ("python", "Python")]:
        L.append(f"| {name}: a waiter, p50 / p99 | " + " | ".join(pair(w, variant, n) for n in WAITER_SIZES) + " |")
        L.append(f"| {name}: the last waiter of a round, p50 / p99 over rounds | "
                 + " | ".join(pair(w, variant, n, "last") for n in WAITER_SIZES) + " |")
        cells = []
        for n in WAITER_SIZES:
            e = wentry(w, variant, n)
            cells.append("—" if e is None else f"{e['negative']} of {e['handoff']['n']}")
        L.append(f"| {name}: waiters back before the winner | " + " | ".join(cells) + " |")
    L += ["", "What the core's counters (`oauth-lock probe` prints them) and the provider say:", ""]
    L += size_header("per N, over its rounds")
    rows: List[Tuple[str, Callable[[Dict[str, Any]], str], str]] = [
        ("Rust rounds (discarded and re-run)", lambda e: f"{e['rounds']} ({e['discarded_rounds']})", "rust"),
        ("Rust waiters that took the exclusive lock", lambda e: f"{e.get('waiter_exclusive_locks', '—')} of {e['handoff']['n']}", "rust"),
        ("Rust waiters' shared waits", lambda e: f"{e.get('waiter_shared_waits', '—')} of {e['handoff']['n']}", "rust"),
        ("provider refreshes per Rust round", lambda e: f"{e.get('provider_refreshes', 0) / e['rounds']:.2f}", "rust"),
        ("Python rounds (discarded and re-run)", lambda e: f"{e['rounds']} ({e['discarded_rounds']})", "python"),
        ("provider refreshes per Python round", lambda e: f"{e.get('provider_refreshes', 0) / e['rounds']:.2f}", "python"),
        ("Rust waiters behind the holder that took the exclusive lock",
         lambda e: f"{e.get('waiter_exclusive_locks', '—')} of {e['handoff']['n']}", "rust_holder"),
    ]
    for name, cell, variant in rows:
        vals = []
        for n in WAITER_SIZES:
            e = wentry(w, variant, n)
            vals.append("—" if e is None else cell(e))
        L.append(f"| {name} | " + " | ".join(vals) + " |")
    L += ["", f"Replays at the provider over all these rounds: {h.get('provider_replays', '?')}.", ""]
    L += waiters_where(w)
    scale = waiters_scale(w)
    if scale:
        L += ["### Scale", ""] + scale
    L += [WAITERS_END, ""]
    return L


# Sections written by scripts of their own (scripts/bench-go, scripts/bench-fleet), not rendered
# here: a full render keeps them as they are, at the end.
KEPT_SECTIONS = ("## Go", "## Fleet store")


def kept_sections(text: str) -> str:
    """The KEPT_SECTIONS of `text`, each from its heading to the next `## ` heading."""
    out: List[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() in KEPT_SECTIONS:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("## "):
                j += 1
            out.append("\n".join(lines[i:j]).rstrip("\n"))
            i = j
        else:
            i += 1
    return "\n\n".join(out) + ("\n" if out else "")


def splice_waiters(section: List[str]) -> None:
    """Replaces (or adds, before "## The demo") the waiters section of docs/BENCHMARKS.md,
    leaving the rest as it was rendered: for a run of ./scripts/bench-waiters alone."""
    path = DOCS / "BENCHMARKS.md"
    text = path.read_text()
    new = "\n".join(section)
    if WAITERS_BEGIN in text and WAITERS_END in text:
        head, rest = text.split(WAITERS_BEGIN, 1)
        _, tail = rest.split(WAITERS_END, 1)
        text = head + new.rstrip("\n") + tail
    elif "## The demo" in text:
        head, tail = text.split("## The demo", 1)
        text = head + new + "\n## The demo" + tail
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text)


def main() -> None:
    results_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results"))
    langs, contention, run = load(results_dir)
    waiters = load_waiters(results_dir)
    if not langs and waiters and (DOCS / "BENCHMARKS.md").exists():
        # ./scripts/bench-waiters alone: only its section is rendered; the rest stays as it was.
        splice_waiters(waiters_section(waiters, run, alone=True))
        print(f"wrote the \"Waiters wake together\" section of docs/BENCHMARKS.md from {results_dir}/waiters.json "
              "(no language results there: the rest of the file is left as it was)")
        return
    if not langs:
        sys.exit(f"no results in {results_dir}: run ./scripts/bench (or a scripts/bench-<lang>) first")
    DOCS.mkdir(exist_ok=True)
    plot(langs, DOCS / PLOT)
    text = benchmarks_md(langs, contention, run, waiters)
    old = DOCS / "BENCHMARKS.md"
    kept = kept_sections(old.read_text()) if old.exists() else ""
    (DOCS / "BENCHMARKS.md").write_text(text.rstrip("\n") + ("\n\n" + kept if kept else "\n"))
    write_readme(readme_region(langs, contention))
    print(f"wrote docs/BENCHMARKS.md, docs/{PLOT} and the README's bench region from {results_dir}")


if __name__ == "__main__":
    main()
