"""The output folder of a training run: one process writes it at a time, and a rerun resumes it only when it is
the same run, the same configuration and the same data.

Every trainer (the speech LM, HuBERT pretraining, distillation, the downstream heads, the codec) wraps its work in
`claimed(out)` and calls `check_resume` before it loads a checkpoint or reports a finished run. A second training
into the same folder would interleave its log and checkpoints with the first; a rerun after the data changed would
otherwise continue (or, when finished, keep) a model of the old data and call it done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from toolkit.config import ConfigError, load_yaml
from toolkit.fileio import atomic_write, replace_dir
from toolkit.stage import fingerprint

try:
    import fcntl
except ImportError:  # not on Windows: no lock there
    fcntl = None

LOCK_NAME = ".lock"
DATA_NAME = "data.json"


class RunInUseError(RuntimeError):
    """Another process is training into the same folder."""


@contextlib.contextmanager
def claimed(out: Path, is_main: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on `out` while the block runs (only the main process of a DDP run takes it).

    The lock is the operating system's (flock): it goes with the process, so a killed run never leaves it behind.
    """
    if not is_main or fcntl is None:
        yield
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    try:
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise RunInUseError(
                    f"{out} is being trained by {holder}: wait for it to finish, or train into another directory "
                    "(--tag, or --out)"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {os.uname().nodename} since {time.ctime()}\n")
            f.flush()
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    finally:
        # A run refused before it wrote anything (a missing data dir, a bad config) leaves no folder behind.
        if created and out.is_dir() and {p.name for p in out.iterdir()} <= {LOCK_NAME}:
            path.unlink(missing_ok=True)
            out.rmdir()


def check_resume(
    out: Path, config: Mapping[str, Any], data: Mapping[str, Path | None], started: bool, is_main: bool = True
) -> None:
    """Refuse to continue a run of another configuration or other data; record the data of a new run.

    `config` is the resolved config as saved (config.yaml); `data` names each input the run learns from (a data or
    token dir, a vocabulary) by its role, so a moved but unchanged corpus still resumes. `started`: the folder holds
    checkpoints or a finished model. Runs made before data.json existed resume unchecked and get one now.
    """
    saved = out / "config.yaml"
    if started and saved.exists() and load_yaml(saved) != dict(config):
        raise ConfigError(
            f"{out} holds a run of a different configuration ({saved}); rerun with the same config, or train into "
            "a new directory (--tag, or --out)"
        )
    for role, path in data.items():
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{path} ({role}) does not exist")
    current = {role: fingerprint(str(path)) for role, path in data.items() if path is not None}
    recorded_file = out / DATA_NAME
    if started and recorded_file.exists():
        try:
            recorded = json.loads(recorded_file.read_text())["fingerprints"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{recorded_file} is unreadable; train into a new directory, or delete {out}") from None
        changed = [role for role in current if recorded.get(role) != current[role]]
        if changed:
            role = changed[0]
            raise ConfigError(
                f"{out} was trained on other data: {role} ({data[role]}) has changed since its checkpoints were "
                f"written. Train into a new directory (--tag, or --out), or delete {out} to start over"
            )
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        record = {"fingerprints": current, "paths": {role: str(data[role]) for role in current}}
        with atomic_write(recorded_file) as f:
            json.dump(record, f, indent=1)


def keep_tokenizers(src: Path, dst: Path) -> None:
    """A copy of the tokenizers in the run folder, so that decoding and packing never depend on where the recipe's
    exp/tokenizers/ lives (a copied or moved exp/<tag> keeps working). Replaced whole: never half old, half new."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    replace_dir(tmp, dst)  # a run made before runs kept a copy had a file here naming the folder


def run_tokenizers(out: Path) -> Path:
    """The tokenizers a training run used: its own copy (<out>/tokenizers/), or, for runs made before runs kept a
    copy, the folder named in the file <out>/tokenizers."""
    path = Path(out) / "tokenizers"
    if path.is_file():
        return Path(path.read_text().strip())
    return path
