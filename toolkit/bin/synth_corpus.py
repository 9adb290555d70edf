"""Synthesise (a shard of) one split of the embedded espeak-ng corpus into a Kaldi-style data dir.

Example: python -m toolkit.bin.synth_corpus --out data/train --split train --num-utts 15000 --seed 1
Shards: run --shard K --num-shards N into N different --out dirs, then combine them.
"""

from __future__ import annotations

import argparse
import sys

from toolkit.synth.speakers import SPLITS, split_speakers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit.bin.synth_corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output data dir (wav/ and the Kaldi tables go here)")
    parser.add_argument("--split", required=True, choices=SPLITS, help="which speakers and sentence stream to use")
    parser.add_argument("--num-utts", type=int, required=True, help="utterances in the whole split (all shards)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the split's plan (sentences, voices)")
    parser.add_argument("--shard", type=int, default=1, help="which shard to synthesise, 1-based (default 1)")
    parser.add_argument("--num-shards", type=int, default=1, help="number of shards of the split (default 1)")
    parser.add_argument("--sample-rate", type=int, default=16000, help="output sample rate in Hz (default 16000)")
    parser.add_argument(
        "--max-repeats",
        type=int,
        default=0,
        help="redraw a sentence already planned this many times (1: all distinct; default 0: no limit)",
    )
    parser.add_argument(
        "--num-speakers",
        type=int,
        help="use only the first N speakers of the split's table (default: all; 48 for train: the earlier corpus)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Checked here so that a bad value is a usage error (exit 2) and not a traceback.
    if args.num_utts < 1:
        parser.error(f"--num-utts must be at least 1, got {args.num_utts}")
    if args.num_shards < 1:
        parser.error(f"--num-shards must be at least 1, got {args.num_shards}")
    if not 1 <= args.shard <= args.num_shards:
        parser.error(f"--shard must be in 1..{args.num_shards}, got {args.shard}")
    if args.sample_rate < 8000:
        parser.error(f"--sample-rate must be at least 8000, got {args.sample_rate}")
    if args.max_repeats < 0:
        parser.error(f"--max-repeats must be 0 (no limit) or more, got {args.max_repeats}")
    from toolkit.synth.corpus import synthesize_split  # here: torch loads only when there is work (not for --help)

    available = len(split_speakers(args.split))
    if args.num_speakers is not None and not 1 <= args.num_speakers <= available:
        parser.error(f"--num-speakers must be in 1..{available} for the {args.split} split, got {args.num_speakers}")
    synthesize_split(
        args.out,
        args.split,
        args.num_utts,
        args.seed,
        shard=args.shard,
        num_shards=args.num_shards,
        sample_rate=args.sample_rate,
        progress=not args.no_progress,
        max_repeats=args.max_repeats,
        num_speakers=args.num_speakers,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
