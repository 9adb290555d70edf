"""The `ssl_kmeans` discretizer: k-means on one layer of a self-supervised speech model (HuBERT, WavLM, wav2vec 2.0).

The release's units are 2000 k-means clusters of HuBERT-Large layer 23 (`model: facebook/hubert-large-ll60k`,
`layer: 23`); any transformers model of that family works, by hub name or by a folder written with save_pretrained.
A relative folder is resolved against the working directory (recipes run from their own folder) and is stored in
config.yaml as written. How layers are numbered, when waveforms are normalised, how batches are padded and long
utterances chunked is described in toolkit/models/ssl_features.py.

fit() follows mfcc_kmeans.fit: a seeded random share of the training utterances (`fit_fraction`, optionally capped at
`max_fit_frames` frames) is encoded once into a scratch float32 file beside the output, and streaming k-means reads
it in blocks (plain reads, not a memory map: see FileFrames), so memory stays bounded whatever the size of the corpus. With `feature_cache:
true` the features are also kept as Kaldi ark/scp in out_dir/features/ and a rerun with the same model, layer,
audio settings and utterance choice reads them instead of running the model again (k-means settings may change).
The state saved in out_dir:

    centers.npy     (num_units, hidden size) float32 k-means centres
    fit_info.yaml   what the fit used and how it went (model, utterances, frames, passes, inertia, seconds)
    features/       feats.ark, feats.scp (kaldiio; paths as out_dir was given) and cache.yaml, what they were
                    computed with, written last (only with feature_cache)
    config.yaml     the fully resolved config, `type: ssl_kmeans` first; written last, so it marks a complete state
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from toolkit.audio import load_audio, resample
from toolkit.datadir import DataDir, load_data_dir
from toolkit.device import resolve_device
from toolkit.discretizers.base import read_config, write_config
from toolkit.discretizers.kmeans import (
    FileFrames,
    KMeansConfig,
    assign,
    fit_kmeans,
    load_centers,
    save_centers,
    squared_norms,
)
from toolkit.discretizers.mfcc_kmeans import select_utterances
from toolkit.fileio import atomic_write
from toolkit.models.ssl_features import SSLFeatureExtractor, SSLFeatureSpec

TYPE = "ssl_kmeans"
CENTERS_NAME = "centers.npy"
FIT_INFO_NAME = "fit_info.yaml"
FEATURES_DIR = "features"
CACHE_INFO_NAME = "cache.yaml"
FEATURE_NORMS = ("none", "utterance")
# fit() loads this many batches' worth of audio at a time, so that the length sorting has similar lengths to group.
FIT_GROUP_BATCHES = 8


@dataclass
class Config:
    model: str = ""  # hub name (facebook/hubert-large-ll60k) or local folder; required
    layer: int | None = None  # hidden_states index: 0 = input of the first layer, i = output of layer i; required
    num_units: int = 2000  # K (the release's)
    sample_rate: int = 16000  # the model's rate; audio at other rates is resampled to it
    normalize: bool | None = None  # waveform normalisation; None: as the model's preprocessor config says
    # Feature normalisation before k-means (fit and encoding alike): "none", or "utterance": each feature dimension
    # to zero mean and unit variance over the utterance's frames, as the MFCC units' per-utterance CMVN does. Meant
    # for models whose features shift with the speaker's voice (RESULTS.md of the embedded recipe).
    feature_norm: str = "none"
    fit_fraction: float = 0.1  # share of the training utterances, chosen at random, used to fit k-means
    max_fit_frames: int | None = None  # and at most this many frames of them; None: no cap
    seed: int = 0  # utterance choice, k-means initialisation and batches
    batch_seconds: float = 60.0  # padded audio per forward pass
    chunk_seconds: float | None = 30.0  # longer utterances are computed in overlapping pieces; None: never
    chunk_context_seconds: float = 1.0  # audio each side of a piece computed for context and dropped
    device: str = "cpu"  # where the model runs and units are assigned ("cuda")
    feature_cache: bool = False  # keep the fit's features as ark/scp in out_dir/features/ and reuse them
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)

    def __post_init__(self):
        if not self.model:
            raise ValueError("model is required: a Hugging Face hub name (facebook/hubert-large-ll60k) or a folder")
        if self.layer is None:
            raise ValueError("layer is required (the release uses 23 of HuBERT-Large)")
        for name in ("num_units", "sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.fit_fraction <= 1.0:
            raise ValueError(f"fit_fraction must be in (0, 1], got {self.fit_fraction}")
        if self.max_fit_frames is not None and self.max_fit_frames < self.num_units:
            raise ValueError(f"max_fit_frames ({self.max_fit_frames}) must be >= num_units ({self.num_units})")
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {', '.join(FEATURE_NORMS)}, got {self.feature_norm!r}")
        self.features  # noqa: B018 - checks the feature options

    @property
    def features(self) -> SSLFeatureSpec:
        return SSLFeatureSpec(
            model=self.model,
            layer=self.layer,
            normalize=self.normalize,
            batch_seconds=self.batch_seconds,
            chunk_seconds=self.chunk_seconds,
            chunk_context_seconds=self.chunk_context_seconds,
            device=self.device,
        )


def load_extractor(config: Config) -> SSLFeatureExtractor:
    extractor = SSLFeatureExtractor(config.features)
    if extractor.sample_rate != config.sample_rate:
        raise ValueError(
            f"model {config.model} works at {extractor.sample_rate} Hz (preprocessor_config.json), "
            f"config says sample_rate: {config.sample_rate}"
        )
    return extractor


class SSLKmeans:
    """A fitted SSL k-means discretizer (satisfies toolkit.discretizers.base.Discretizer)."""

    def __init__(self, config: Config, centers: torch.Tensor, extractor: SSLFeatureExtractor | None = None):
        self.config = config
        self.extractor = extractor or load_extractor(config)
        if centers.dim() != 2 or centers.shape[1] != self.extractor.dim:
            raise ValueError(
                f"centres of shape {tuple(centers.shape)} do not fit the {self.extractor.dim}-dim features of "
                f"{config.model} layer {config.layer}"
            )
        self.centers = centers.float().to(self.extractor.device)
        self.centers_sq = squared_norms(self.centers)
        self.num_units = int(centers.shape[0])
        self.frame_rate = self.extractor.frame_rate
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
            feats = self.extractor.extract([self._prepare(w, sample_rate) for w in waves])
            if self.config.feature_norm == "utterance":
                feats = [utterance_cmvn(f) for f in feats]
            # All frames of the batch in one (chunked) matrix product, then cut back into utterances.
            labels, _ = assign(torch.cat(feats), self.centers, self.centers_sq)
            return [part.cpu().numpy().astype(np.int64) for part in labels.split([f.shape[0] for f in feats])]


# ---- fit ----


def utterance_cmvn(feats):
    """Each column of one utterance's [frames, dim] features (numpy or torch) to zero mean and unit variance over
    its frames; a constant column (one frame, or silence) becomes 0."""
    mean = feats.mean(0, keepdims=True) if isinstance(feats, np.ndarray) else feats.mean(0, keepdim=True)
    centred = feats - mean
    variance = (centred * centred).mean(0)
    scale = (
        1.0 / np.sqrt(np.maximum(variance, 1e-10))
        if isinstance(feats, np.ndarray)
        else variance.clamp_min(1e-10).rsqrt()
    )
    return centred * scale[None]


def _load_wave(data: DataDir, utt: str, sample_rate: int) -> np.ndarray:
    start, end = data.segment_of(utt)
    wave, sr = load_audio(data["wav.scp"][data.recording_of(utt)], uttid=utt, start=start, end=end)
    return resample(wave, sr, sample_rate)


def _computed_features(
    selection: Sequence[tuple[DataDir, str]], extractor: SSLFeatureExtractor, config: Config, progress: bool
) -> Iterator[np.ndarray]:
    """Features of the selected utterances, in selection order, computed in groups of several batches."""
    budget = FIT_GROUP_BATCHES * config.batch_seconds * config.sample_rate
    bar = tqdm(total=len(selection), desc="features", unit="utt", disable=not progress, mininterval=1.0)
    waves: list[np.ndarray] = []
    held = 0
    for position, (data, utt) in enumerate(selection):
        waves.append(_load_wave(data, utt, config.sample_rate))
        held += waves[-1].shape[0]
        if held >= budget or position == len(selection) - 1:
            for feats in extractor.extract(waves):
                yield feats.cpu().numpy()
            bar.update(len(waves))
            waves, held = [], 0
    bar.close()


def _cache_key(config: Config, extractor: SSLFeatureExtractor, keys: Sequence[str]) -> dict:
    """What the cached features depend on; a rerun reuses the cache only when all of it is the same."""
    return {
        "model": config.model,
        "layer": config.layer,
        "sample_rate": config.sample_rate,
        "normalize": extractor.normalize,
        "feature_norm": config.feature_norm,
        "chunk_seconds": config.chunk_seconds,
        "chunk_context_seconds": config.chunk_context_seconds,
        "max_fit_frames": config.max_fit_frames,
        "utterances": len(keys),
        "selection_sha1": hashlib.sha1("\n".join(keys).encode("utf-8")).hexdigest(),
    }


def _utterance_keys(selection: Sequence[tuple[DataDir, str]], datas: Sequence[DataDir]) -> list[str]:
    """ark/scp keys: the utterance ids, prefixed by the data dir's position when ids repeat across data dirs."""
    keys = [utt for _, utt in selection]
    if len(set(keys)) == len(keys):
        return keys
    index = {id(data): i for i, data in enumerate(datas)}
    return [f"{index[id(data)]}-{utt}" for data, utt in selection]


def _cached_features(features_dir: Path, key: dict, keys: Sequence[str]) -> Iterator[np.ndarray] | None:
    """The cached features in `keys` order if the cache was made with the same `key`, else None."""
    import kaldiio

    info_path, scp = features_dir / CACHE_INFO_NAME, features_dir / "feats.scp"
    if not (info_path.is_file() and scp.is_file()):
        return None
    with open(info_path, encoding="utf-8") as f:
        if yaml.safe_load(f) != key:
            return None
    table = kaldiio.load_scp(str(scp))
    # With a frame cap the cache holds the utterances up to the cap: a prefix of the selection.
    stored = [k for k in keys if k in table]
    if stored != list(keys[: len(stored)]) or not stored:
        return None
    return (np.asarray(table[k], dtype=np.float32) for k in stored)


def write_fit_features(
    features: Iterator[np.ndarray],
    keys: Sequence[str],
    path: Path,
    max_frames: int | None,
    cache_dir: Path | None,
) -> tuple[int, int]:
    """Append the features to the raw float32 file `path` (and to the ark/scp in cache_dir), stopping at max_frames.

    Returns (utterances used, frames written).
    """
    import kaldiio

    frames = used = 0
    writer = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # cache.yaml, written after the ark and scp are complete, is what marks the cache valid.
        (cache_dir / CACHE_INFO_NAME).unlink(missing_ok=True)
        writer = kaldiio.WriteHelper(f"ark,scp:{cache_dir / 'feats.ark'},{cache_dir / 'feats.scp'}")
    try:
        with open(path, "wb") as f:
            for key, feats in zip(keys, features, strict=False):
                if writer is not None:
                    writer(key, np.ascontiguousarray(feats, dtype=np.float32))
                if max_frames is not None:
                    feats = feats[: max_frames - frames]
                f.write(np.ascontiguousarray(feats, dtype=np.float32).tobytes())
                frames += feats.shape[0]
                used += 1
                if max_frames is not None and frames >= max_frames:
                    break
    finally:
        if writer is not None:
            writer.close()
    return used, frames


def fit(data_dirs: Sequence[str | Path], out_dir: str | Path, config: Config, progress: bool = False) -> None:
    """Learn the k-means centres from the data dirs and save the state in out_dir (see the module docstring)."""
    began = time.time()
    if not data_dirs:
        raise ValueError("no training data dirs given")
    out_dir = Path(out_dir)
    datas = [load_data_dir(d) for d in data_dirs]
    selection = select_utterances(datas, config.fit_fraction, config.seed)
    keys = _utterance_keys(selection, datas)
    extractor = load_extractor(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    features_dir = out_dir / FEATURES_DIR
    cache_key = _cache_key(config, extractor, keys)
    cached = _cached_features(features_dir, cache_key, keys) if config.feature_cache else None
    fd, name = tempfile.mkstemp(prefix=".fit_features.", suffix=".f32", dir=out_dir)
    os.close(fd)
    scratch = Path(name)
    try:
        if cached is not None:
            used, frames = write_fit_features(cached, keys, scratch, config.max_fit_frames, None)
        else:
            computed = _computed_features(selection, extractor, config, progress)
            if config.feature_norm == "utterance":  # the cache then holds normalised features (its key says so)
                computed = (utterance_cmvn(f) for f in computed)
            cache_dir = features_dir if config.feature_cache else None
            used, frames = write_fit_features(computed, keys, scratch, config.max_fit_frames, cache_dir)
            if cache_dir is not None:
                with atomic_write(cache_dir / CACHE_INFO_NAME) as f:
                    yaml.safe_dump(cache_key, f, sort_keys=False)
        if frames < config.num_units:
            raise ValueError(
                f"{used} utterances gave {frames} feature frames, fewer than num_units={config.num_units}; "
                "raise fit_fraction or lower num_units"
            )
        source = FileFrames(scratch, frames, extractor.dim, config.seed)
        result = fit_kmeans(source, config.num_units, config.kmeans, seed=config.seed, progress=progress)
    finally:
        scratch.unlink(missing_ok=True)
    save_centers(out_dir / CENTERS_NAME, result.centers)
    info = {
        "data_dirs": [str(d) for d in data_dirs],
        "model": config.model,
        "model_class": type(extractor.model).__name__,
        "layer": config.layer,
        "num_layers": extractor.num_layers,
        "dim": extractor.dim,
        "normalize": extractor.normalize,
        "feature_norm": config.feature_norm,
        "attention_mask": extractor.use_attention_mask,
        "frame_rate": extractor.frame_rate,
        "feature_cache": "reused" if cached is not None else ("written" if config.feature_cache else "off"),
        "utterances": used,
        "frames": frames,
        "hours": round(frames / extractor.frame_rate / 3600, 3),
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


def load(out_dir: str | Path, device: str | None = None) -> SSLKmeans:
    """The fitted discretizer, with its model loaded on `device` (default: config.device; auto: cuda when there)."""
    out_dir = Path(out_dir)
    config = read_config(out_dir, Config)
    if device is not None:
        config = dataclasses.replace(config, device=resolve_device(device))
    centers = load_centers(out_dir / CENTERS_NAME)
    if centers.shape[0] != config.num_units:
        raise ValueError(f"{out_dir}: {CENTERS_NAME} holds {centers.shape[0]} centres, config says {config.num_units}")
    return SSLKmeans(config, centers)
