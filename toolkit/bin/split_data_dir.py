"""Split a data dir into N shards at `<dir>/split<N>/<k>` for parallel jobs (k = 1..N).

python -m toolkit.bin.split_data_dir data/train 4
"""

from __future__ import annotations

import argparse
import sys

from toolkit.datadir import split_data_dir
from toolkit.fileio import TableError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("num_shards", type=int)
    args = parser.parse_args(argv)
    try:
        split_data_dir(args.data_dir, args.num_shards)
    except (TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
