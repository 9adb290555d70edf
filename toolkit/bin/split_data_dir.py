"""Split a data dir into N shards at `<dir>/split<N>/<k>` for parallel jobs (k = 1..N).

python -m toolkit.bin.split_data_dir --data data/train --num-shards 4
"""

from __future__ import annotations

import argparse
import sys

from toolkit.datadir import split_data_dir
from toolkit.fileio import TableError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the data dir to split")
    parser.add_argument("--num-shards", type=int, required=True, help="N, the number of shards")
    args = parser.parse_args(argv)
    try:
        split_data_dir(args.data, args.num_shards)
    except (TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
