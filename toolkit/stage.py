"""`.done` markers that let a recipe skip a stage only while its inputs, options and outputs are unchanged.

The marker holds a hash of the stage's options and of its inputs, and a fingerprint of each output as the stage
left it. A file is hashed whole; a directory by the files directly inside it (a data dir's tables) and, when it has a
wav.scp, by the size and modification time of every audio file that wav.scp names, so that audio edited in place
counts as changed. A skip needs the inputs and options unchanged and every output present and as it was written:
an output deleted, half-rewritten by a killed rerun, or edited since is redone. The recipe driver also removes the
marker before a stage starts, so a stage that dies leaves none behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from toolkit.fileio import atomic_write

CHUNK = 1 << 20


def _hash_file(path: Path, digest) -> None:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)


def _hash_audio_stats(wav_scp: Path, digest) -> None:
    """Size and mtime of each audio file wav.scp names (a pipe is covered by its command, in wav.scp itself)."""
    with open(wav_scp, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(maxsplit=1)
            if len(parts) < 2 or parts[1].rstrip().endswith("|"):
                continue
            try:
                st = os.stat(parts[1].strip())
                digest.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(b"missing\n")


def fingerprint(name: str) -> str:
    """Hash of one input or output: a file's content, a directory's files (and its audio), or 'missing'."""
    path = Path(name)
    digest = hashlib.sha256()
    if path.is_file():
        _hash_file(path, digest)
    elif path.is_dir():
        for child in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
            digest.update(b"\0file\0" + child.name.encode("utf-8"))
            _hash_file(child, digest)
        if (path / "wav.scp").is_file():
            digest.update(b"\0audio\0")
            _hash_audio_stats(path / "wav.scp", digest)
    else:
        return "missing"
    return digest.hexdigest()


def inputs_hash(inputs: list[str], options: str) -> str:
    digest = hashlib.sha256()
    digest.update(options.encode("utf-8"))
    for name in inputs:
        digest.update(b"\0input\0" + name.encode("utf-8") + b"\0" + fingerprint(name).encode())
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
    written = recorded.get("outputs", {})
    for name in outputs:
        if name not in written:
            return False, f"output not recorded by the last run: {name}"
        if written[name] != fingerprint(name):
            return False, f"output changed since the stage wrote it: {name}"
    return True, f"done at {recorded.get('time', '?')}, inputs, options and outputs unchanged"


def mark_done(marker: str | Path, inputs: list[str], options: str, outputs: list[str] | None = None) -> None:
    outputs = outputs or []
    record = {
        "hash": inputs_hash(inputs, options),
        "options": options,
        "inputs": inputs,
        "outputs": {name: fingerprint(name) for name in outputs},
        "time": time.ctime(),
    }
    with atomic_write(marker) as f:
        json.dump(record, f, indent=1)
