"""Kaldi data dir of one Audio SNIPS split as SUPERB's slot filling (SF) task uses it: SNIPS NLU utterances spoken by
Amazon Polly voices, train/valid/test by voice.

    python -m toolkit.bin.prepare_snips --db-root /data/SNIPS --split train --out data/train \\
        [--speakers Ivy,Joanna,...] [--nj 4]

Where the layout comes from (read for facts, no code taken): the audio and the NLU annotation are published by
github.com/aws-samples/aws-lex-noisy-spoken-language-understanding (`audio_slu/audio_<voice>/snips/*.mp3`, and
`data/nlu_annotation/{train,valid,test}` with `u_id utterance slot-labels intent`, ids `snips-<split>-<n>`). SUPERB
(s3prl: `preprocess/snips_prepare_data.sh` and `snips_preprocess.py`; the SF corpus reader `dataio/corpus/snips.py`;
`downstream/ctc/snips.yaml` and `problem/asr/superb_sf.py` for the voices) turns them into the folder read here:

    SNIPS/all.iob.snips.txt        one line per voice and utterance, all splits:
                                   `<voice>-snips-<split>-<n> BOS <WORDS> EOS<TAB>O <tag per word> <intent>`
                                   words normalised and upper case, a tag per word (`O` or the slot type, e.g.
                                   `timeRange`; B-/I- prefixes are accepted too), intent e.g. `GetWeather`
    SNIPS/{train,valid,test}/<voice>-snips-<split>-<n>.wav   16 kHz mono 16-bit (sox from the mp3s)

The audio of every split holds all 16 voices; SUPERB picks by voice (default of --speakers):
train: Ivy Joanna Joey Justin Kendra Kimberly Matthew Salli (train/ folder), valid: Aditi Amy Geraint Nicole (valid/),
test: Brian Emma Raveena Russell (test/). Written to --out:

    wav.scp     <voice>-snips-<split>-<n> /absolute/path.wav   (the file name is the id; it starts with the voice)
    text        lower-case words, no tags, punctuation-only tokens dropped and `&` read as `and`, as SUPERB does
    text.slots  the same words with each slot value wrapped: `weather in B-city kaneville E-city B-state maryland
                E-state` (consecutive words with the same tag are one slot, SUPERB's rule; an explicit B- tag starts
                a new one)
    utt2intent  the SNIPS intent (AddToPlaylist, BookRestaurant, GetWeather, PlayMusic, RateBook,
                SearchCreativeWork, SearchScreeningEvent)
    utt2spk     the voice; spk2utt derived; utt2dur in seconds from the wav headers

Every problem is reported with its file (and line), then the exit status is 1 and nothing is written: a malformed
line, a word/tag count mismatch, an unknown intent, a duplicate id, a wav of a chosen voice without its line, a
chosen voice without any wav in the split folder, unreadable audio. Lines of a chosen voice without a wav are left
out with a warning (a partial download shows up there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.corpora.common import report, slu_data_dir
from toolkit.corpora.snips import IOB_FILE, SPLITS, SUPERB_SPEAKERS, scan_split
from toolkit.datadir import write_data_dir
from toolkit.fileio import describe_error


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.prepare_snips",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-root", required=True, help=f"the SNIPS folder holding {IOB_FILE} and {SPLITS}")
    p.add_argument("--split", required=True, choices=SPLITS, help="which split (and audio folder) to prepare")
    p.add_argument("--out", required=True, help="the data dir to write, e.g. data/train")
    p.add_argument(
        "--speakers",
        default=None,
        help="comma-separated voices to take from the split's folder (default: SUPERB's voices of the split)",
    )
    p.add_argument("--nj", type=int, default=4, help="threads reading the wav headers")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    speakers = SUPERB_SPEAKERS[args.split]
    if args.speakers is not None:
        speakers = tuple(s for s in args.speakers.split(",") if s)
        if not speakers:
            parser.error("--speakers is empty")
    db_root = Path(args.db_root)
    for needed in (db_root / IOB_FILE, db_root / args.split):
        if not needed.exists():
            print(
                f"error: {needed}: no such file or folder (expected SUPERB's SNIPS folder, holding {IOB_FILE} "
                "and the train/ valid/ test/ wav folders)",
                file=sys.stderr,
            )
            return 1
    try:
        scan = scan_split(db_root, args.split, speakers)
        for warning in scan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        data, problems = slu_data_dir(scan, args.nj)
        if problems:
            report(problems)
            print(f"{db_root}: {len(problems)} problem(s); nothing written to {args.out}", file=sys.stderr)
            return 1
        write_data_dir(data, args.out)
    except (OSError, ValueError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    hours = sum(float(d) for d in data.tables["utt2dur"].values()) / 3600
    print(
        f"{args.out}: {len(scan.wav)} utterances, voices {' '.join(speakers)}, "
        f"{len(set(scan.utt2intent.values()))} intents, {hours:.2f} h from {db_root / args.split}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
