"""Kaldi data dir of one LibriSpeech subset (dev-clean, train-clean-100, ...), as downloaded from openslr.org/12: the corpus logic behind python -m toolkit.bin.prepare_librispeech (its docstring has the layout and usage)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.corpora.common import listing
from toolkit.fileio import TableError, iter_table

SPEAKERS_FILE = "SPEAKERS.TXT"


UTT_NUMBER = re.compile(r"^[0-9]+$")


@dataclass
class Scan:
    """What one pass over the subset found: utterances, problems (errors) and what was skipped (warnings)."""

    wav: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _subdirs(path: Path) -> list[Path]:
    # Stray files (README, .DS_Store) beside the speaker and chapter folders are not part of the layout.
    return sorted(p for p in path.iterdir() if p.is_dir())


def scan_chapter(chapter_dir: Path, speaker: str, chapter: str, skip_missing: bool, scan: Scan) -> None:
    trans = chapter_dir / f"{speaker}-{chapter}.trans.txt"
    flacs = {p.name[: -len(".flac")]: p for p in chapter_dir.iterdir() if p.name.endswith(".flac") and p.is_file()}
    if not trans.is_file():
        message = f"{trans}: missing: the chapter folder has no transcript file"
        if flacs:
            message += f" for its {len(flacs)} .flac file(s)"
        if skip_missing:
            scan.warnings.append(message + "; its utterances are left out (--skip-missing)")
        else:
            scan.problems.append(message)
        return
    spk = f"{speaker}-{chapter}"  # Kaldi's speaker id for LibriSpeech: reader and chapter
    prefix = f"{spk}-"
    seen: dict[str, int] = {}
    no_audio: list[str] = []
    try:
        for lineno, uttid, value in iter_table(trans, allow_empty_value=True):
            where = f"{trans}:{lineno}"
            if not uttid.startswith(prefix) or not UTT_NUMBER.match(uttid[len(prefix) :]):
                scan.problems.append(f"{where}: '{uttid}' is not an utterance id of this chapter ({prefix}<number>)")
                continue
            if uttid in seen:
                scan.problems.append(f"{where}: '{uttid}' appears twice (first on line {seen[uttid]})")
                continue
            seen[uttid] = lineno
            words = value.split()
            if not words:
                scan.problems.append(f"{where}: transcript line without text for '{uttid}'")
                continue
            if uttid not in flacs:
                no_audio.append(uttid)
                continue
            scan.wav[uttid] = os.path.abspath(flacs[uttid])
            scan.text[uttid] = " ".join(words)
            scan.utt2spk[uttid] = spk
    except TableError as e:  # bad UTF-8 or an empty line: the line is named, the rest of the file is unreadable
        scan.problems.append(str(e))
        return
    if no_audio:
        message = f"{trans}: {len(no_audio)} transcript id(s) without a .flac in {chapter_dir}: {listing(no_audio)}"
        if skip_missing:
            scan.warnings.append(message + "; left out (--skip-missing)")
        else:
            scan.problems.append(message)
    no_text = [u for u in flacs if u not in seen]
    if no_text:
        message = f"{trans}: {len(no_text)} .flac file(s) without a transcript line: {listing(no_text)}"
        if skip_missing:
            scan.warnings.append(message + "; left out (--skip-missing)")
        else:
            scan.problems.append(message)


def scan_subset(src: Path, skip_missing: bool) -> Scan:
    scan = Scan()
    for speaker_dir in _subdirs(src):
        for chapter_dir in _subdirs(speaker_dir):
            scan_chapter(chapter_dir, speaker_dir.name, chapter_dir.name, skip_missing, scan)
    return scan


def read_speakers(path: Path) -> dict[str, str]:
    """Reader id -> 'm' or 'f' from LibriSpeech's SPEAKERS.TXT. Names may contain '|' (reader 60: "|CBW|Simon"),
    so each line is split into at most five fields."""
    genders: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            fields = [x.strip() for x in line.split("|", 4)]
            if len(fields) < 2 or not fields[0]:
                raise TableError(path, lineno, "expected `ID | SEX | SUBSET | MINUTES | NAME`")
            sex = fields[1].lower()
            if sex not in ("m", "f"):
                raise TableError(path, lineno, f"sex of reader '{fields[0]}' is '{fields[1]}', expected M or F")
            genders[fields[0]] = sex
    return genders
