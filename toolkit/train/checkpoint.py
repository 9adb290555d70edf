"""Crash-safe checkpoints: written to a temporary file and renamed, the last N kept, the newest found on restart.

A checkpoint holds everything a resumed run needs to continue as if never stopped: model, optimizer, scheduler,
RNG states and the position in the data (epoch and batch index), plus the training history.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from toolkit.fileio import atomic_write, load_tensors

PATTERN = re.compile(r"^checkpoint\.(\d+)\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"checkpoint.{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name))]
    return sorted(found)


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write atomically (a kill -9 leaves either the old set or the new file complete), then prune old ones."""
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, step)
    with atomic_write(path, mode="wb") as f:
        torch.save(state, f)
    for _, old in list_checkpoints(directory)[:-keep_last]:
        os.unlink(old)
    return path


def load_latest(directory: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint; an unreadable one (should not happen with atomic writes) is skipped.

    One that is readable but holds more than tensors and plain values is refused (UnsafeCheckpointError), not
    skipped: it was put there, and falling back to an older one would hide that.
    """
    for _step, path in reversed(list_checkpoints(directory)):
        try:
            return load_tensors(path)
        except (RuntimeError, EOFError, OSError) as e:  # UnsafeCheckpointError is a ValueError: it propagates
            print(f"warning: checkpoint {path} is unreadable ({e}); trying an older one")
    return None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore(state: dict[str, Any], parts: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Load each `parts[key]` (a module, optimizer, scheduler or scaler) from `state[key]`, the RNG states too, and
    return the saved progress. A checkpoint that does not fit (another model size, a file put there by hand) is a
    ValueError naming the folder, not a shape-mismatch traceback."""
    try:
        for key, part in parts.items():
            part.load_state_dict(state[key])
        set_rng_state(state["rng"])
        return state["progress"]
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{directory}: its newest checkpoint does not fit this run ({first}); it was written by another "
            "configuration or version. Train into a new directory, or delete the checkpoints to start over"
        ) from None
