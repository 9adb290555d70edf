"""Combine data dirs (e.g. the shards of a stage) into one.

    python -m toolkit.bin.combine_data_dir --data data/a data/b --out data/all [--concat dropped_utts]

Duplicate ids are an error. `--concat NAME` also concatenates a non-standard table (such as a stage's
`dropped_utts` report) from the parts that have it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.datadir import combine_data_dirs, load_data_dir, write_data_dir
from toolkit.fileio import TableError, read_table, write_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="extend", nargs="+", required=True, help="the data dirs to combine")
    parser.add_argument("--out", required=True, help="the combined data dir")
    parser.add_argument("--concat", action="append", default=[], help="extra table to concatenate")
    args = parser.parse_args(argv)
    try:
        parts = [load_data_dir(p) for p in args.data]
        combined = combine_data_dirs(parts)
        extras = {}
        for name in args.concat:
            extras[name] = {}
            for part in args.data:
                if (Path(part) / name).exists():
                    extras[name].update(read_table(Path(part) / name))
    except (TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    write_data_dir(combined, args.out)
    for name, table in extras.items():
        write_table(Path(args.out) / name, table)
    print(f"{args.out}: {len(combined.utt_ids)} utterances from {len(parts)} data dir(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
