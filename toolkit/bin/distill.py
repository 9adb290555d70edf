"""PAD distillation of a text teacher into a speech SSL student on paired data (see toolkit/train/distill.py).

    python -m toolkit.bin.distill --config conf/distill/pad_slocal.yaml --data data/paired \\
        --out exp/distill/pad_slocal [--valid data/dev] [--set loss.kind=glob --set max_steps=2000] [--threads N]

--data is a Kaldi data dir with wav.scp and text; without --valid, dev.holdout_fraction of it is held out for a dev
loss. The teacher's outputs are cached in out/teacher_cache (or --teacher-cache DIR, shareable between runs of the
same teacher). Rerunning the same command after a crash (even kill -9) resumes from the last checkpoint; after
completion it says so and exits 0. The distilled student is out/model (save_pretrained: AutoModel.from_pretrained
loads it); out/projection.pt, when the hidden sizes differ, is kept for reference only.

Several GPUs (DDP, one process per GPU; on Slurm, one srun task per GPU with the torchrun rendezvous variables):
    torchrun --nproc_per_node 4 -m toolkit.bin.distill --device cuda --config ... --data ... --out ...
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="distillation YAML (conf/distill/*.yaml)")
    parser.add_argument("--data", required=True, help="paired data dir (wav.scp + text)")
    parser.add_argument("--out", required=True, help="run directory, e.g. exp/distill/pad_slocal")
    parser.add_argument("--valid", default=None, help="validation data dir (default: hold out part of --data)")
    parser.add_argument(
        "--teacher-cache", default=None, help="teacher output cache folder (default: out/teacher_cache)"
    )
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
    from toolkit.train.distill import DistillConfig, DistillPaths, distill
    from toolkit.train.run_dir import RunInUseError

    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.stop_after_steps is not None and args.stop_after_steps < 1:
        parser.error(f"--stop-after-steps must be >= 1, got {args.stop_after_steps}")
    device = device_option(parser, args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(DistillConfig, args.config, args.set)
        paths = DistillPaths(
            data=Path(args.data),
            out=Path(args.out),
            dev=Path(args.valid) if args.valid else None,
            teacher_cache=Path(args.teacher_cache) if args.teacher_cache else None,
        )
        result = distill(cfg, paths, device, stop_after_steps=args.stop_after_steps)
    except (ConfigError, AudioError, TableError, ValueError, FloatingPointError, RunInUseError, OSError) as e:
        # OSError: also a full disk (checkpoints are written atomically: the last complete one stays).
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun the first process reports
    if result.get("already_complete"):
        print(f"{args.out}: distillation is already complete ({result['steps']} steps); student in {args.out}/model")
    elif result.get("stopped"):
        print(f"stopped at step {result['steps']}; rerun the same command to go on")
    else:
        dev = "" if result["dev_loss"] is None else f"; dev loss {result['dev_loss']:.4f}"
        skipped = sum(result["skipped"]["train"].values())
        print(
            f"distilled {result['steps']} steps in {result['elapsed_s']:.0f} s{dev}; {result['train_utts']} training "
            f"utterances ({skipped} skipped, see train.log); student in {args.out}/model"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
