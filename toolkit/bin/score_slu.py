"""Score SLU output: `python -m toolkit.bin.score_slu --task ic|sf --ref FILE --hyp FILE --out DIR`.

ic: utt2intent tables (`uttid label`, slots joined by '|'); writes score.json and intents.txt (the wrong ones).
er: utt2emotion tables, scored like ic (accuracy), with task "er" in score.json.
sf: text.slots tables (transcripts with `B-<type> value E-<type>` tags); writes score.json, slots.txt (per
utterance) and the ASR reports of the transcripts without tags. Bad input is `error: ...` with exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from toolkit.fileio import describe_error, read_table
from toolkit.scoring.slu import score_ic, score_sf


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.score_slu", description=__doc__.split("\n")[0])
    p.add_argument(
        "--task",
        required=True,
        choices=["ic", "er", "sf"],
        help="intent classification, emotion recognition or slot filling",
    )
    p.add_argument("--ref", required=True, help="reference utt2intent (ic) or text.slots (sf)")
    p.add_argument("--hyp", required=True, help="hypothesis table of the same kind")
    p.add_argument("--out", required=True, help="where score.json and the per-utterance report go")
    p.add_argument("--slot-names", help="ic: comma-separated names of the '|' fields, e.g. action,object,location")
    p.add_argument("--utt2spk", help="sf: uttid -> speaker for the transcript WER report")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        # A reference intent must have a label; a reference transcript may be empty (skipped with a warning);
        # an empty hypothesis is always possible decoder output.
        ref = read_table(args.ref, allow_empty_value=args.task == "sf")
        hyp = read_table(args.hyp, allow_empty_value=True)
        utt2spk = read_table(args.utt2spk) if args.utt2spk else None
        names = [n.strip() for n in args.slot_names.split(",")] if args.slot_names else None
        try:
            if args.task in ("ic", "er"):
                summary = score_ic(ref, hyp, args.out, names, task=args.task)
            else:
                summary = score_sf(ref, hyp, args.out, utt2spk)
        except ValueError as e:
            raise ValueError(f"scoring {args.hyp} against {args.ref}: {e}") from None
    except (ValueError, OSError) as e:  # TableError is a ValueError
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    if args.task in ("ic", "er"):
        print(
            f"{'intent' if args.task == 'ic' else 'emotion'} accuracy {summary['accuracy']:.2f}%  n_utt {summary['n_utt']}  ({args.out})"
        )
    else:
        print(
            f"slot type F1 {summary['slot_type_f1']:.2f}%  slot value CER {summary['slot_value_cer']:.2f}%  "
            f"WER {summary['wer']:.2f}%  n_utt {summary['n_utt']}  ({args.out})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
