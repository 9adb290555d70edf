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
import sys
from pathlib import Path

from toolkit.corpora.common import read_durations, report
from toolkit.corpora.fsc import SPLITS, csv_path, scan_split
from toolkit.datadir import DataDir, write_data_dir
from toolkit.fileio import describe_error


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
