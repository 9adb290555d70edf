"""Check or record a recipe stage's `.done` marker.

    python -m toolkit.bin.stage check --marker exp/.done/stage3 --inputs data/train --options "fs=16000" \\
        --outputs dump/raw/train     # exit 0: skip (unchanged); exit 1: run it
    python -m toolkit.bin.stage mark  --marker exp/.done/stage3 --inputs data/train --options "fs=16000" \\
        --outputs dump/raw/train     # records the outputs as written: a later change to them is noticed
"""

from __future__ import annotations

import argparse
import sys

from toolkit.stage import is_done, mark_done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("check", "mark"))
    parser.add_argument("--marker", required=True)
    parser.add_argument("--inputs", nargs="*", default=[])
    parser.add_argument("--outputs", nargs="*", default=[])
    parser.add_argument("--options", default="")
    parser.add_argument("--label", default="stage", help="how to name the stage in messages")
    args = parser.parse_args(argv)
    if args.action == "mark":
        mark_done(args.marker, args.inputs, args.options, args.outputs)
        return 0
    done, why = is_done(args.marker, args.inputs, args.options, args.outputs)
    print(f"{args.label}: {'skipped' if done else 'running'} ({why})")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
