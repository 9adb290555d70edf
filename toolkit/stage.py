"""`.done` markers that let a recipe skip a stage only while its inputs and options are unchanged.

The marker holds a hash of the stage's options and of its inputs' contents. An input that is a file is hashed whole;
an input that is a directory is hashed by the files directly inside it (a data dir's tables, not the audio they
point to: wav.scp names the audio, so a changed path changes the hash). Outputs must still exist for a skip.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from toolkit.fileio import atomic_write

CHUNK = 1 << 20


def _hash_file(path: Path, digest) -> None:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)


def inputs_hash(inputs: list[str], options: str) -> str:
    digest = hashlib.sha256()
    digest.update(options.encode("utf-8"))
    for name in inputs:
        path = Path(name)
        digest.update(b"\0input\0" + name.encode("utf-8"))
        if path.is_file():
            _hash_file(path, digest)
        elif path.is_dir():
            for child in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
                digest.update(b"\0file\0" + child.name.encode("utf-8"))
                _hash_file(child, digest)
        else:
            digest.update(b"\0missing\0")
    return digest.hexdigest()


def is_done(marker: str | Path, inputs: list[str], options: str, outputs: list[str]) -> tuple[bool, str]:
    """(True, why) when the marker matches; (False, why not) otherwise."""
    marker = Path(marker)
    if not marker.exists():
        return False, "not run yet"
    try:
        recorded = json.loads(marker.read_text())
    except (json.JSONDecodeError, OSError):
        return False, "the .done marker is unreadable"
    if recorded.get("hash") != inputs_hash(inputs, options):
        if recorded.get("options") != options:
            return False, "options changed"
        return False, "inputs changed"
    missing = [o for o in outputs if not Path(o).exists()]
    if missing:
        return False, f"output missing: {missing[0]}"
    return True, f"done at {recorded.get('time', '?')}, inputs and options unchanged"


def mark_done(marker: str | Path, inputs: list[str], options: str) -> None:
    record = {"hash": inputs_hash(inputs, options), "options": options, "inputs": inputs, "time": time.ctime()}
    with atomic_write(marker) as f:
        json.dump(record, f, indent=1)
