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
import sys
from pathlib import Path

from toolkit.corpora.common import read_durations, report
from toolkit.corpora.librispeech import SPEAKERS_FILE, read_speakers, scan_subset
from toolkit.datadir import DataDir, write_data_dir
from toolkit.fileio import describe_error


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
