"""Kaldi data dir of one Fluent Speech Commands split (train, valid, test), as downloaded from fluent.ai: the corpus logic behind python -m toolkit.bin.prepare_fsc (its docstring has the layout and usage)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SPLITS = ("train", "valid", "test")


COLUMNS = ("path", "speakerId", "transcription", "action", "object", "location")


HEADER = "," + ",".join(COLUMNS)


# FSC's closed label sets (the dataset's README and paper: 6 actions x 14 objects x 4 locations, 31 combinations).
ACTIONS = ("activate", "bring", "change language", "deactivate", "decrease", "increase")


OBJECTS = (
    "Chinese",
    "English",
    "German",
    "Korean",
    "heat",
    "juice",
    "lamp",
    "lights",
    "music",
    "newspaper",
    "none",
    "shoes",
    "socks",
    "volume",
)


LOCATIONS = ("bedroom", "kitchen", "none", "washroom")


SLOTS = {"action": ACTIONS, "object": OBJECTS, "location": LOCATIONS}


@dataclass
class Scan:
    """The tables of one split and the problems found while reading its csv."""

    wav: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    utt2intent: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def csv_path(db_root: Path, split: str) -> Path:
    return db_root / "data" / f"{split}_data.csv"


def intent_label(action: str, obj: str, location: str) -> str:
    """`action|object|location`, each value with its spaces turned into '_' (a label is one token)."""
    return "|".join("_".join(v.split()) for v in (action, obj, location))


def _columns(header: list[str], where: str) -> tuple[dict[str, int], str | None]:
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        listed = ", ".join(f"'{c}'" for c in missing)
        return {}, f"{where}: no column {listed} in the header; expected the FSC header `{HEADER}`"
    return {c: names.index(c) for c in COLUMNS}, None


def check_row(values: dict[str, str], where: str) -> str | None:
    """The problem with one csv row's values, or None."""
    for name in COLUMNS:
        if not values[name]:
            return f"{where}: empty '{name}'; every FSC row has all of {', '.join(COLUMNS)}"
    for slot, allowed in SLOTS.items():
        if values[slot] not in allowed:
            return (
                f"{where}: unknown {slot} '{values[slot]}' (FSC's {slot} values: {', '.join(allowed)}); "
                "restore the corpus' csv, or fix the row"
            )
    parts = PurePosixPath(values["path"]).parts
    if len(parts) != 4 or parts[:2] != ("wavs", "speakers") or not parts[3].endswith(".wav"):
        return f"{where}: path '{values['path']}' is not of the form wavs/speakers/<speakerId>/<name>.wav"
    if parts[2] != values["speakerId"]:
        return (
            f"{where}: path '{values['path']}' is in the folder of speaker '{parts[2]}', "
            f"the row says '{values['speakerId']}'"
        )
    return None


def scan_split(db_root: Path, split: str) -> Scan:
    """Read one split's csv; the wav files are checked to exist, their headers are read later."""
    scan = Scan()
    path = csv_path(db_root, split)
    seen: dict[str, int] = {}
    # utf-8-sig: a csv saved by a spreadsheet may start with a byte-order mark.
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None:
                scan.problems.append(f"{path}:1: the file is empty; expected the FSC header `{HEADER}`")
                return scan
            index, problem = _columns(header, f"{path}:1")
            if problem:
                scan.problems.append(problem)
                return scan
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if len(row) != len(header):
                    scan.problems.append(
                        f"{where}: {len(row)} fields, the header has {len(header)}; "
                        "a transcription with a comma must be quoted"
                    )
                    continue
                values = {c: row[i].strip() for c, i in index.items()}
                problem = check_row(values, where)
                if problem:
                    scan.problems.append(problem)
                    continue
                spk = values["speakerId"]
                uttid = f"{spk}-{PurePosixPath(values['path']).stem}"
                if uttid in seen:
                    scan.problems.append(f"{where}: '{values['path']}' appears twice (first on line {seen[uttid]})")
                    continue
                seen[uttid] = reader.line_num
                wav = db_root / values["path"]
                if not wav.is_file():
                    scan.problems.append(f"{where}: {wav} does not exist; is the corpus fully extracted?")
                    continue
                scan.wav[uttid] = os.path.abspath(wav)
                scan.text[uttid] = " ".join(values["transcription"].split())
                scan.utt2spk[uttid] = spk
                scan.utt2intent[uttid] = intent_label(values["action"], values["object"], values["location"])
        except UnicodeDecodeError as e:
            scan.problems.append(f"{path}:{reader.line_num + 1}: not valid UTF-8 ({e.reason})")
        except csv.Error as e:
            scan.problems.append(f"{path}:{reader.line_num}: malformed csv ({e})")
    return scan
