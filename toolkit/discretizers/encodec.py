"""The `encodec` discretizer: the residual-vector-quantised codes of an EnCodec neural codec (transformers
`EncodecModel`), from the hub (`facebook/encodec_24khz`) or a local folder written by `save_pretrained` (e.g. the
small codec that `toolkit.bin.train_codec` trains for the embedded recipe).

A bandwidth picks the number of codebooks n_q (the model's own rule: floor(kbps * 1000 / (frame_rate *
log2(codebook_size))); for the 24 kHz model 1.5 -> 2, 3 -> 4, 6 -> 8, 12 -> 16, 24 -> 32), and `keep_codebooks`
may keep only the first k of them. Serialisation (docs/methods.md section 1, our choice): the codes of one frame are
written codebook by codebook, codebook c with its own offset in the speech block,

    unit = c * codebook_size + code_c,   frames in time order   ->   frames * n_q units per utterance,

so `num_units` is n_q * codebook_size and the unit sequence is n_q times as long as the frame sequence.

Frames: an utterance of n samples (at the model's rate) gives ceil(n / hop) frames, hop = prod(upsampling_ratios)
(320 for 24 kHz: 75 Hz). Before encoding, every utterance is zero-padded to exactly frames * hop samples, alone or in a
batch. With a causal model (the 24 kHz one, and the codec we train), a frame depends only on samples up to its own
end, so further zero padding by a batch changes nothing and `encode_batch` runs the whole batch in one call with
codes identical to one-at-a-time encoding. A non-causal or input-normalising model (`use_causal_conv: false`,
`normalize: true`) looks at the padding, so for such models a batch is encoded in groups of equal frame count,
which is again exact. Chunked models (48 kHz: `chunk_length_s`) encode overlapping chunks that do not form one frame
sequence and are refused.

fit() learns nothing. It loads the model to check it and the bandwidth, and writes

    encodec_info.yaml   codebook size, codebooks, frame rate, sample rate, hop, the resolved model
    config.yaml         the resolved config (a local model folder made absolute), `type: encodec` first; written last
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from toolkit.audio import resample
from toolkit.device import resolve_device
from toolkit.discretizers.base import read_config, write_config
from toolkit.fileio import atomic_write
from toolkit.models.loading import named_load_errors

TYPE = "encodec"
INFO_NAME = "encodec_info.yaml"


@dataclass
class Config:
    model: str = "facebook/encodec_24khz"  # hub name or a local save_pretrained folder
    bandwidth: float = 1.5  # kbps; one of the model's target_bandwidths (1.5 -> 2 codebooks for the 24 kHz model)
    keep_codebooks: int | None = None  # keep only the first k codebooks of that bandwidth; None: all
    device: str = "cpu"  # cpu, cuda or auto
    batch_seconds: float = 60.0  # padded audio per model call inside encode_batch (bounds memory)

    def __post_init__(self):
        if not self.model:
            raise ValueError("model must name a hub model or a local folder")
        if self.bandwidth <= 0:
            raise ValueError(f"bandwidth must be positive, got {self.bandwidth}")
        if self.keep_codebooks is not None and self.keep_codebooks < 1:
            raise ValueError(f"keep_codebooks must be >= 1 or null, got {self.keep_codebooks}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto, got {self.device!r}")
        if self.batch_seconds <= 0:
            raise ValueError(f"batch_seconds must be positive, got {self.batch_seconds}")


# ---- serialisation ----


def serialize_codes(codes: np.ndarray | torch.Tensor, codebook_size: int) -> np.ndarray:
    """codes [num_codebooks, frames] -> 1-D int64 units, frame by frame, codebook c offset by c * codebook_size."""
    codes = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"expected codes of shape [num_codebooks, frames], got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes must lie in [0, {codebook_size}), found {codes.min()}..{codes.max()}")
    offsets = np.arange(codes.shape[0], dtype=np.int64)[:, None] * codebook_size
    return np.ascontiguousarray((codes + offsets).T).reshape(-1)


def deserialize_units(units: np.ndarray | Sequence[int], num_codebooks: int, codebook_size: int) -> np.ndarray:
    """The inverse of serialize_codes: 1-D units -> codes [num_codebooks, frames] (int64)."""
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size % num_codebooks:
        raise ValueError(f"{units.size} units is not a whole number of frames of {num_codebooks} codebooks")
    frames = units.reshape(-1, num_codebooks).T  # [num_codebooks, frames]
    offsets = np.arange(num_codebooks, dtype=np.int64)[:, None] * codebook_size
    codes = frames - offsets
    bad = (codes < 0) | (codes >= codebook_size)
    if bad.any():
        c, t = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(
            f"unit {int(frames[c, t])} at frame {t} is outside codebook {c}'s block "
            f"[{c * codebook_size}, {(c + 1) * codebook_size})"
        )
    return codes


# ---- the model ----


def _device(name: str) -> torch.device:
    return torch.device(resolve_device(name))


def resolve_model(name: str) -> str:
    """A local folder as an absolute path (so a saved discretizer does not depend on the directory it is run from);
    anything else is taken as a hub name."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return name


def load_model(name: str, device: torch.device):
    from transformers import EncodecModel

    path = Path(name).expanduser()
    looks_local = path.is_absolute() or name.startswith(".") or path.exists() or name.count("/") > 1
    if looks_local and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{name}: no EnCodec model folder here (no config.json); train one or fix `model`")
    try:
        with named_load_errors(name, "codec"):
            model = EncodecModel.from_pretrained(name)
    except OSError as e:
        raise ValueError(f"model {name!r}: cannot load an EnCodec model ({str(e).splitlines()[0]})") from None
    if model.config.chunk_length_s is not None:
        raise ValueError(
            f"model {name!r} encodes overlapping chunks of {model.config.chunk_length_s} s (e.g. the 48 kHz model); "
            "their codes do not form one frame sequence and are not supported"
        )
    return model.to(device).eval()


def codebooks_for_bandwidth(model, bandwidth: float, where: str = "bandwidth") -> int:
    """The number of codebooks the model uses at `bandwidth` (kbps), after checking it is one it was trained for."""
    allowed = [float(b) for b in model.config.target_bandwidths]
    if not any(math.isclose(bandwidth, b) for b in allowed):
        raise ValueError(
            f"{where}: {bandwidth:g} kbps is not a bandwidth of this model; "
            f"allowed: {', '.join(f'{b:g}' for b in allowed)}"
        )
    return int(model.quantizer.get_num_quantizers_for_bandwidth(bandwidth))


def _exact_bandwidth(model, bandwidth: float) -> float:
    """The model's own float for the bandwidth (transformers checks membership with `in`)."""
    return next(float(b) for b in model.config.target_bandwidths if math.isclose(bandwidth, float(b)))


class Encodec:
    """A loaded EnCodec discretizer (satisfies toolkit.discretizers.base.Discretizer)."""

    def __init__(self, config: Config, model):
        self.config = config
        self.model = model
        self.device = next(model.parameters()).device
        self.model_codebooks = codebooks_for_bandwidth(model, config.bandwidth)
        self.bandwidth = _exact_bandwidth(model, config.bandwidth)
        if config.keep_codebooks is not None and config.keep_codebooks > self.model_codebooks:
            raise ValueError(
                f"keep_codebooks={config.keep_codebooks} but bandwidth {config.bandwidth:g} kbps gives only "
                f"{self.model_codebooks} codebooks"
            )
        self.num_codebooks = config.keep_codebooks or self.model_codebooks
        self.codebook_size = int(model.config.codebook_size)
        self.num_units = self.num_codebooks * self.codebook_size
        self.sample_rate = int(model.config.sampling_rate)
        self.hop = int(np.prod(model.config.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop
        # See the module docstring: only a causal, non-normalising model can share one padded call exactly.
        self.batch_exact = bool(model.config.use_causal_conv) and not model.config.normalize

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop)

    def _prepare(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a 1-D (mono) waveform, got shape {wave.shape}")
        return resample(wave, sample_rate, self.sample_rate)

    def _encode_group(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """One model call: each wave zero-padded to its own frames * hop, then all to the longest."""
        frames = [self.num_frames(len(w)) for w in waves]
        batch = torch.zeros(len(waves), 1, max(frames) * self.hop)
        for i, w in enumerate(waves):
            batch[i, 0, : len(w)] = torch.from_numpy(w)
        with torch.inference_mode():
            out = self.model.encode(batch.to(self.device), bandwidth=self.bandwidth, return_dict=True)
        codes = out.audio_codes  # [chunks = 1, batch, codebooks, frames]
        return [
            serialize_codes(codes[0, i, : self.num_codebooks, : frames[i]], self.codebook_size)
            for i in range(len(waves))
        ]

    def encode(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encode_batch([wave], sample_rate)[0]

    def encode_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        prepared = [self._prepare(w, sample_rate) for w in waves]
        results: list[np.ndarray | None] = [None] * len(prepared)
        empty = [i for i, w in enumerate(prepared) if len(w) == 0]
        for i in empty:
            results[i] = np.zeros(0, dtype=np.int64)
        order = sorted((i for i in range(len(prepared)) if len(prepared[i])), key=lambda i: -len(prepared[i]))
        # Groups: longest first, each at most batch_seconds of padded audio (and, for a model that sees the padding,
        # of one frame count).
        limit = self.config.batch_seconds * self.sample_rate
        groups: list[list[int]] = []
        for i in order:
            n = self.num_frames(len(prepared[i]))
            if groups:
                group = groups[-1]
                head = self.num_frames(len(prepared[group[0]]))
                same = self.batch_exact or head == n
                if same and head * self.hop * (len(group) + 1) <= limit:
                    group.append(i)
                    continue
            groups.append([i])
        for group in groups:
            for i, units in zip(group, self._encode_group([prepared[i] for i in group]), strict=True):
                results[i] = units
        return results  # type: ignore[return-value]


def _info(model, encodec: Encodec, model_name: str) -> dict:
    return {
        "model": model_name,
        "codebook_size": encodec.codebook_size,
        "num_codebooks": encodec.num_codebooks,
        "model_codebooks_at_bandwidth": encodec.model_codebooks,
        "num_units": encodec.num_units,
        "frame_rate": encodec.frame_rate,
        "units_per_second": encodec.frame_rate * encodec.num_codebooks,
        "sample_rate": encodec.sample_rate,
        "hop_length": encodec.hop,
        "target_bandwidths": [float(b) for b in model.config.target_bandwidths],
        "causal": bool(model.config.use_causal_conv),
    }


def fit(data_dirs: Sequence[str | Path], out_dir: str | Path, config: Config, progress: bool = False) -> None:
    """Nothing to learn: check the model and the bandwidth, then save the info and the config (see the docstring)."""
    out_dir = Path(out_dir)
    resolved = Config(**{**config.__dict__, "model": resolve_model(config.model)})
    model = load_model(resolved.model, torch.device("cpu"))
    encodec = Encodec(resolved, model)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / INFO_NAME) as f:
        yaml.safe_dump(_info(model, encodec, resolved.model), f, sort_keys=False)
    write_config(out_dir, TYPE, resolved)


def load(out_dir: str | Path, device: str | None = None) -> Encodec:
    """The fitted discretizer, with its model loaded on `device` (default: config.device)."""
    config = read_config(out_dir, Config)
    if device is not None:
        config = dataclasses.replace(config, device=device)  # checked by Config like the saved value
    return Encodec(config, load_model(config.model, _device(config.device)))
