"""HuBERT-style masked-prediction pretraining of a transformers HubertModel on a Kaldi data dir.

This computes the frame targets with a discretizer and runs the training loop of toolkit/train/hubert.py.

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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from toolkit.audio import AudioError
from toolkit.config import ConfigError, load_config
from toolkit.datadir import DataDir
from toolkit.device import device_option
from toolkit.fileio import TableError, describe_error, write_table
from toolkit.models.hubert_pretrain import SAMPLE_RATE
from toolkit.train.hubert import Paths, PretrainConfig, pretrain, read_units, read_wave
from toolkit.train.loop import PROGRESS_INTERVAL_S
from toolkit.train.run_dir import RunInUseError

ENCODE_BATCH = 32  # utterances per discretizer call when computing the targets


def encode_data_dir(data: DataDir, encode: Callable[[list[np.ndarray]], list[np.ndarray]], desc: str) -> dict:
    units = {}
    utts = data.utt_ids
    for start in tqdm(range(0, len(utts), ENCODE_BATCH), desc=desc, unit="batch", mininterval=PROGRESS_INTERVAL_S):
        batch = utts[start : start + ENCODE_BATCH]
        for utt, result in zip(batch, encode([read_wave(data, u) for u in batch]), strict=True):
            units[utt] = " ".join(str(int(u)) for u in result)
    return units


def previous_model_folder(path: str) -> Path:
    """An iteration-1 run folder (holding model/) or the model folder itself."""
    folder = Path(path)
    if (folder / "model" / "config.json").is_file():
        return folder / "model"
    if (folder / "config.json").is_file():
        return folder
    raise FileNotFoundError(f"{path}: no trained model (expected {path}/model/config.json)")


def make_encoder(cfg: PretrainConfig, train_dir: Path, out_dir: Path):
    """Fit (once) the target discretizer and return a function waves -> units at the encoder's frame rate."""
    from toolkit.discretizers.base import fit_discretizer, load_discretizer

    t = cfg.targets
    options = {
        "num_units": t.num_units,
        "fit_fraction": t.fit_fraction,
        "max_fit_frames": t.max_fit_frames,
        "seed": t.seed,
        "kmeans": {"n_init": t.n_init},
    }
    if t.source == "mfcc":
        kind = "mfcc_kmeans"
        options["stack_frames"] = t.stack_frames
    else:
        kind = "ssl_kmeans"
        options.update(model=str(previous_model_folder(t.model)), layer=t.layer)
    if not (out_dir / "config.yaml").is_file():  # written last by fit: a complete state
        fit_discretizer(kind, [train_dir], out_dir, options, progress=True)
    discretizer = load_discretizer(out_dir)
    if abs(discretizer.frame_rate - cfg.frame_rate) > 1e-6:
        raise ConfigError(
            f"targets at {discretizer.frame_rate:g} Hz, the encoder's frames at {cfg.frame_rate:g} Hz "
            "(set targets.stack_frames so that they match)"
        )
    return lambda waves: discretizer.encode_batch(waves, SAMPLE_RATE)


def prepare_targets(
    cfg: PretrainConfig, paths: Paths, train: DataDir, valid: DataDir
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The units of every train and dev utterance, computed once into out/targets and read back afterwards."""
    folder = paths.out / "targets"
    train_file, dev_file = folder / "train.units", folder / "dev.units"
    if not (train_file.is_file() and dev_file.is_file()):
        encode = make_encoder(cfg, paths.train, folder / "discretizer")
        if not train_file.is_file():
            write_table(train_file, encode_data_dir(train, encode, "targets train"))
        write_table(dev_file, encode_data_dir(valid, encode, "targets dev"))
    result = []
    for file, data in ((train_file, train), (dev_file, valid)):
        units = read_units(file)
        missing = [u for u in data.utt_ids if u not in units]
        if missing:
            raise ValueError(
                f"{file} has no targets for utterance '{missing[0]}' of {data.path}; "
                f"it was computed for other data: remove {folder} or train into a new --out"
            )
        if any(int(v.max(initial=0)) >= cfg.targets.num_units for v in units.values()):
            raise ValueError(f"{file} holds units >= targets.num_units ({cfg.targets.num_units})")
        result.append(units)
    return result[0], result[1]


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
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)

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
