"""Tokenize one set for the speech-text LM: units + transcripts -> speech and text vocabulary-id tables.

    python -m toolkit.bin.make_sequences --tokenizers exp/tokenizers/mfcc_kmeans \\
        --units dump/units/mfcc_kmeans/test/units --text dump/raw/test/text --out dump/tokens/mfcc_kmeans/test

Writes <out>/speech, <out>/text and <out>/stats.json (see toolkit.tokenizers.sequences). Utterances found in only
one of the two inputs are reported and skipped. Bad input prints `error: file:line: ...` and exits with status 1,
leaving no partial output.
"""

from __future__ import annotations

import argparse
import logging
import sys

from toolkit.fileio import describe_error
from toolkit.tokenizers.sequences import Tokenizers, make_sequences


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.make_sequences", description=__doc__.split("\n")[0])
    p.add_argument("--tokenizers", required=True, help="directory written by toolkit.bin.train_tokenizers")
    p.add_argument("--units", required=True, help="units file of the set (`uttid u1 u2 ...`)")
    p.add_argument("--text", required=True, help="Kaldi text file of the set")
    p.add_argument("--out", required=True, help="output directory for speech, text and stats.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        tokenizers = Tokenizers.load(args.tokenizers)
        stats = make_sequences(args.units, args.text, tokenizers, args.out)
    except (ValueError, OSError) as e:  # ConfigError and TableError are ValueErrors
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    skipped = sum(s["count"] for s in stats["skipped"].values())
    print(
        f"{args.out}: {stats['utterances']} utterances, mean {stats['mean_speech_tokens']:.1f} speech / "
        f"{stats['mean_text_tokens']:.1f} text tokens, {skipped} skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
