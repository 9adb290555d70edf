"""Check a Kaldi-style data dir and list every problem with its file, line and id.

    python -m toolkit.bin.validate_data_dir --data data/train [data/dev ...] [--sample-rate 16000] [--no-audio]

Exit status 0 when the data dir is valid, 1 when it has problems.
"""

from __future__ import annotations

import argparse
import sys

from toolkit.validate import validate_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="extend", nargs="+", required=True, help="the data dirs to check")
    parser.add_argument("--sample-rate", type=int, default=None, help="expected sample rate of every recording")
    parser.add_argument("--no-audio", action="store_true", help="skip opening the audio files")
    parser.add_argument("--no-text", action="store_true", help="a `text` file is not required")
    parser.add_argument("--max-report", type=int, default=50, help="print at most this many problems")
    parser.add_argument("--nj", type=int, default=4, help="threads for opening audio")
    args = parser.parse_args(argv)

    failed = 0
    for data_dir in args.data:
        problems = validate_data_dir(
            data_dir,
            check_audio=not args.no_audio,
            sample_rate=args.sample_rate,
            require_text=not args.no_text,
            num_threads=args.nj,
        )
        for problem in problems[: args.max_report]:
            print(f"error: {problem}", file=sys.stderr)
        if len(problems) > args.max_report:
            print(f"error: ... and {len(problems) - args.max_report} more", file=sys.stderr)
        if problems:
            print(f"{data_dir}: {len(problems)} problem(s) found", file=sys.stderr)
            failed += 1
        else:
            print(f"{data_dir}: valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
