"""Train a SUPERB downstream head (IC, ER or SF) on a frozen upstream (see toolkit/train/downstream.py).

    python -m toolkit.bin.train_downstream --config conf/downstream/ic.yaml --train data/ic_train \\
        --valid data/ic_dev --upstream exp/distill/pad_slocal/model --out exp/pad_slocal_ic \\
        [--set optim.lr=1e-3 --set epochs=5] [--threads N] [--device cpu|cuda|auto]

--upstream (a hub name or a folder saved with save_pretrained) overrides the config's `upstream`. The data dirs need
wav.scp and the task's label table (utt2intent for ic, utt2emotion for er, text.slots for sf; `label_table` in the
config for another). Rerunning the same command after a crash (even kill -9) resumes from the last checkpoint; after
completion it says so and exits 0. The trained head is out/head.pt (toolkit.bin.infer_downstream reads it).

Several GPUs (or CPU processes): run it under torchrun, one process per GPU, with the same arguments; the head is
trained with DDP, each process on its share of every epoch's batches, and only the first process writes to --out:

    torchrun --nproc_per_node 4 -m toolkit.bin.train_downstream --config conf/downstream/ic.yaml ... --device cuda

A run stopped in the middle of an epoch resumes on as many processes as it was started with.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="downstream YAML (conf/downstream/*.yaml)")
    parser.add_argument("--train", required=True, help="training data dir (wav.scp + label table)")
    parser.add_argument("--valid", default=None, help="dev data dir: the best epoch is chosen on it")
    parser.add_argument("--upstream", default=None, help="frozen upstream: hub name or save_pretrained folder")
    parser.add_argument("--out", required=True, help="run directory, e.g. exp/pad_slocal_ic")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--stop-after-steps", type=int, default=None, help="end this run after N steps (resumable)")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    from toolkit.audio import AudioError
    from toolkit.config import ConfigError, load_config
    from toolkit.device import device_option
    from toolkit.fileio import TableError, describe_error
    from toolkit.train.downstream import DownstreamConfig, DownstreamPaths, train_downstream
    from toolkit.train.run_dir import RunInUseError

    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.stop_after_steps is not None and args.stop_after_steps < 1:
        parser.error(f"--stop-after-steps must be >= 1, got {args.stop_after_steps}")
    device = device_option(parser, args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = list(args.set) + ([f"upstream={args.upstream}"] if args.upstream else [])
    try:
        cfg = load_config(DownstreamConfig, args.config, overrides)
        paths = DownstreamPaths(
            train=Path(args.train), out=Path(args.out), valid=Path(args.valid) if args.valid else None
        )
        result = train_downstream(cfg, paths, torch.device(device), stop_after_steps=args.stop_after_steps)
    except (ConfigError, AudioError, TableError, ValueError, FloatingPointError, RunInUseError, OSError) as e:
        # OSError: also a full disk (checkpoints are written atomically: the last complete one stays).
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun the first process reports
    if result.get("stopped"):
        print(f"stopped at step {result['steps']}; rerun the same command to go on")
    elif not result.get("already_complete"):
        best = result["best"]
        chosen = f"best dev {best['metric']:.2f}% at epoch {best['epoch']}" if best else "no dev set: last epoch"
        print(f"trained {result['steps']} steps in {result['elapsed_s']:.0f} s ({chosen}); head in {args.out}/head.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
