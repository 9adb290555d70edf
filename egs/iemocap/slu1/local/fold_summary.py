"""SUPERB's ER figure: the mean test accuracy over IEMOCAP's leave-one-session-out folds, per run tag.

    python local/fold_summary.py --exp exp --tags pad_slocal [none ...] [--folds "1 2 3 4 5"]

run.sh writes fold k of tag T to <exp-dir>/er_fold<k>_<T>/eval/fold<k>_test/score.json. For every tag this prints
each fold's accuracy and their mean, and writes <exp-dir>/er_folds_<T>.json ({"tag", "folds": {k: accuracy},
"mean"}). Tags that differ only by a `_seed<N>` suffix (run_comparison.sh) are then summarised as the mean and the
sample standard deviation of their fold means. A missing score.json is an error that names it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

SEED = re.compile(r"^(?P<base>.+)_seed(?P<seed>\d+)$")


def fold_accuracies(exp_dir: Path, tag: str, folds: list[int]) -> dict[int, float]:
    """Test accuracy (%) of every fold of `tag`; FileNotFoundError names the first missing score.json."""
    scores = {}
    for k in folds:
        path = exp_dir / f"er_fold{k}_{tag}" / "eval" / f"fold{k}_test" / "score.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run ./run.sh --fold {k} for tag {tag} first")
        scores[k] = float(json.loads(path.read_text(encoding="utf-8"))["accuracy"])
    return scores


def seed_groups(means: dict[str, float]) -> dict[str, list[float]]:
    """Fold means of the tags named <base>_seed<N>, grouped by <base>."""
    groups: dict[str, list[float]] = {}
    for tag, mean in means.items():
        match = SEED.match(tag)
        if match:
            groups.setdefault(match["base"], []).append(mean)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", default="exp", help="the recipe's exp/ (run.sh --expdir)")
    parser.add_argument("--tags", nargs="+", required=True, help="run tags (run.sh --tag; default: the config's name)")
    parser.add_argument("--folds", default="1 2 3 4 5", help="the folds to average (default: all five)")
    args = parser.parse_args(argv)
    try:
        folds = [int(k) for k in args.folds.split()]
    except ValueError:
        parser.error(f"--folds must list fold numbers, got '{args.folds}'")
    if not folds or not all(1 <= k <= 5 for k in folds):
        parser.error(f"--folds must list folds among 1..5, got '{args.folds}'")
    exp_dir = Path(args.exp)
    means = {}
    for tag in args.tags:
        try:
            scores = fold_accuracies(exp_dir, tag, folds)
        except (FileNotFoundError, KeyError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        means[tag] = statistics.fmean(scores.values())
        summary = {"tag": tag, "folds": scores, "mean": means[tag]}
        (exp_dir / f"er_folds_{tag}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        cells = "  ".join(f"fold{k} {acc:.2f}" for k, acc in scores.items())
        print(f"{tag}: mean ER accuracy {means[tag]:.2f}% over {len(folds)} fold(s)  ({cells})")
    for base, values in sorted(seed_groups(means).items()):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{base}: {statistics.fmean(values):.2f} ± {spread:.2f}% over {len(values)} seed(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
