"""Kaldi data dir of one LibriSpeech subset (dev-clean, train-clean-100, ...), as downloaded from openslr.org/12.

    python -m toolkit.bin.prepare_librispeech --db-root /data/LibriSpeech/dev-clean --out data/dev_clean \\
        [--speakers /data/LibriSpeech/SPEAKERS.TXT] [--no-durations] [--skip-missing] [--nj 4]

The subset's layout is `<subset>/<speaker>/<chapter>/`, each chapter folder holding `<speaker>-<chapter>-<nnnn>.flac`
and `<speaker>-<chapter>.trans.txt` with one `<uttid> <TRANSCRIPT>` line per utterance. Written to --out:

    wav.scp     uttid /absolute/path/uttid.flac   (the FLAC itself: soundfile reads it, nothing is converted)
    text        uttid TRANSCRIPT                  (as the corpus has it: upper case, apostrophes; spaces collapsed)
    utt2spk     uttid <speaker>-<chapter>         (Kaldi's LibriSpeech recipe: one "speaker" per reader and chapter,
                                                   so per-speaker statistics follow the recording conditions)
    spk2utt     derived from utt2spk
    utt2dur     seconds, from the FLAC headers (skipped with --no-durations)
    spk2gender  <speaker>-<chapter> m|f, from SPEAKERS.TXT (`ID | SEX | SUBSET | MINUTES | NAME`, `;` comments),
                by default the one beside the subset folder, when there is one

Every problem is reported with its file (and line), then the exit status is 1 and nothing is written: a chapter
without its trans.txt, a transcript line without text or with an id of another chapter, a duplicate id, a
transcript id whose .flac is missing, a .flac without a transcript line. With --skip-missing, the mismatches between
audio and transcripts (a chapter without trans.txt, a transcript id without .flac, a .flac without a transcript line)
leave those utterances out with a warning instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from toolkit.datadir import DataDir, write_data_dir
from toolkit.fileio import TableError, describe_error, iter_table

MAX_REPORT = 20  # problems printed before "... and N more"
MAX_EXAMPLES = 5  # ids listed in one "missing" message
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


def _listing(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:MAX_EXAMPLES])
    return shown + (f" ... ({len(names)} in all)" if len(names) > MAX_EXAMPLES else "")


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
        message = f"{trans}: {len(no_audio)} transcript id(s) without a .flac in {chapter_dir}: {_listing(no_audio)}"
        if skip_missing:
            scan.warnings.append(message + "; left out (--skip-missing)")
        else:
            scan.problems.append(message)
    no_text = [u for u in flacs if u not in seen]
    if no_text:
        message = f"{trans}: {len(no_text)} .flac file(s) without a transcript line: {_listing(no_text)}"
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


def read_durations(wav: dict[str, str], num_threads: int) -> tuple[dict[str, str], list[str]]:
    """utt2dur values (seconds, 3 decimals) from the FLAC headers, and the problems of unreadable files."""

    def duration(item: tuple[str, str]) -> tuple[str, float | None, str | None]:
        uttid, path = item
        try:
            info = sf.info(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            return uttid, None, f"{path}: cannot read the audio header ({e})"
        if info.frames <= 0 or info.samplerate <= 0:
            return uttid, None, f"{path}: the audio has no samples (empty or truncated file)"
        return uttid, info.frames / info.samplerate, None

    durations: dict[str, str] = {}
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        for uttid, seconds, problem in pool.map(duration, wav.items()):
            if problem:
                problems.append(problem)
            else:
                durations[uttid] = f"{seconds:.3f}"
    return durations, problems


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.prepare_librispeech",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-root", required=True, help="a LibriSpeech subset folder, e.g. /data/LibriSpeech/dev-clean")
    p.add_argument("--out", required=True, help="the data dir to write, e.g. data/dev_clean")
    p.add_argument(
        "--speakers",
        default=None,
        help=f"SPEAKERS.TXT for spk2gender (default: {SPEAKERS_FILE} beside the subset folder, if present; "
        "'' to write no spk2gender)",
    )
    p.add_argument("--no-durations", action="store_true", help="do not read the FLAC headers for utt2dur")
    p.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out (with a warning) utterances whose audio or transcript is missing, instead of failing",
    )
    p.add_argument("--nj", type=int, default=4, help="threads reading the FLAC headers")
    return p


def report(problems: list[str]) -> None:
    for problem in problems[:MAX_REPORT]:
        print(f"error: {problem}", file=sys.stderr)
    if len(problems) > MAX_REPORT:
        print(f"error: ... and {len(problems) - MAX_REPORT} more", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    src = Path(args.db_root)
    if not src.is_dir():
        print(
            f"error: {src}: no such folder (expected a LibriSpeech subset such as .../LibriSpeech/dev-clean)",
            file=sys.stderr,
        )
        return 1
    try:
        scan = scan_subset(src, args.skip_missing)
        for warning in scan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        problems = list(scan.problems)
        if not problems and not scan.wav:
            problems.append(f"{src}: no utterances found (expected <speaker>/<chapter>/*.flac and *.trans.txt)")
        data = DataDir(tables={"wav.scp": scan.wav, "text": scan.text, "utt2spk": scan.utt2spk})
        if not problems and not args.no_durations:
            data.tables["utt2dur"], more = read_durations(scan.wav, args.nj)
            problems += more
        speakers = Path(args.speakers) if args.speakers else None
        if args.speakers is None and (src.parent / SPEAKERS_FILE).is_file():
            speakers = src.parent / SPEAKERS_FILE
        if speakers is not None and not problems:
            genders = read_speakers(speakers)
            spk2gender = {}
            for spk in sorted(set(scan.utt2spk.values())):
                reader = spk.split("-")[0]
                if reader not in genders:
                    problems.append(f"{speakers}: reader '{reader}' (of {src / reader}) is not listed")
                else:
                    spk2gender[spk] = genders[reader]
            data.tables["spk2gender"] = spk2gender
        if problems:
            report(problems)
            print(f"{src}: {len(problems)} problem(s); nothing written to {args.out}", file=sys.stderr)
            return 1
        write_data_dir(data, args.out)
    except (OSError, ValueError) as e:  # TableError is a ValueError and names file:line
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    speakers_note = f", {len(set(scan.utt2spk.values()))} speakers (reader-chapter)"
    hours = ""
    if "utt2dur" in data.tables:
        hours = f", {sum(float(d) for d in data.tables['utt2dur'].values()) / 3600:.2f} h"
    print(f"{args.out}: {len(scan.wav)} utterances{speakers_note}{hours} from {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
