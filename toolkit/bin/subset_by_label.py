"""A data dir of the utterances whose label matches a pattern, optionally a seeded random sample of them.

    python -m toolkit.bin.subset_by_label --data data/train --out data/ic_train --table utt2intent \\
        --match '\\|' [--exclude '^chat$'] [--max-utts 2000] [--seed 1]

--match / --exclude are Python regular expressions searched in the label (`re.search`); an utterance is kept when it
matches --match (if given) and not --exclude (if given). --max-utts N keeps N of them drawn at random with --seed
(the same seed gives the same subset), else all. The result is a valid data dir (every table restricted to the kept
utterances, spk2utt rebuilt), written to <out>.tmp and renamed, so a failure never leaves half of one. Used by
recipes to cut task sets (IC on commands, SF on slot-bearing queries) out of one corpus. A speaker table
(`--table spk2voice`, `spk2gender`) labels each utterance with its speaker's entry: test conditions by voice.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
from pathlib import Path

from toolkit.datadir import SPEAKER_TABLES, load_data_dir, subset_data_dir, write_data_dir
from toolkit.fileio import TableError, describe_error


def select(
    labels: dict[str, str], match: str | None, exclude: str | None, max_utts: int | None, seed: int
) -> list[str]:
    """Utterance ids (sorted) whose label passes the patterns; at most max_utts, drawn with `seed`."""
    keep_re = re.compile(match) if match else None
    drop_re = re.compile(exclude) if exclude else None
    kept = [
        u
        for u in sorted(labels)
        if (keep_re is None or keep_re.search(labels[u])) and (drop_re is None or not drop_re.search(labels[u]))
    ]
    if max_utts is not None and len(kept) > max_utts:
        kept = sorted(random.Random(seed).sample(kept, max_utts))
    return kept


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="source data dir")
    p.add_argument("--out", required=True, help="output data dir")
    p.add_argument("--table", default="utt2intent", help="the label table to match (default utt2intent)")
    p.add_argument("--match", help="keep labels where this regex is found")
    p.add_argument("--exclude", help="drop labels where this regex is found")
    p.add_argument("--max-utts", type=int, help="keep at most N utterances, drawn at random with --seed")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.max_utts is not None and args.max_utts < 1:
        p.error(f"--max-utts must be >= 1, got {args.max_utts}")
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        for name, pattern in (("--match", args.match), ("--exclude", args.exclude)):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise ValueError(f"{name} {pattern!r} is not a valid regular expression: {e}") from None
        data = load_data_dir(args.data)
        if not data.has(args.table):
            raise FileNotFoundError(f"{args.data}/{args.table} does not exist")
        table = data[args.table]
        if args.table in SPEAKER_TABLES:  # a speaker's label is each of its utterances' label
            labels = {u: table[s] for u, s in data["utt2spk"].items() if s in table}
        else:
            labels = {u: table[u] for u in data.utt_ids if u in table}
        kept = select(labels, args.match, args.exclude, args.max_utts, args.seed)
        if not kept:
            raise ValueError(
                f"no utterance of {args.data}/{args.table} matches (--match {args.match!r}, --exclude {args.exclude!r})"
            )
        if tmp.exists():
            shutil.rmtree(tmp)
        write_data_dir(subset_data_dir(data, kept), tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except (TableError, ValueError, OSError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(f"{len(kept)} of {len(data.utt_ids)} utterances of {args.data} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
