"""Run a training entry point as several DDP processes: on this machine, or across the nodes of a Slurm job.

    python -m toolkit.bin.launch --nproc 8 -- -m toolkit.bin.train --config conf/train_sld.yaml ... --device cuda
    python -m toolkit.bin.launch --nnodes 4 --nproc 8 [--srun-options "--partition=gpu --gres=gpu:8"] -- \\
        -m toolkit.bin.train ...

The arguments after `--` are those of `python`. One node (--nnodes 1): the ranks start here and meet through a
file store, with no rendezvous port open on the network. Several: `srun` starts torchrun on each node (toolkit/launch.py).
The exit status is the first failing rank's.
"""

from __future__ import annotations

import argparse
import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit.bin.launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nproc", type=int, required=True, help="processes per node (one per GPU)")
    parser.add_argument("--nnodes", type=int, default=1, help="nodes (more than 1: through Slurm's srun)")
    parser.add_argument("--srun-options", default="", help="several nodes: extra srun options")
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="-- then python's arguments, e.g. -m toolkit.bin.train ..."
    )
    args = parser.parse_args(argv)
    command = args.args[1:] if args.args[:1] == ["--"] else args.args
    if not command:
        parser.error("no command given (put python's arguments after --)")
    if args.nproc < 1 or args.nnodes < 1:
        parser.error("--nproc and --nnodes must be at least 1")
    from toolkit.launch import run_local, run_slurm

    try:
        if args.nnodes == 1:
            return run_local(args.nproc, command)
        return run_slurm(args.nnodes, args.nproc, command, shlex.split(args.srun_options))
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
