"""Time `python -m toolkit.bin.<verb> --help` for every command, against `python -c pass` (the interpreter's own
start-up) and `python -c "import torch"` (what --help cost when every command imported torch at the top).

    tools/venv/bin/python test/bench/bench_cli_help.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from toolkit.hardware import host_summary

BIN = Path(__file__).resolve().parents[2] / "toolkit/bin"


def best_of(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(host_summary())
    bare = best_of([sys.executable, "-c", "pass"], args.repeats)
    torch_import = best_of([sys.executable, "-c", "import torch"], args.repeats)
    print(f"python -c pass {bare:.2f} s; python -c 'import torch' {torch_import:.2f} s (best of {args.repeats})")
    worst = 0.0
    for path in sorted(BIN.glob("*.py")):
        if path.stem == "__init__":
            continue
        t = best_of([sys.executable, "-m", f"toolkit.bin.{path.stem}", "--help"], args.repeats)
        worst = max(worst, t)
        print(f"{path.stem:22s} {t:5.2f} s  ({t / torch_import:.2f}x the torch import)")
    print(
        f"slowest --help {worst:.2f} s = {worst / torch_import:.2f}x the torch import, {worst / bare:.1f}x bare python"
    )


if __name__ == "__main__":
    main()
