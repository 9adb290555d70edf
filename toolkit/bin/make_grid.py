"""The losses x discretizers table of a comparison in RESULTS.md (run_comparison.sh calls it after its runs).

    python -m toolkit.bin.make_grid --losses "lm ce sld" --discretizers "mfcc_kmeans hubert_kmeans encodec" \\
        [--tag-format "{loss}_{discretizer}_seed{seed}"] [--sets "test dev"] [--exp exp] \\
        [--units-dir dump/units] [--out RESULTS.md]

One row per discretizer with its unit quality (PNMI, perplexity, bitrate from stage 5's unit_report.json of the
first set), one column per loss: mean ± sample std of the WER over the seeds found. Only the block between
`<!-- grid:begin -->` and `<!-- grid:end -->` is rewritten. Runs that have no score yet show '-' and are listed.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from toolkit.scoring.grid import write_grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--losses", required=True, help='space-separated, e.g. "lm ce sld"')
    parser.add_argument("--discretizers", required=True, help='space-separated, e.g. "mfcc_kmeans encodec"')
    parser.add_argument("--tag-format", default="{loss}_{discretizer}_seed{seed}", help="how the runs are tagged")
    parser.add_argument("--sets", default="test dev", help="evaluation sets, one table each")
    parser.add_argument("--exp", default="exp")
    parser.add_argument("--units-dir", default="dump/units", help="holds <discretizer>/<set>/unit_report.json")
    parser.add_argument("--out", default="RESULTS.md")
    args = parser.parse_args(argv)
    losses, discretizers, sets = args.losses.split(), args.discretizers.split(), args.sets.split()
    if not losses or not discretizers or not sets:
        parser.error("--losses, --discretizers and --sets each need at least one name")
    command = "python -m toolkit.bin.make_grid " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        missing = write_grid(args.exp, args.units_dir, args.out, losses, discretizers, args.tag_format, sets, command)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote the losses x discretizers table to {args.out}")
    if missing:
        print(f"no scores yet for {len(missing)} cell(s): {'; '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
