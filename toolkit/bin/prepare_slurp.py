"""Kaldi data dir of one SLURP split (train, devel, test, train_synth), from the SLURP repository and its audio.

    python -m toolkit.bin.prepare_slurp --db-root /data/slurp --split train --out data/train \\
        [--audio_dir /data/slurp/audio] [--nj 4]

The layout (github.com/pswietojanski/slurp, README and scripts/download_audio.sh; audio on zenodo.org/record/4274930):

    slurp/dataset/slurp/{train,devel,test}.jsonl    one entry per prompt, e.g.
        {"slurp_id": 4489, "sentence": "wake me up at eight o'clock",
         "sentence_annotation": "wake me up at [time : eight] o'clock", "intent": "alarm_set", "action": "set",
         "scenario": "alarm", "recordings": [{"file": "audio-1502099775-headset.flac", ...}, ...], ...}
    slurp/dataset/slurp/train_synthetic.jsonl       the same for the synthetic (TTS) training prompts
    slurp/dataset/slurp/metadata.json               per slurp_id, per recording file: {"usrid": "FO-488", ...}
    slurp/audio/slurp_real/<file>                    16 kHz FLAC (slurp_synth/ for train_synthetic.jsonl)

Each recording is one utterance (a prompt read by several people, each by a close-talk `-headset` and a far-field
microphone, gives several). Written to --out:

    wav.scp     <speaker>-<file without .flac> /absolute/path.flac   (the FLAC itself)
    text        the words of sentence_annotation without its brackets (that is `sentence`; spaces collapsed)
    text.slots  each `[type : value]` span as `B-type value E-type`: `wake me up at B-time eight E-time o'clock`
    utt2intent  the entry's intent, `<scenario>_<action>` (e.g. alarm_set)
    utt2spk     the speaker: the recording's `usrid` in metadata.json (`<F|M|UNK><E|O>-<number>`, gender and native
                language), as ESPnet's SLURP recipe does; `synth` for every train_synth utterance (TTS voices are
                not listed)
    spk2utt, utt2dur (seconds from the FLAC headers)

Every problem is reported with its file and line, then the exit status is 1 and nothing is written: a line that is
not JSON or lacks a field, an empty or spaced intent, an unbalanced or empty `[type : value]` span, a recording
without a speaker in metadata.json, a missing audio file. A recording listed twice keeps its first entry (warning);
an intent other than scenario_action and an annotation whose words differ from `sentence` are warned about.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.corpora.common import report, slu_data_dir
from toolkit.corpora.slurp import SPLITS, read_speakers, scan_split
from toolkit.datadir import write_data_dir
from toolkit.fileio import describe_error


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.prepare_slurp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-root", required=True, help="the SLURP repository folder, holding dataset/slurp")
    p.add_argument("--split", required=True, choices=tuple(SPLITS), help="which jsonl to read")
    p.add_argument("--out", required=True, help="the data dir to write, e.g. data/train")
    p.add_argument(
        "--audio_dir",
        "--audio-dir",
        default=None,
        help="the folder holding slurp_real/ and slurp_synth/ (default: <db_root>/audio)",
    )
    p.add_argument("--nj", type=int, default=4, help="threads reading the FLAC headers")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    db_root = Path(args.db_root)
    dataset = db_root / "dataset/slurp"
    jsonl = dataset / f"{SPLITS[args.split]}.jsonl"
    synth = args.split == "train_synth"
    audio_dir = Path(args.audio_dir or db_root / "audio") / ("slurp_synth" if synth else "slurp_real")
    needed = [jsonl, audio_dir] + ([] if synth else [dataset / "metadata.json"])
    for path in needed:
        if not path.exists():
            print(
                f"error: {path}: no such file or folder (expected the SLURP repository with dataset/slurp/*.jsonl "
                "and its audio extracted to audio/slurp_real and audio/slurp_synth)",
                file=sys.stderr,
            )
            return 1
    try:
        speakers = None if synth else read_speakers(dataset / "metadata.json")
        scan = scan_split(jsonl, audio_dir, speakers)
        for warning in scan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if not scan.problems and not scan.wav:
            scan.problems.append(f"{jsonl}: no recordings")
        data, problems = slu_data_dir(scan, args.nj)
        if problems:
            report(problems)
            print(f"{jsonl}: {len(problems)} problem(s); nothing written to {args.out}", file=sys.stderr)
            return 1
        write_data_dir(data, args.out)
    except (OSError, ValueError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    hours = sum(float(d) for d in data.tables["utt2dur"].values()) / 3600
    print(
        f"{args.out}: {len(scan.wav)} utterances, {len(set(scan.utt2spk.values()))} speakers, "
        f"{len(set(scan.utt2intent.values()))} intents, {hours:.2f} h from {jsonl}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
