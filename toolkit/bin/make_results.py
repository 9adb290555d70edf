"""Regenerate a recipe's RESULTS.md: `python -m toolkit.bin.make_results --exp exp --out RESULTS.md`.

Gathers every exp/<tag>/{decode,eval}/<set>/score.json into markdown tables. Only the block between
`<!-- results:begin -->` and `<!-- results:end -->` is rewritten; text around it is kept.
"""

from __future__ import annotations

import argparse
import logging
import sys

from toolkit.scoring.results import write_results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m toolkit.bin.make_results", description=__doc__.split("\n")[0])
    p.add_argument("--exp", default="exp", help="the recipe's exp/ directory (default: exp)")
    p.add_argument("--out", default="RESULTS.md", help="the markdown file to create or update (default: RESULTS.md)")
    p.add_argument("--title", default="Results", help="title of a newly created file (default: Results)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        entries = write_results(args.exp, args.out, args.title)
    except (ValueError, OSError) as e:
        msg = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(entries)} score.json file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
