"""The `mfcc_kmeans` discretizer: Kaldi MFCC (+ deltas, per-utterance CMVN, optional stacking) and k-means.

fit() picks a seeded random share of the training utterances (`fit_fraction`, optionally capped at `max_fit_frames`
feature frames), computes their features once into a scratch float32 file beside the output, and trains streaming
k-means on that file; the file is read in blocks, so memory stays bounded whatever the size of
the corpus, and the features are not recomputed on every pass. The state saved in out_dir:

    centers.npy     (num_units, feature dim) float32 k-means centres
    fit_info.yaml   what the fit used and how it went (data dirs, utterances, frames, passes, inertia, seconds)
    config.yaml     the fully resolved config, `type: mfcc_kmeans` first; written last, so it marks a complete state

The dataclass defaults follow the release where it has a setting (k-means options, 10% of the training data); the
number of units has no MFCC equivalent in the release, which uses 2000 for HuBERT features, and a corpus config is
expected to set it (see conf/discretizer/mfcc_kmeans.yaml of a recipe).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from toolkit.audio import load_audio, resample
from toolkit.datadir import DataDir, load_data_dir
from toolkit.discretizers.base import read_config, write_config
from toolkit.discretizers.features import FeatureSpec, compute_features, compute_features_batch
from toolkit.discretizers.kmeans import (
    FileFrames,
    KMeansConfig,
    assign,
    fit_kmeans,
    load_centers,
    save_centers,
    squared_norms,
)
from toolkit.fileio import atomic_write

TYPE = "mfcc_kmeans"
CENTERS_NAME = "centers.npy"
FIT_INFO_NAME = "fit_info.yaml"


@dataclass
class Config:
    num_units: int = 2000  # K
    sample_rate: int = 16000  # audio at other rates is resampled to this
    num_ceps: int = 13
    deltas: bool = True  # 13 -> 39 dims
    cmvn: bool = True  # per-utterance mean and variance normalisation
    stack_frames: int = 1  # k neighbouring frames side by side, subsampled by k (2: 50 Hz)
    fit_fraction: float = 0.1  # share of the training utterances, chosen at random, used to fit k-means
    max_fit_frames: int | None = None  # and at most this many feature frames of them; None: no cap
    seed: int = 0  # utterance choice, k-means initialisation and batches
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)

    def __post_init__(self):
        for name in ("num_units", "sample_rate", "num_ceps", "stack_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.fit_fraction <= 1.0:
            raise ValueError(f"fit_fraction must be in (0, 1], got {self.fit_fraction}")
        if self.max_fit_frames is not None and self.max_fit_frames < self.num_units:
            raise ValueError(f"max_fit_frames ({self.max_fit_frames}) must be >= num_units ({self.num_units})")

    @property
    def features(self) -> FeatureSpec:
        return FeatureSpec(self.sample_rate, self.num_ceps, self.deltas, self.cmvn, self.stack_frames)


class MfccKmeans:
    """A fitted MFCC k-means discretizer (satisfies toolkit.discretizers.base.Discretizer). Encodes on CPU."""

    def __init__(self, config: Config, centers: torch.Tensor):
        self.config = config
        self.spec = config.features
        if centers.dim() != 2 or centers.shape[1] != self.spec.dim:
            raise ValueError(f"centres of shape {tuple(centers.shape)} do not fit {self.spec.dim}-dim features")
        self.centers = centers.float().cpu()
        self.centers_sq = squared_norms(self.centers)
        self.num_units = int(centers.shape[0])
        self.frame_rate = self.spec.frame_rate
        self.sample_rate = config.sample_rate

    def _prepare(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a 1-D (mono) waveform, got shape {wave.shape}")
        return resample(wave, sample_rate, self.sample_rate)

    def encode(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encode_batch([wave], sample_rate)[0]

    def encode_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        if len(waves) == 0:
            return []
        with torch.inference_mode():
            feats = compute_features_batch([self._prepare(w, sample_rate) for w in waves], self.spec)
            # All frames of the batch in one (chunked) matrix product, then cut back into utterances.
            labels, _ = assign(torch.cat(feats), self.centers, self.centers_sq)
            return [part.numpy().astype(np.int64) for part in labels.split([f.shape[0] for f in feats])]


# ---- fit ----


def select_utterances(datas: Sequence[DataDir], fraction: float, seed: int) -> list[tuple[DataDir, str]]:
    """A seeded random `fraction` of all utterances (at least one), in random order."""
    pool = [(data, utt) for data in datas for utt in data.utt_ids]
    if not pool:
        raise ValueError("the training data dirs hold no utterances")
    order = np.random.default_rng(seed).permutation(len(pool))
    count = max(1, math.ceil(fraction * len(pool)))
    return [pool[i] for i in order[:count]]


def _utterance_features(data: DataDir, utt: str, spec: FeatureSpec) -> np.ndarray:
    start, end = data.segment_of(utt)
    wave, sr = load_audio(data["wav.scp"][data.recording_of(utt)], uttid=utt, start=start, end=end)
    return compute_features(resample(wave, sr, spec.sample_rate), spec).numpy()


def write_feature_cache(
    selection: Sequence[tuple[DataDir, str]], spec: FeatureSpec, path: Path, max_frames: int | None, progress: bool
) -> tuple[int, int]:
    """Append the features of the selected utterances to the raw float32 file `path`, stopping at `max_frames`.

    Returns (utterances used, frames written).
    """
    frames = used = 0
    with open(path, "wb") as f:
        for data, utt in tqdm(selection, desc="features", unit="utt", disable=not progress, mininterval=1.0):
            feats = _utterance_features(data, utt, spec)
            if max_frames is not None:
                feats = feats[: max_frames - frames]
            f.write(np.ascontiguousarray(feats, dtype=np.float32).tobytes())
            frames += feats.shape[0]
            used += 1
            if max_frames is not None and frames >= max_frames:
                break
    return used, frames


def fit(data_dirs: Sequence[str | Path], out_dir: str | Path, config: Config, progress: bool = False) -> None:
    """Learn the k-means centres from the data dirs and save the state in out_dir (see the module docstring)."""
    began = time.time()
    if not data_dirs:
        raise ValueError("no training data dirs given")
    out_dir = Path(out_dir)
    datas = [load_data_dir(d) for d in data_dirs]
    spec = config.features
    selection = select_utterances(datas, config.fit_fraction, config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".fit_features.", suffix=".f32", dir=out_dir)
    os.close(fd)
    cache = Path(name)
    try:
        used, frames = write_feature_cache(selection, spec, cache, config.max_fit_frames, progress)
        if frames < config.num_units:
            raise ValueError(
                f"{used} utterances gave {frames} feature frames, fewer than num_units={config.num_units}; "
                "raise fit_fraction or lower num_units"
            )
        source = FileFrames(cache, frames, spec.dim, config.seed)
        result = fit_kmeans(source, config.num_units, config.kmeans, seed=config.seed, progress=progress)
    finally:
        cache.unlink(missing_ok=True)
    save_centers(out_dir / CENTERS_NAME, result.centers)
    info = {
        "data_dirs": [str(d) for d in data_dirs],
        "utterances": used,
        "frames": frames,
        "hours": round(frames / spec.frame_rate / 3600, 3),
        "passes": result.num_passes,
        "steps": result.num_steps,
        "stopped_early": result.stopped_early,
        "init_inertia": round(result.init_inertia, 4),
        "sample_inertia": round(result.sample_inertia, 4),
        "seconds": round(time.time() - began, 1),
    }
    with atomic_write(out_dir / FIT_INFO_NAME) as f:
        yaml.safe_dump(info, f, sort_keys=False)
    write_config(out_dir, TYPE, config)


def load(out_dir: str | Path, device: str | None = None) -> MfccKmeans:
    """The fitted discretizer. `device` is accepted for a uniform interface and unused: MFCCs and their assignment
    are cheap on the CPU."""
    del device
    out_dir = Path(out_dir)
    config = read_config(out_dir, Config)
    centers = load_centers(out_dir / CENTERS_NAME)
    if centers.shape[0] != config.num_units:
        raise ValueError(f"{out_dir}: {CENTERS_NAME} holds {centers.shape[0]} centres, config says {config.num_units}")
    return MfccKmeans(config, centers)
