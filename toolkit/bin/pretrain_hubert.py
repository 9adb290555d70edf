"""HuBERT-style masked-prediction pretraining of a transformers HubertModel on a Kaldi data dir.

The frame targets come from toolkit/train/hubert_targets.py, the training loop from toolkit/train/hubert.py.

    python -m toolkit.bin.pretrain_hubert --config conf/upstream/hubert.yaml --train data/train --valid data/dev \\
        --out exp/upstream/hubert [--set key=value ...] [--threads N] [--device cpu|cuda]

    # iteration 2: targets from layer L of the iteration-1 model
    python -m toolkit.bin.pretrain_hubert --config conf/upstream/hubert.yaml --train data/train --valid data/dev \\
        --out exp/upstream/hubert_it2 --targets-from exp/upstream/hubert --layer 3 --set targets.num_units=500

What it writes in --out:

    config.yaml           the fully resolved config
    targets/              the k-means state (discretizer/) and the frame targets of train and dev (train.units,
                          dev.units: `uttid u1 u2 ...` at 50 Hz), computed once; a resumed run reads them back
    checkpoints/          the last `keep_last` checkpoints (model, head, optimizer, schedule, RNG, data position)
    train.log, curves.csv the log and the loss/accuracy curves
    model/                the encoder (HubertModel.save_pretrained + preprocessor_config.json): loads with
                          AutoModel.from_pretrained / AutoFeatureExtractor.from_pretrained; written last, atomically

Rerunning the same command after a crash (even kill -9) resumes exactly (on CPU) from the last checkpoint; after
completion it says so and exits. `--stop-after-steps N` ends this invocation after N more optimizer steps with a
checkpoint (for time-limited jobs); the next run continues.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="pretraining YAML (conf/upstream/hubert.yaml)")
    parser.add_argument("--train", required=True, help="Kaldi data dir of the training audio")
    parser.add_argument("--valid", required=True, help="Kaldi data dir of the dev audio")
    parser.add_argument("--out", required=True, help="run directory, e.g. exp/upstream/hubert")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--targets-from", default=None, help="iteration 2: the iteration-1 run (or model) folder")
    parser.add_argument("--layer", type=int, default=None, help="iteration 2: the layer whose features are clustered")
    parser.add_argument("--stop-after-steps", type=int, default=None, help="end this run after N steps (resumable)")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch and transformers load.
    import torch

    from toolkit.audio import AudioError
    from toolkit.config import ConfigError, load_config
    from toolkit.device import device_option
    from toolkit.fileio import TableError, describe_error
    from toolkit.train.hubert import Paths, PretrainConfig, pretrain
    from toolkit.train.hubert_targets import prepare_targets
    from toolkit.train.run_dir import RunInUseError

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(device_option(parser, args.device))
    overrides = list(args.set)
    if args.targets_from is not None:
        overrides += ["targets.source=hubert", f"targets.model={args.targets_from}"]
    if args.layer is not None:
        overrides.append(f"targets.layer={args.layer}")
    try:
        cfg = load_config(PretrainConfig, args.config, overrides)
        result = pretrain(
            cfg,
            Paths(Path(args.train), Path(args.valid), Path(args.out)),
            device,
            prepare_targets,
            stop_after_steps=args.stop_after_steps,
        )
    except (ConfigError, AudioError, TableError, ValueError, FloatingPointError, RunInUseError, OSError) as e:
        # OSError: also a full disk (checkpoints are written atomically: the last complete one stays).
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    if result["complete"] and result["steps"] >= 0:
        print(f"pretrained {result['steps']} steps in {result['elapsed_s']:.0f} s; {Path(args.out) / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
