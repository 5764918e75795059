"""Refreshes per rotation under contention, for one language's worker processes.

Starts `oauth-lock mock-server --lifetime 1s` (the strict provider: rotates the refresh
token on every refresh, revokes the family on a replay), logs one credential ("soak") into a
fresh store, runs PROCESSES copies of the language's worker command at once for SECONDS
(each: THREADS threads taking a token and calling the mock's /resource, rejecting on 401),
then reads the provider's /stats and the record's generation and writes one JSON file:
refreshes at the provider ÷ rotations committed to the store (1.00 means every refresh the
provider served was committed exactly once), replays, revoked families, client errors.

A figure, not a test (the tests assert these counts); stdlib only, so any python3 runs it.

Usage: contention.py --lang L --cli OAUTH_LOCK_BIN --out FILE [--processes P] [--threads T]
       [--seconds S] -- WORKER_COMMAND…   (placeholders: {store} {mock} {key} {threads}
       {seconds} {millis})
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Dict, List


def http_json(method: str, url: str) -> Any:
    req = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def generation(cli: str, store: str) -> int:
    out = subprocess.run(
        [cli, "--dir", store, "status", "soak", "--json"], check=True, capture_output=True
    ).stdout
    status = json.loads(out)
    if isinstance(status, list):
        status = status[0]
    return int(status["generation"])


def worker_counts(stdout: str) -> Dict[str, int]:
    """calls and errors from a worker's output: a JSON line (Rust, Python, Node workers) or
    the C and Java soak workers' `calls N ok N recovered N errors N` line."""
    calls = errors = 0
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            calls += int(doc.get("calls", 0))
            errs = doc.get("errors", 0)
            errors += sum(errs.values()) if isinstance(errs, dict) else int(errs)
        else:
            m = re.search(r"calls (\d+).*errors (\d+)", line)
            if m:
                calls += int(m.group(1))
                errors += int(m.group(2))
    return {"calls": calls, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        ap.error("no worker command")

    with tempfile.TemporaryDirectory(prefix="oauth-lock-contention-") as tmp:
        store = os.path.join(tmp, "store")
        mock = subprocess.Popen(
            [a.cli, "mock-server", "--port", "0", "--lifetime", "1s"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert mock.stdout is not None
            line = mock.stdout.readline().strip()
            if not line.startswith("listening on "):
                sys.exit(f"contention: the mock said {line!r}")
            url = line.removeprefix("listening on ")
            login = http_json("POST", url + "/login")
            subprocess.run(
                [a.cli, "--dir", store, "save", "soak", "--token-url", url + "/oauth/token",
                 "--client-id", "oauth-lock-demo"],
                input=json.dumps(login), text=True, check=True, capture_output=True,
            )
            before = http_json("GET", url + "/stats")
            gen0 = generation(a.cli, store)
            fill = {
                "store": store, "mock": url, "key": "soak", "threads": str(a.threads),
                "seconds": f"{a.seconds:g}", "millis": str(int(a.seconds * 1000)),
            }
            argv = [part.format(**fill) for part in command]
            env = dict(os.environ, OAUTH_LOCK_DIR=store)
            started = time.monotonic()
            procs = [
                subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for _ in range(a.processes)
            ]
            outputs = [p.communicate(timeout=a.seconds + 120) for p in procs]
            wall = time.monotonic() - started
            after = http_json("GET", url + "/stats")
            gen1 = generation(a.cli, store)
        finally:
            mock.kill()
            mock.wait()

    failures: List[str] = []
    calls = errors = 0
    for p, (out, err) in zip(procs, outputs):
        c = worker_counts(out)
        calls += c["calls"]
        errors += c["errors"]
        if p.returncode != 0:
            failures.append(f"exit {p.returncode}: {(err.strip() or out.strip())[-600:]}")
    delta = {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in after if isinstance(after[k], int)}
    rotations = gen1 - gen0
    result = {
        "lang": a.lang,
        "processes": a.processes,
        "threads": a.threads,
        "seconds": a.seconds,
        "wall_s": round(wall, 2),
        "token_lifetime_s": 1,
        "calls": calls,
        "client_errors": errors,
        "worker_failures": failures,
        "refreshes": delta.get("refreshes", 0),
        "rotations": rotations,
        "refreshes_per_rotation": delta.get("refreshes", 0) / rotations if rotations else None,
        "replays": delta.get("replays", 0),
        "revoked_families": delta.get("revoked_families", 0),
        "invalid_grants": delta.get("invalid_grants", 0),
        "resource_ok": delta.get("resource_ok", 0),
        "resource_unauthorized": delta.get("resource_unauthorized", 0),
        "recorded_at_ms": int(time.time() * 1000),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    rpr = result["refreshes_per_rotation"]
    print(
        f"{a.lang} contention: {a.processes} processes x {a.threads} threads, {a.seconds:g} s, 1 s tokens: "
        f"{calls} calls, {result['refreshes']} refreshes / {rotations} rotations = "
        f"{'n/a' if rpr is None else f'{rpr:.2f}'}, {result['replays']} replays, "
        f"{result['revoked_families']} revoked, {errors} client errors"
    )
    for f in failures:
        print(f"  worker failed: {f}", file=sys.stderr)


if __name__ == "__main__":
    main()
