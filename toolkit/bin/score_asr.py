"""Score a decoding: `python -m toolkit.bin.score_asr --ref data/test/text --hyp .../text --out ...`.

Writes ref.trn, hyp.trn, score_wer/result.txt, score_cer/result.txt and score.json into --out and prints one
summary line. Bad input (malformed table, unknown hypothesis id) is reported as `error: ...` with exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from toolkit.fileio import describe_error, read_table
from toolkit.scoring.asr import score_asr


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.score_asr", description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="Kaldi text file of references (uttid words...)")
    p.add_argument("--hyp", required=True, help="Kaldi text file of hypotheses; an id alone is an empty hypothesis")
    p.add_argument("--out", required=True, help="where the trn files, result.txt files and score.json go")
    p.add_argument("--utt2spk", help="uttid -> speaker, for the per-speaker rows (default: id prefix before '-')")
    p.add_argument("--lowercase", action="store_true", help="lower-case both sides before scoring")
    p.add_argument("--strip-punct", action="store_true", help="delete punctuation on both sides before scoring")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        # Empty values are allowed on both sides: an empty reference is skipped with a warning, and an empty
        # hypothesis is a legitimate decoder output.
        ref = read_table(args.ref, allow_empty_value=True)
        hyp = read_table(args.hyp, allow_empty_value=True)
        utt2spk = read_table(args.utt2spk) if args.utt2spk else None
        try:
            summary = score_asr(ref, hyp, args.out, utt2spk, args.lowercase, args.strip_punct)
        except ValueError as e:
            raise ValueError(f"scoring {args.hyp} against {args.ref}: {e}") from None
    except (ValueError, OSError) as e:  # TableError is a ValueError
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(f"WER {summary['wer']:.2f}%  CER {summary['cer']:.2f}%  n_utt {summary['n_utt']}  ({args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
