"""The discretizer contract and the strict YAML <-> dataclass config mapping (the dispatch by type: registry.py).

A discretizer type is one module `toolkit/discretizers/<type>.py` that provides

    TYPE                                     the name written as `type:` in config.yaml
    Config                                   a dataclass of its options (nested dataclasses allowed)
    fit(data_dirs, out_dir, config, progress=False) -> None
                                             learn from Kaldi data dirs, save the state and config.yaml in out_dir
    load(out_dir) -> Discretizer             an object satisfying the Discretizer protocol below

There is no base class to inherit from: `toolkit.discretizers.registry` names the module of each type and imports it
only when it is used (so MFCC users never import transformers), and the modules import only this file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import yaml

from toolkit.config import from_dict as config_from_dict
from toolkit.config import load_yaml, to_dict
from toolkit.fileio import atomic_write

CONFIG_NAME = "config.yaml"


@runtime_checkable
class Discretizer(Protocol):
    """What every loaded discretizer offers. Units are int64 ids in [0, num_units), one per frame."""

    num_units: int  # K, the size of the unit inventory
    frame_rate: float  # unit frames per second of audio
    sample_rate: int  # the rate the model works at; encode() resamples other rates to it

    def encode(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """One utterance (1-D float32 samples in [-1, 1]) -> 1-D int64 units."""
        ...

    def encode_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        """Several utterances at once; element i equals encode(waves[i], sample_rate)."""
        ...


# ---- config: the shared YAML-to-dataclass mapping (toolkit/config.py) ----


def write_config(out_dir: str | Path, kind: str, config: Any) -> None:
    """Save the fully resolved config, `type` first, as out_dir/config.yaml (atomically)."""
    with atomic_write(Path(out_dir) / CONFIG_NAME) as f:
        yaml.safe_dump({"type": kind, **to_dict(config)}, f, sort_keys=False)


def read_config(out_dir: str | Path, cls: type) -> Any:
    """The config saved by `write_config`, as dataclass `cls`."""
    path = Path(out_dir) / CONFIG_NAME
    values = load_yaml(path)
    values.pop("type", None)
    # A packed model keeps the SSL or codec model inside the discretizer folder and names it relative to that folder
    # (toolkit.inference.pack), so the folder works wherever it is copied. Other relative names are left to the
    # loader, which takes them from the working directory, as the recipes write them.
    model = values.get("model")
    if isinstance(model, str) and model and not Path(model).is_absolute() and (Path(out_dir) / model).is_dir():
        values["model"] = str((Path(out_dir) / model).resolve())
    return config_from_dict(cls, values, str(path))


def length_batches(durations: Mapping[Any, float], batch_seconds: float) -> list[list[Any]]:
    """Utterances sorted by length (longest first, so memory peaks at once) in groups of <= batch_seconds of audio.

    An utterance longer than batch_seconds forms a batch of its own.
    """
    batches: list[list[str]] = []
    current: list[str] = []
    total = 0.0
    for utt in sorted(durations, key=lambda u: (-durations[u], u)):
        if current and total + durations[utt] > batch_seconds:
            batches.append(current)
            current, total = [], 0.0
        current.append(utt)
        total += durations[utt]
    if current:
        batches.append(current)
    return batches
