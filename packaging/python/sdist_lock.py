"""Makes the sdist's Cargo.lock match the workspace the sdist holds, so that it builds with
`--locked` (`maturin build --locked`, `cargo build --locked`, distribution packagers).

`maturin sdist` copies the repository's Cargo.lock but trims the workspace to the crates
the Python package needs (the core and bindings/python), so the lock still lists the CLI's,
the FFI's, the Node binding's… dependencies and cargo refuses it under `--locked`
(maturin issue #2609, open for maturin 1.16). This lets cargo drop those entries
(`cargo metadata --offline`: the minimal sync, no re-resolution), checks that every package
left is pinned exactly as before (name, version, source, checksum) and that cargo now
accepts the lock with `--locked`, and rewrites the sdist with that lock, every other member
byte for byte as maturin wrote it.

usage: python sdist_lock.py dist/python/oauth_lock-<v>.tar.gz   (needs cargo)
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

Pin = Tuple[str, str, str, str]


def pins(lock: bytes) -> Set[Pin]:
    return {
        (p["name"], p["version"], p.get("source", ""), p.get("checksum", ""))
        for p in tomllib.loads(lock.decode())["package"]
    }


def cargo_metadata(manifest: Path, *flags: str) -> None:
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--offline", *flags,
         "--manifest-path", str(manifest)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    sdist = Path(sys.argv[1])
    members: List[Tuple[tarfile.TarInfo, Optional[bytes]]] = []
    with tarfile.open(sdist) as t:
        for m in t.getmembers():
            f = t.extractfile(m) if m.isfile() else None
            members.append((m, f.read() if f is not None else None))
    top = members[0][0].name.split("/")[0]
    files: Dict[str, bytes] = {m.name: data for m, data in members if data is not None}
    old_lock = files[f"{top}/Cargo.lock"]

    with tempfile.TemporaryDirectory() as d:
        for name, data in files.items():
            path = Path(d) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        manifest = Path(d) / top / "Cargo.toml"
        cargo_metadata(manifest)  # the crates are in cargo's cache: the wheel was just built
        new_lock = (Path(d) / top / "Cargo.lock").read_bytes()
        if new_lock == old_lock:
            print(f"{sdist.name}: its Cargo.lock already matches its workspace")
            return
        # Only removals: no package added, no pin changed.
        old, new = pins(old_lock), pins(new_lock)
        assert new <= old, f"the pruned lock changed pins: {sorted(new - old)}"
        dropped = sorted({name for name, *_ in old - new})
        # The pruned lock is what cargo wants: --locked accepts it now.
        cargo_metadata(manifest, "--locked")

    buffer = io.BytesIO()
    mtime = max(m.mtime for m, _ in members)
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=mtime) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as out:
            for m, content in members:
                if m.name == f"{top}/Cargo.lock":
                    content, m.size = new_lock, len(new_lock)
                out.addfile(m, io.BytesIO(content) if content is not None else None)
    sdist.write_bytes(buffer.getvalue())
    print(
        f"{sdist.name}: Cargo.lock pruned to its workspace ({len(old - new)} packages only the "
        f"repository's other crates use, e.g. {', '.join(dropped[:4])}); "
        f"the {len(new)} pins left are unchanged and cargo accepts them with --locked"
    )


if __name__ == "__main__":
    main()
