"""Kaldi data dir of one Fluent Speech Commands split (train, valid, test), as downloaded from fluent.ai.

    python -m toolkit.bin.prepare_fsc --db-root /data/fluent_speech_commands_dataset --split train \\
        --out data/train [--nj 4]

The corpus folder (`fluent_speech_commands_dataset/`) holds `data/{train,valid,test}_data.csv` and the audio under
`wavs/speakers/<speakerId>/`. Each csv has the header `,path,speakerId,transcription,action,object,location` (the
first column, unnamed, is a row index) and one row per utterance, e.g.

    0,wavs/speakers/2BqVo8kVB2Skwgyb/<uuid>.wav,2BqVo8kVB2Skwgyb,Change language,change language,none,none

`path` is relative to the corpus folder, the file name a uuid (0a3129c0-4474-11e9-a9a5-5dbec3b8816a.wav); the audio
is 16 kHz mono wav. Written to --out:

    wav.scp     <speakerId>-<wav name> /absolute/path.wav   (the id starts with the speaker, so Kaldi sorting holds)
    text        the transcription as the csv has it (case and punctuation kept; whitespace collapsed)
    utt2spk     speakerId
    spk2utt     derived from utt2spk
    utt2dur     seconds, from the wav headers
    utt2intent  action|object|location, e.g. `activate|lights|kitchen`; FSC's `none` for an empty slot is kept, and
                a space inside a value becomes '_' (`change language` -> `change_language`), since a label is one
                token (ESPnet's FSC recipe does the same)

The slot values are checked against FSC's closed sets (6 actions, 14 objects, 4 locations; 31 intents in all).
Every problem is reported with its file and line, then the exit status is 1 and nothing is written: a missing
column, a row with the wrong number of fields or an empty field, a path outside `wavs/speakers/<speakerId>/`, an
unknown slot value, a duplicate utterance, a wav file that does not exist or cannot be read.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from toolkit.bin.prepare_librispeech import read_durations, report
from toolkit.datadir import DataDir, write_data_dir
from toolkit.fileio import describe_error

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.prepare_fsc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-root", required=True, help="the corpus folder, .../fluent_speech_commands_dataset")
    p.add_argument("--split", required=True, choices=SPLITS, help="which csv to read")
    p.add_argument("--out", required=True, help="the data dir to write, e.g. data/train")
    p.add_argument("--nj", type=int, default=4, help="threads reading the wav headers")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    db_root = Path(args.db_root)
    csv_file = csv_path(db_root, args.split)
    if not csv_file.is_file():
        print(
            f"error: {csv_file}: no such file (expected the Fluent Speech Commands folder, "
            "fluent_speech_commands_dataset/, holding data/ and wavs/)",
            file=sys.stderr,
        )
        return 1
    try:
        scan = scan_split(db_root, args.split)
        problems = list(scan.problems)
        if not problems and not scan.wav:
            problems.append(f"{csv_file}: no utterances (the csv has a header and no rows)")
        data = DataDir(
            tables={"wav.scp": scan.wav, "text": scan.text, "utt2spk": scan.utt2spk, "utt2intent": scan.utt2intent}
        )
        if not problems:
            data.tables["utt2dur"], more = read_durations(scan.wav, args.nj)
            problems += more
        if problems:
            report(problems)
            print(f"{csv_file}: {len(problems)} problem(s); nothing written to {args.out}", file=sys.stderr)
            return 1
        write_data_dir(data, args.out)
    except (OSError, ValueError) as e:  # TableError is a ValueError and names file:line
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    hours = sum(float(d) for d in data.tables["utt2dur"].values()) / 3600
    speakers = len(set(scan.utt2spk.values()))
    intents = len(set(scan.utt2intent.values()))
    print(
        f"{args.out}: {len(scan.wav)} utterances, {speakers} speakers, {intents} intents, {hours:.2f} h from {csv_file}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
