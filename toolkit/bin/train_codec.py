"""Train a small EnCodec-architecture codec for the `encodec` discretizer (see toolkit/train/codec.py).

    python -m toolkit.bin.train_codec --config conf/codec/encodec_small.yaml --train data/train --valid data/dev \\
        --out exp/codec/encodec_small [--set steps=2000 --set optim.lr=5e-4] [--threads N] [--device cpu|cuda|auto]

Rerunning the same command after a crash (even kill -9) resumes from the last checkpoint; after completion it says
so and exits 0. The trained model is out/model (EncodecModel.save_pretrained); point a discretizer config's `model:`
at it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="codec YAML (conf/codec/*.yaml)")
    parser.add_argument("--train", required=True, help="training data dir")
    parser.add_argument("--valid", required=True, help="dev data dir (evaluated at the end)")
    parser.add_argument("--out", required=True, help="run directory, e.g. exp/codec/encodec_small")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    add_device_option(parser)
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    from toolkit.audio import AudioError
    from toolkit.config import ConfigError, load_config
    from toolkit.device import device_option
    from toolkit.fileio import TableError, describe_error
    from toolkit.train.codec import CodecPaths, CodecTrainConfig, train_codec
    from toolkit.train.run_dir import RunInUseError

    device = device_option(parser, args.device)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(CodecTrainConfig, args.config, args.set)
        result = train_codec(cfg, CodecPaths(Path(args.train), Path(args.valid), Path(args.out)), device=device)
    except (ConfigError, AudioError, TableError, ValueError, FloatingPointError, RunInUseError, OSError) as e:
        # OSError: also a full disk (checkpoints are written atomically: the last complete one stays).
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests)
    if result.get("already_complete"):
        print(f"{args.out}: training is already complete ({result['steps']} steps); model in {args.out}/model")
        return 0
    best = max(result["dev"].items(), key=lambda kv: kv[1]["codebooks"])
    print(
        f"trained {result['steps']} steps in {result['elapsed_s']:.0f} s; dev SNR at {best[0]} "
        f"{best[1]['snr_db']:.2f} dB; model in {args.out}/model"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
