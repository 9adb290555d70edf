"""A seeded random selection of a data dir's utterances up to a number of hours, e.g. the 10 h LibriSpeech set that
the PAD paper distils on.

    python -m toolkit.bin.select_subset --data data/train_960 --hours 10 --seed 0 --out data/train_10h

The utterances (sorted by id, then shuffled with --seed) are taken in turn while the total stays within --hours;
the first one that would go over ends the selection, so the result holds at most --hours and falls short of it by
less than one utterance. The same data dir and seed always give the same selection. `utt2dur` is required (it is
where the hours come from); asking for more hours than the data dir holds is an error. The output is a complete
data dir (every table of --data, reduced to the selected utterances and their speakers; spk2utt rewritten),
written to <out>.tmp and renamed when complete. Prints the hours and the speakers selected.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

from toolkit.datadir import DataDir, load_data_dir, subset_data_dir, write_data_dir
from toolkit.fileio import describe_error

# Seconds of slack in comparisons, so that float rounding of --hours (e.g. every hour of the data) does not drop one.
EPSILON = 1e-6


def durations(data: DataDir) -> dict[str, float]:
    """Seconds per utterance from utt2dur; raises ValueError naming the file, line and id of a bad value."""
    path = data.path / "utt2dur" if data.path else "utt2dur"
    if not data.has("utt2dur"):
        raise ValueError(
            f"{path}: missing; the selection needs each utterance's duration "
            "(write it with the corpus' prepare script, or format_data_dir)"
        )
    seconds: dict[str, float] = {}
    for lineno, (uttid, value) in enumerate(data["utt2dur"].items(), start=1):
        try:
            seconds[uttid] = float(value)
        except ValueError:
            seconds[uttid] = -1.0
        if not seconds[uttid] > 0:
            raise ValueError(f"{path}:{lineno}: duration '{value}' of '{uttid}' is not a positive number of seconds")
    missing = [u for u in data.utt_ids if u not in seconds]
    if missing:
        raise ValueError(f"{path}: no duration for {len(missing)} utterance(s), e.g. '{missing[0]}'; rewrite utt2dur")
    return seconds


def select(seconds: dict[str, float], hours: float, seed: int) -> list[str]:
    """Utterance ids shuffled with `seed`, taken while their total stays within `hours`."""
    order = sorted(seconds, key=lambda u: u.encode("utf-8"))  # a fixed order, whatever the table's order
    random.Random(seed).shuffle(order)
    budget = hours * 3600 + EPSILON
    chosen: list[str] = []
    total = 0.0
    for uttid in order:
        if total + seconds[uttid] > budget:
            break
        chosen.append(uttid)
        total += seconds[uttid]
    return chosen


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.select_subset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="the data dir to select from (needs utt2dur)")
    p.add_argument("--hours", type=float, required=True, help="the most hours to select, e.g. 10")
    p.add_argument("--seed", type=int, default=0, help="seed of the random selection (default: 0)")
    p.add_argument("--out", required=True, help="the data dir to write")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.hours > 0:
        parser.error(f"--hours must be a positive number, got {args.hours}")
    out = Path(args.out)
    if out.resolve() == Path(args.data).resolve():
        parser.error("--out must differ from --data")
    try:
        data = load_data_dir(args.data)
        seconds = durations(data)
        available = sum(seconds.values()) / 3600
        if args.hours * 3600 > available * 3600 + EPSILON:
            raise ValueError(
                f"{args.data}: --hours {args.hours:g} is more than the data dir holds ({available:.3f} h in "
                f"{len(seconds)} utterances); ask for at most {available:.3f}"
            )
        chosen = select(seconds, args.hours, args.seed)
        if not chosen:
            raise ValueError(f"{args.data}: no utterance fits in --hours {args.hours:g} (the shortest is longer)")
        subset = subset_data_dir(data, chosen)
        tmp = out.with_name(out.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        write_data_dir(subset, tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except (OSError, ValueError) as e:  # TableError is a ValueError and names file:line
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    hours = sum(seconds[u] for u in chosen) / 3600
    speakers = len(set(subset["utt2spk"].values())) if subset.has("utt2spk") else 0
    all_speakers = len(set(data["utt2spk"].values())) if data.has("utt2spk") else 0
    print(
        f"{args.out}: {len(chosen)} of {len(seconds)} utterances, {hours:.3f} h of {available:.3f} h, "
        f"{speakers} of {all_speakers} speakers (seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
