"""Plain-text tables (`key value...` per line) and atomic writes, the storage under every data dir and stage output."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


class TableError(ValueError):
    """A malformed line in a text table; the message names the file and the line."""

    def __init__(self, path: str | Path, lineno: int, message: str):
        self.path = str(path)
        self.lineno = lineno
        super().__init__(f"{path}:{lineno}: {message}")


def iter_table(path: str | Path, allow_empty_value: bool = False) -> Iterator[tuple[int, str, str]]:
    """Yield (line number, key, value) for each line `key value...` of a UTF-8 text table.

    The value is the rest of the line after the first run of whitespace, with the line end stripped. Raises
    TableError for undecodable bytes, blank lines and (unless allowed) keys with no value.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise TableError(path, lineno, f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
            line = line.rstrip("\r\n")
            parts = line.strip().split(maxsplit=1)
            if not parts:
                raise TableError(path, lineno, "empty line")
            if len(parts) == 1 and not allow_empty_value:
                raise TableError(path, lineno, f"'{parts[0]}' has no value")
            yield lineno, parts[0], (parts[1].strip() if len(parts) > 1 else "")


def read_table(path: str | Path, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a `key value` table into an insertion-ordered dict; duplicate keys are an error."""
    table: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for lineno, key, value in iter_table(path, allow_empty_value):
        if key in table:
            raise TableError(path, lineno, f"duplicate key '{key}' (first on line {first_seen[key]})")
        table[key] = value
        first_seen[key] = lineno
    return table


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside `path` and rename it over `path` only when the block finishes cleanly.

    A crash or an exception leaves any previous `path` untouched and no half-written file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {"encoding": encoding} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(path: str | Path, table: Mapping[str, str] | Iterable[tuple[str, str]], sort: bool = True) -> None:
    """Write `key value` lines atomically, sorted by key (Kaldi's C-locale order) unless sort=False."""
    items = list(table.items()) if isinstance(table, Mapping) else list(table)
    if sort:
        items.sort(key=lambda kv: kv[0].encode("utf-8"))
    with atomic_write(path) as f:
        for key, value in items:
            if not key or any(c.isspace() for c in key):
                raise ValueError(f"{path}: key {key!r} is empty or contains whitespace")
            f.write(f"{key} {value}\n" if value != "" else f"{key}\n")


def describe_error(e: Exception) -> str:
    """An error for a user: OSError's str() leads with "[Errno 2]", the file name and the reason read better."""
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror}"
    return str(e)


class UnsafeCheckpointError(ValueError):
    """A file that would need full unpickling (and so could run code) to load."""


def load_tensors(path: str | Path) -> Any:
    """Read a file written by torch.save without running code: only tensors and plain Python values are accepted.

    Unpickling arbitrary objects can execute anything the file's author chose, and checkpoints and heads are files
    users pass around; everything this toolkit saves is made of tensors, numbers, strings, lists and dicts.
    """
    import pickle

    import torch  # here, not at the top: the table helpers above are used where torch is not needed

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is long; keep its line naming what was refused ("unsupported GLOBAL posix.system").
        lines = [line for line in str(e).splitlines() if "GLOBAL" in line or "global" in line]
        first = lines[0].strip().rstrip(".") if lines else type(e).__name__
        raise UnsafeCheckpointError(
            f"{path}: refusing to load it: it holds objects other than tensors and plain values, and unpickling "
            f"them could run code ({first}). Files this toolkit writes never do; do not use a file from a source "
            "you do not trust"
        ) from None


def replace_dir(tmp: str | Path, dst: str | Path) -> None:
    """Put the complete folder `tmp` in place of `dst` (a folder, a file, or nothing): readers see the old or the new,
    never a half-written one."""
    import shutil

    tmp, dst = Path(tmp), Path(dst)
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    tmp.rename(dst)
