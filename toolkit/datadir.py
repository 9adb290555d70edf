"""Kaldi-style data directories: read, write, subset, combine, split.

A data dir is a folder of sorted `key value` text tables. Per-utterance tables (keyed by utterance id):
`text`, `utt2spk`, `utt2dur`, `utt2num_samples`, `segments`, and the SLU extras `utt2intent` (an intent label; when it
is made of slots they are joined by '|', e.g. `activate|lights|kitchen`) and `text.slots` (the transcript with
SUPERB-style slot tags, `set an alarm for B-time seven thirty E-time`), and `utt2emotion` (an emotion class label,
e.g. IEMOCAP's `neu`, `hap`, `ang`, `sad`). `phone_ali` holds frame-level phone labels
(100 Hz). `wav.scp` maps a recording id to a path or a `command |` pipe; without `segments` recordings are
utterances. `spk2utt` is derived from `utt2spk` on write. Validation lives in toolkit/validate.py.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.fileio import TableError, read_table, write_table

# Tables keyed by utterance id that subset/combine/split carry along.
UTT_TABLES = (
    "text",
    "utt2spk",
    "utt2dur",
    "utt2num_samples",
    "segments",
    "utt2intent",
    "text.slots",
    "utt2emotion",
    "phone_ali",
    "utt2lang",
)
# Tables keyed by recording id (wav.scp is keyed by utterance id when there is no `segments`).
RECORDING_TABLES = ("wav.scp", "reco2dur")
# Tables keyed by speaker id.
SPEAKER_TABLES = ("spk2voice", "spk2gender")
# Tables whose values may legitimately be empty (e.g. an utterance with no phones).
EMPTY_VALUE_ALLOWED = ("phone_ali",)
# Tables whose keys become file names somewhere (an utterance's wav, a recording's segments).
KEYED_TABLES = UTT_TABLES + RECORDING_TABLES


def id_problem(key: str) -> str | None:
    """Why `key` cannot be an utterance or recording id, or None when it can.

    Ids become file names (stage 3 writes `<id>.wav`, speed perturbation `sp0.9-<id>.wav`), so an id must name a
    file inside its folder: no path separators, not `.` or `..`, no control characters.
    """
    if "/" in key or "\\" in key:
        return "contains a path separator; ids become file names and must not name a folder"
    if key in (".", ".."):
        return "is '.' or '..'; ids become file names"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "contains a control character"
    return None


def check_ids(path: Path, table: dict[str, str]) -> None:
    """Raise TableError (file and line) for the first key of a table read with read_table that is not a valid id."""
    for lineno, key in enumerate(table, start=1):  # read_table allows no blank lines: key n is on line n
        if (problem := id_problem(key)) is not None:
            raise TableError(path, lineno, f"id '{key}' {problem}")


def safe_file_name(key: str, suffix: str = "") -> str:
    """`key + suffix` as a file name inside a folder; ValueError for an id that would leave it."""
    if (problem := id_problem(key)) is not None:
        raise ValueError(f"id '{key}' {problem}")
    return key + suffix


@dataclass
class DataDir:
    """The tables of one data dir, in memory. `tables[name]` maps id -> value, in the file's order."""

    path: Path | None = None
    tables: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def utt_ids(self) -> list[str]:
        for name in ("utt2spk", "segments", "text"):
            if name in self.tables:
                return list(self.tables[name])
        return list(self.tables.get("wav.scp", {}))

    def has(self, name: str) -> bool:
        return name in self.tables

    def __getitem__(self, name: str) -> dict[str, str]:
        if name not in self.tables:
            where = f" in {self.path}" if self.path else ""
            raise KeyError(f"no '{name}' table{where}")
        return self.tables[name]

    def recording_of(self, uttid: str) -> str:
        """The wav.scp key holding this utterance's audio."""
        if "segments" in self.tables:
            return self.tables["segments"][uttid].split()[0]
        return uttid

    def segment_of(self, uttid: str) -> tuple[float | None, float | None]:
        """Start and end seconds of an utterance within its recording (None, None without segments)."""
        if "segments" not in self.tables:
            return None, None
        _, start, end = self.tables["segments"][uttid].split()[:3]
        return float(start), float(end)

    def wave(self, uttid: str, sample_rate: int | None = None):
        """The utterance's samples (float32 mono, its segment only), resampled to `sample_rate` when given."""
        from toolkit.audio import load_audio, resample

        start, end = self.segment_of(uttid)
        wave, rate = load_audio(self["wav.scp"][self.recording_of(uttid)], uttid=uttid, start=start, end=end)
        return wave if sample_rate is None else resample(wave, rate, sample_rate)

    def durations(self) -> dict[str, float]:
        """Seconds per utterance: utt2dur where it has them, else the segment, else the audio header."""
        from toolkit.audio import audio_info

        known = self.tables.get("utt2dur", {})
        result = {}
        for utt in self.utt_ids:
            if utt in known:
                result[utt] = float(known[utt])
                continue
            start, end = self.segment_of(utt)
            if start is not None and end is not None and end > 0:
                result[utt] = end - start
            else:
                result[utt] = audio_info(self["wav.scp"][self.recording_of(utt)], uttid=utt).duration
        return result


def known_tables() -> tuple[str, ...]:
    return UTT_TABLES + RECORDING_TABLES + SPEAKER_TABLES


def load_data_dir(path: str | Path) -> DataDir:
    """Load every known table present in `path`; raises TableError (file and line) on a malformed one."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: data dir does not exist")
    data = DataDir(path=path)
    for name in known_tables():
        file = path / name
        if file.exists():
            data.tables[name] = read_table(file, allow_empty_value=name in EMPTY_VALUE_ALLOWED)
            if name in KEYED_TABLES:
                check_ids(file, data.tables[name])
    if not data.tables:
        raise FileNotFoundError(f"{path}: no data dir tables (wav.scp, utt2spk, text, ...) found")
    return data


def spk2utt_from_utt2spk(utt2spk: dict[str, str]) -> dict[str, str]:
    speakers: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=lambda u: u.encode("utf-8")):
        speakers.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in speakers.items()}


def write_data_dir(data: DataDir, path: str | Path) -> None:
    """Write all tables sorted by id, plus spk2utt derived from utt2spk. Each file is written atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, table in data.tables.items():
        write_table(path / name, table)
    if "utt2spk" in data.tables:
        write_table(path / "spk2utt", spk2utt_from_utt2spk(data.tables["utt2spk"]))


def subset_data_dir(data: DataDir, utt_ids: list[str] | set[str]) -> DataDir:
    """A data dir holding only `utt_ids` (recordings and speakers reduced to those still referenced)."""
    keep = set(utt_ids)
    out = DataDir()
    for name in UTT_TABLES:
        if name in data.tables:
            out.tables[name] = {u: v for u, v in data.tables[name].items() if u in keep}
    recordings = {data.recording_of(u) for u in data.utt_ids if u in keep}
    for name in RECORDING_TABLES:
        if name in data.tables:
            out.tables[name] = {r: v for r, v in data.tables[name].items() if r in recordings}
    if "utt2spk" in out.tables:
        speakers = set(out.tables["utt2spk"].values())
        for name in SPEAKER_TABLES:
            if name in data.tables:
                out.tables[name] = {s: v for s, v in data.tables[name].items() if s in speakers}
    return out


def combine_data_dirs(parts: list[DataDir]) -> DataDir:
    """Concatenate data dirs. Duplicate ids are an error; a table missing from some parts is dropped, with a warning,
    because a half-filled table would fail validation later (Kaldi's combine_data.sh does the same)."""
    if not parts:
        raise ValueError("nothing to combine")
    out = DataDir()
    names = [n for n in known_tables() if any(n in p.tables for p in parts)]
    for name in names:
        holders = [p for p in parts if name in p.tables]
        if len(holders) != len(parts):
            missing = [str(p.path) for p in parts if name not in p.tables]
            print(f"warning: '{name}' is missing from {', '.join(missing)}; it is left out", file=sys.stderr)
            continue
        merged: dict[str, str] = {}
        for part in parts:
            for key, value in part.tables[name].items():
                if key in merged and (name not in SPEAKER_TABLES or merged[key] != value):
                    raise ValueError(f"'{key}' appears in '{name}' of more than one data dir (last: {part.path})")
                merged[key] = value
        out.tables[name] = merged
    return out


def split_data_dir(path: str | Path, num_shards: int) -> list[Path]:
    """Split the data dir at `path` into `path/split<N>/<k>` (k = 1..N), contiguous runs of utterances.

    Shards are rewritten only when the data dir is newer than them, so repeated calls are cheap.
    """
    path = Path(path)
    if num_shards < 1:
        raise ValueError(f"number of shards must be >= 1, got {num_shards}")
    root = path / f"split{num_shards}"
    shard_dirs = [root / str(k) for k in range(1, num_shards + 1)]
    newest_input = max((path / n).stat().st_mtime_ns for n in known_tables() if (path / n).exists())
    stamp = root / ".complete"
    if stamp.exists() and stamp.stat().st_mtime_ns >= newest_input:
        return shard_dirs
    data = load_data_dir(path)
    utts = sorted(data.utt_ids, key=lambda u: u.encode("utf-8"))
    if len(utts) < num_shards:
        raise ValueError(f"{path}: cannot split {len(utts)} utterances into {num_shards} shards; lower --nj")
    if root.exists():
        shutil.rmtree(root)
    for k, shard_dir in enumerate(shard_dirs):
        lo, hi = k * len(utts) // num_shards, (k + 1) * len(utts) // num_shards
        write_data_dir(subset_data_dir(data, utts[lo:hi]), shard_dir)
    stamp.touch()
    return shard_dirs
