"""The frame targets of HuBERT pretraining: a discretizer (MFCC k-means for iteration 1, k-means of a layer of the
previous model for iteration 2) fitted once on the training audio, and the units of every train and dev utterance,
cached in <out>/targets and read back by a resumed run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from toolkit.config import ConfigError
from toolkit.datadir import DataDir
from toolkit.fileio import write_table
from toolkit.models.hubert_pretrain import SAMPLE_RATE
from toolkit.train.engine import PROGRESS_INTERVAL_S
from toolkit.train.hubert import Paths, PretrainConfig, read_units

ENCODE_BATCH = 32  # utterances per discretizer call when computing the targets


def encode_data_dir(data: DataDir, encode: Callable[[list[np.ndarray]], list[np.ndarray]], desc: str) -> dict:
    units = {}
    utts = data.utt_ids
    for start in tqdm(range(0, len(utts), ENCODE_BATCH), desc=desc, unit="batch", mininterval=PROGRESS_INTERVAL_S):
        batch = utts[start : start + ENCODE_BATCH]
        for utt, result in zip(batch, encode([data.wave(u, SAMPLE_RATE) for u in batch]), strict=True):
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
    from toolkit.discretizers.registry import fit_discretizer, load_discretizer

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
