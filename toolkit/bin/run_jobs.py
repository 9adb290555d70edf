"""Run a command once per data shard, locally or on Slurm; `JOB` in the command and log path is the shard index.

    python -m toolkit.bin.run_jobs --nj 4 --log exp/log/dump.JOB.log [--backend slurm] [--gpus 2] -- \\
        python -m toolkit.bin.some_stage --data data/train/split4/JOB

cmd.sh picks the backend for a recipe. On failure the tail of each failing job's log is printed and the exit
status is 1.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from toolkit.jobs import report_failures, run_local, run_slurm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nj", type=int, required=True, help="number of jobs")
    parser.add_argument("--log", required=True, help="log path containing JOB, e.g. exp/log/stage3.JOB.log")
    parser.add_argument("--backend", choices=("local", "slurm"), default="local")
    parser.add_argument("--max-parallel", type=int, default=None, help="local: jobs at once (default: nj)")
    parser.add_argument("--sbatch-options", default="", help="slurm: extra sbatch options, e.g. '--partition=cpu'")
    parser.add_argument(
        "--gpus", type=int, default=0, help="give each job one GPU, taken in turn from this many (default: 0, none)"
    )
    parser.add_argument("--name", default=None, help="job name (default: from the log file name)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    if args.gpus < 0:
        parser.error(f"--gpus must be >= 0, got {args.gpus}")
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    if "JOB" not in args.log and args.nj > 1:
        parser.error("--log must contain JOB so that each job has its own log")
    name = args.name or args.log.rsplit("/", 1)[-1].split(".")[0]

    start = time.time()
    try:
        if args.backend == "local":
            results = run_local(command, args.nj, args.log, args.max_parallel, args.gpus)
        else:
            results = run_slurm(command, args.nj, args.log, shlex.split(args.sbatch_options), name, args.gpus)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if any(r.returncode != 0 for r in results):
        report_failures(results)
        return 1
    print(f"{name}: {args.nj} job(s) finished in {time.time() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
