"""Train the speech-text LM (stage 7).

    python -m toolkit.bin.train --config conf/train_sld.yaml --train dump/tokens/mfcc_kmeans/train \\
        --valid dump/tokens/mfcc_kmeans/dev --tokenizers exp/tokenizers/mfcc_kmeans --out exp/sld \\
        [--set optim.lr=5e-4 --set loss.alpha=0.5] [--device cpu|cuda|auto]

Rerunning the same command after a crash (even kill -9) resumes from the last checkpoint. Under torchrun
(`torchrun --nproc_per_node 4 -m toolkit.bin.train ...`) it trains with DDP.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML (conf/train_*.yaml)")
    parser.add_argument("--train", required=True, help="token dir of the training set")
    parser.add_argument("--valid", required=True, help="token dir of the dev set")
    parser.add_argument("--tokenizers", required=True, help="tokenizer dir with vocab.json and text/")
    parser.add_argument("--out", required=True, help="run directory, e.g. exp/<tag>")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    from toolkit.config import ConfigError, load_config
    from toolkit.device import device_option
    from toolkit.fileio import TableError, describe_error
    from toolkit.train.config import TrainConfig
    from toolkit.train.loop import TrainPaths, train
    from toolkit.train.run_dir import RunInUseError

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(device_option(parser, args.device))
    try:
        cfg = load_config(TrainConfig, args.config, args.set)
        paths = TrainPaths(Path(args.train), Path(args.valid), Path(args.tokenizers), Path(args.out))
        result = train(cfg, paths, device)
    except (ConfigError, TableError, ValueError, FloatingPointError, RunInUseError, OSError) as e:
        # OSError: also a full disk (checkpoints are written atomically: the last complete one stays).
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(f"trained {result['steps']} steps in {result['elapsed_s']:.0f} s; best {result['best']:.4f}; {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
