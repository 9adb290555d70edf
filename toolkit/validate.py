"""Validation of Kaldi-style data dirs: report every problem with its file, line and utterance id.

Unlike loading (which stops at the first malformed line), validation reads every table tolerantly and keeps going,
so one run lists everything a user has to fix.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toolkit.audio import SEGMENT_OVERSHOOT_S, AudioError, audio_info, load_audio
from toolkit.datadir import (
    EMPTY_VALUE_ALLOWED,
    KEYED_TABLES,
    RECORDING_TABLES,
    SPEAKER_TABLES,
    UTT_TABLES,
    id_problem,
    spk2utt_from_utt2spk,
)

SLOT_TAG = re.compile(r"^([BE])-(\S+)$")
PHONE_ALI_RATE = 100  # frames per second in phone_ali


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        who = f" '{self.key}'" if self.key else ""
        return f"{where}:{who} {self.message}"


@dataclass
class Entry:
    line: int
    value: str


def _read_tolerant(path: Path, problems: list[Problem], allow_empty: bool) -> dict[str, Entry]:
    """Parse a table, recording (not raising) bad encoding, empty lines, missing values, duplicates, disorder."""
    table: dict[str, Entry] = {}
    previous: bytes | None = None
    unsorted_reported = False
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                problems.append(Problem(str(path), lineno, None, f"not valid UTF-8 ({e.reason} at byte {e.start})"))
                continue
            parts = line.strip().split(maxsplit=1)
            if not parts:
                problems.append(Problem(str(path), lineno, None, "empty line"))
                continue
            key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
            if not value and not allow_empty:
                what = "empty transcript" if path.name in ("text", "text.slots") else "no value"
                problems.append(Problem(str(path), lineno, key, what))
            if key in table:
                first = table[key].line
                problems.append(Problem(str(path), lineno, key, f"duplicate id (first on line {first})"))
                continue
            if path.name in KEYED_TABLES and (problem := id_problem(key)) is not None:
                problems.append(Problem(str(path), lineno, key, f"id {problem}"))
            encoded = key.encode("utf-8")
            if previous is not None and encoded < previous and not unsorted_reported:
                problems.append(
                    Problem(str(path), lineno, key, "ids are not sorted (C locale); sort with `LC_ALL=C sort`")
                )
                unsorted_reported = True
            previous = encoded
            table[key] = Entry(lineno, value)
    return table


def _check_same_ids(name: str, table: dict[str, Entry], expected: set[str], ref_name: str, path: Path, out: list):
    for key, entry in table.items():
        if key not in expected:
            out.append(Problem(str(path / name), entry.line, key, f"id not in {ref_name}"))
    missing = [k for k in expected if k not in table]
    if missing:
        shown = ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else "")
        out.append(Problem(str(path / name), None, None, f"{len(missing)} ids of {ref_name} are missing: {shown}"))


def _check_values(name: str, table: dict[str, Entry], path: Path, out: list[Problem]) -> None:
    file = str(path / name)
    for key, entry in table.items():
        value = entry.value
        if name in ("utt2dur", "reco2dur"):
            try:
                ok = float(value) > 0
            except ValueError:
                ok = False
            if not ok:
                out.append(Problem(file, entry.line, key, f"duration '{value}' is not a positive number"))
        elif name == "utt2num_samples":
            if not value.isdigit() or int(value) == 0:
                out.append(Problem(file, entry.line, key, f"'{value}' is not a positive whole number"))
        elif name == "segments":
            fields = value.split()
            try:
                start, end = float(fields[1]), float(fields[2])
                if start < 0 or (end >= 0 and end <= start):
                    out.append(Problem(file, entry.line, key, f"segment {start}-{end}: need 0 <= start < end"))
            except (IndexError, ValueError):
                out.append(Problem(file, entry.line, key, "expected `uttid recording start end`"))
        elif name == "utt2intent":
            if any(slot == "" for slot in value.split("|")) or " " in value:
                out.append(Problem(file, entry.line, key, f"intent '{value}' has an empty slot or a space"))
        elif name == "text.slots":
            open_tag = None
            for token in value.split():
                m = SLOT_TAG.match(token)
                if not m:
                    continue
                kind, slot = m.groups()
                if kind == "B" and open_tag is None:
                    open_tag = slot
                elif kind == "E" and open_tag == slot:
                    open_tag = None
                else:
                    out.append(Problem(file, entry.line, key, f"unbalanced slot tag '{token}'"))
                    break
            else:
                if open_tag is not None:
                    out.append(Problem(file, entry.line, key, f"slot 'B-{open_tag}' is never closed"))


def _check_audio(
    path: Path,
    wav: dict[str, Entry],
    sample_rate: int | None,
    durations: dict[str, float],
    out: list[Problem],
    num_threads: int,
) -> None:
    file = str(path / "wav.scp")

    def check(item):
        key, entry = item
        try:
            info = audio_info(entry.value, uttid=key)
            if info.subtype in ("FLOAT", "DOUBLE"):
                # Float samples can be NaN or infinite, which no later stage can recover from: read them all.
                load_audio(entry.value, uttid=key, mono=False)
            return key, entry, info, None
        except AudioError as e:
            return key, entry, None, e.message

    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        for key, entry, info, error in pool.map(check, wav.items()):
            if error:
                out.append(Problem(file, entry.line, key, error))
                continue
            if info.channels != 1:
                out.append(Problem(file, entry.line, key, f"{info.channels} channels; data dirs need mono audio"))
            if sample_rate and info.sample_rate != sample_rate:
                out.append(Problem(file, entry.line, key, f"sample rate {info.sample_rate} Hz, expected {sample_rate}"))
            durations[key] = info.duration


def validate_data_dir(
    path: str | Path,
    check_audio: bool = True,
    sample_rate: int | None = None,
    require_text: bool = True,
    num_threads: int = 4,
) -> list[Problem]:
    """Every problem found in the data dir at `path`; an empty list means it is valid."""
    path = Path(path)
    problems: list[Problem] = []
    if not path.is_dir():
        return [Problem(str(path), None, None, "data dir does not exist")]
    required = ["wav.scp", "utt2spk"] + (["text"] if require_text else [])
    for name in required:
        if not (path / name).exists():
            problems.append(Problem(str(path / name), None, None, "required file is missing"))
    tables: dict[str, dict[str, Entry]] = {}
    for name in (*UTT_TABLES, *RECORDING_TABLES, *SPEAKER_TABLES, "spk2utt"):
        if (path / name).exists():
            tables[name] = _read_tolerant(path / name, problems, allow_empty=name in EMPTY_VALUE_ALLOWED)
            _check_values(name, tables[name], path, problems)
    if "utt2spk" not in tables:
        return problems

    utts = set(tables["utt2spk"])
    for name in UTT_TABLES:
        if name in tables and name != "utt2spk":
            _check_same_ids(name, tables[name], utts, "utt2spk", path, problems)
    if "segments" in tables:
        recordings = {e.value.split()[0] for e in tables["segments"].values() if e.value}
        ref_name = "the recordings of segments"
    else:
        recordings, ref_name = utts, "utt2spk"
    for name in RECORDING_TABLES:
        if name in tables:
            _check_same_ids(name, tables[name], recordings, ref_name, path, problems)

    utt2spk = {u: e.value for u, e in tables["utt2spk"].items()}
    if "spk2utt" in tables:
        expected = spk2utt_from_utt2spk(utt2spk)
        for spk, entry in tables["spk2utt"].items():
            if expected.get(spk) != " ".join(entry.value.split()):
                problems.append(
                    Problem(str(path / "spk2utt"), entry.line, spk, "disagrees with utt2spk; rewrite it from utt2spk")
                )
        for spk in expected.keys() - tables["spk2utt"].keys():
            problems.append(Problem(str(path / "spk2utt"), None, spk, "speaker of utt2spk missing from spk2utt"))

    durations: dict[str, float] = {}
    if check_audio and "wav.scp" in tables:
        _check_audio(path, tables["wav.scp"], sample_rate, durations, problems, num_threads)
    if "segments" in tables and durations:
        for utt, entry in tables["segments"].items():
            fields = entry.value.split()
            try:
                recording, end = fields[0], float(fields[2])
            except (IndexError, ValueError):
                continue  # reported by _check_values
            if recording in durations and end > durations[recording] + SEGMENT_OVERSHOOT_S:
                problems.append(
                    Problem(
                        str(path / "segments"),
                        entry.line,
                        utt,
                        f"ends at {end} s, past the end of recording '{recording}' ({durations[recording]:.3f} s)",
                    )
                )
    if "phone_ali" in tables and durations and "segments" not in tables:
        for utt, entry in tables["phone_ali"].items():
            if utt in durations:
                frames = len(entry.value.split())
                expected_frames = round(durations[utt] * PHONE_ALI_RATE)
                if abs(frames - expected_frames) > 2:
                    problems.append(
                        Problem(
                            str(path / "phone_ali"),
                            entry.line,
                            utt,
                            f"{frames} frames but the audio lasts {expected_frames} frames at {PHONE_ALI_RATE} Hz",
                        )
                    )
    return problems
