"""HuBERT-style masked prediction (Hsu et al. 2021) around a plain transformers `HubertModel`.

The encoder is an ordinary `HubertModel` (conv feature extractor + transformer), so what pretraining produces is
saved with `save_pretrained` and loads with `AutoModel.from_pretrained` like a hub checkpoint. What pretraining adds
is small and lives here:

- span masking (`span_mask`): a share `prob` of the frames of every utterance is drawn as span starts (without
  replacement) and `length` frames from each start are masked; padding is never masked. The masked frames are replaced
  by the model's own learned `masked_spec_embed`, by passing `mask_time_indices` to `HubertModel.forward`;
- the prediction head (`HubertPretrainModel`): a projection of the last layer to `final_dim` and one learned embedding
  per target class; logits are cosine similarities divided by a temperature;
- the loss (`hubert_loss`): cross-entropy over the classes, averaged over the masked frames (weight `masked_weight`)
  plus, optionally, over the unmasked frames (`unmasked_weight`, 0 as in the paper's best setting);
- target/frame alignment (`align_targets`) and the frame count of the conv stack (`num_frames`).

The training loop and checkpoints are in toolkit/train/hubert.py; the targets are computed by
toolkit/bin/pretrain_hubert.py (with a discretizer), which runs the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import HubertConfig, HubertModel

SAMPLE_RATE = 16000
# Added to the variance in the waveform normalisation, as Wav2Vec2FeatureExtractor(do_normalize=True) does, so a
# model trained here sees exactly the input the saved preprocessor_config.json gives it.
NORM_EPS = 1e-7
TARGET_SOURCES = ("mfcc", "hubert")


@dataclass
class EncoderConfig:
    """The HubertModel's size. The defaults are the embedded (CPU) model; HuBERT Base is hidden 768, 12 layers,
    12 heads, FFN 3072, conv_dim 512 x 7 with kernels (10,3,3,3,3,2,2) and strides (5,2,2,2,2,2,2)."""

    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024  # feed-forward width
    conv_dim: list[int] = field(default_factory=lambda: [256, 256, 256, 256])
    conv_kernel: list[int] = field(default_factory=lambda: [20, 4, 4, 2])
    conv_stride: list[int] = field(default_factory=lambda: [10, 4, 4, 2])  # product 320: 20 ms frames at 16 kHz
    conv_pos_kernel: int = 64  # convolutional relative position embedding (Base: 128)
    conv_pos_groups: int = 16
    feat_extract_norm: str = "layer"  # layer (LayerNorm in every conv layer) | group (Base: GroupNorm in the first)
    stable_layer_norm: bool = True  # pre-LN transformer (HuBERT Large/X-Large) instead of Base's post-LN
    dropout: float = 0.1  # hidden, attention and feature-projection dropout (Base: 0.1)
    layerdrop: float = 0.0  # probability of skipping a transformer layer in training (Base: 0.05)
    normalize_audio: bool = True  # zero mean, unit variance waveform per utterance (Large: yes; Base: no)

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "conv_pos_kernel"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.hidden_size % self.conv_pos_groups:
            raise ValueError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by conv_pos_groups ({self.conv_pos_groups})"
            )
        if not (len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride) >= 1):
            raise ValueError("model.conv_dim, conv_kernel and conv_stride must be non-empty lists of the same length")
        if any(v < 1 for v in [*self.conv_dim, *self.conv_kernel, *self.conv_stride]):
            raise ValueError("model.conv_dim, conv_kernel and conv_stride must hold positive integers")
        if self.feat_extract_norm not in ("layer", "group"):
            raise ValueError(f"model.feat_extract_norm must be layer or group, got '{self.feat_extract_norm}'")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.layerdrop < 1.0:
            raise ValueError("model.dropout and model.layerdrop must be in [0, 1)")

    @property
    def downsampling(self) -> int:
        return int(np.prod(self.conv_stride))

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output frame of the conv stack."""
        field_, jump = 1, 1
        for kernel, stride in zip(self.conv_kernel, self.conv_stride, strict=True):
            field_ += (kernel - 1) * jump
            jump *= stride
        return field_


@dataclass
class MaskConfig:
    prob: float = 0.08  # share of the frames drawn as span starts (paper's p; fairseq writes it as 0.8 = p x length)
    length: int = 10  # frames per span (paper's l)
    min_masks: int = 2  # at least this many spans per utterance when it is long enough (fairseq HuBERT)

    def __post_init__(self):
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"mask.prob must be in [0, 1], got {self.prob}")
        if self.length < 1 or self.min_masks < 0:
            raise ValueError("mask.length must be >= 1 and mask.min_masks >= 0")


@dataclass
class LossConfig:
    final_dim: int = 128  # projection and label-embedding size (Base: 256)
    temperature: float = 0.1  # logits = cosine / temperature
    masked_weight: float = 1.0  # weight of the mean CE over masked frames (paper's alpha = 1)
    unmasked_weight: float = 0.0  # weight of the mean CE over unmasked frames (0: the paper's best setting)

    def __post_init__(self):
        if self.final_dim < 1 or self.temperature <= 0:
            raise ValueError("loss.final_dim must be >= 1 and loss.temperature > 0")
        if self.masked_weight < 0 or self.unmasked_weight < 0 or self.masked_weight + self.unmasked_weight == 0:
            raise ValueError("loss.masked_weight and loss.unmasked_weight must be >= 0, not both 0")


@dataclass
class TargetConfig:
    """Where the frame targets come from: iteration 1 clusters MFCCs, iteration 2 a layer of an iteration-1 model."""

    source: str = "mfcc"  # mfcc | hubert (features of `model` at `layer`)
    num_units: int = 100  # K: 100 for MFCC (paper), 500 for HuBERT features (paper)
    model: str | None = None  # hubert: folder of the previous iteration's encoder (its `model/` subfolder)
    layer: int = 6  # hubert: hidden_states index (0 = input of the first layer, i = output of layer i)
    stack_frames: int = 2  # mfcc: our MFCCs are 100 Hz; 2 stacked frames give the encoder's 50 Hz
    fit_fraction: float = 0.1  # share of the training utterances the k-means learns from (paper: 10%)
    max_fit_frames: int | None = 200000  # and at most this many frames of them
    n_init: int = 3  # k-means++ initialisations
    seed: int = 0

    def __post_init__(self):
        if self.source not in TARGET_SOURCES:
            raise ValueError(f"targets.source must be one of {', '.join(TARGET_SOURCES)}, got '{self.source}'")
        if self.source == "hubert" and not self.model:
            raise ValueError("targets.source hubert needs targets.model (the previous iteration's model folder)")
        if self.num_units < 2 or self.stack_frames < 1 or self.layer < 0:
            raise ValueError("targets.num_units must be >= 2, stack_frames >= 1 and layer >= 0")


def build_hubert_config(cfg: EncoderConfig) -> HubertConfig:
    return HubertConfig(
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        conv_dim=list(cfg.conv_dim),
        conv_kernel=list(cfg.conv_kernel),
        conv_stride=list(cfg.conv_stride),
        num_conv_pos_embeddings=cfg.conv_pos_kernel,
        num_conv_pos_embedding_groups=cfg.conv_pos_groups,
        feat_extract_norm=cfg.feat_extract_norm,
        do_stable_layer_norm=cfg.stable_layer_norm,
        hidden_dropout=cfg.dropout,
        attention_dropout=cfg.dropout,
        activation_dropout=0.0,
        feat_proj_dropout=cfg.dropout,
        final_dropout=cfg.dropout,
        layerdrop=cfg.layerdrop,
        # HubertModel creates `masked_spec_embed` only when mask_time_prob > 0, and ignores mask_time_indices when
        # apply_spec_augment is false. Pretraining passes its own indices; these values are what downstream
        # fine-tuning of the saved model uses (transformers' defaults, as in hub checkpoints).
        apply_spec_augment=True,
        mask_time_prob=0.05,
        mask_time_length=10,
    )


class HubertPretrainModel(nn.Module):
    """HubertModel + the masked-prediction head (final projection and label embeddings)."""

    def __init__(self, encoder: EncoderConfig, loss: LossConfig, num_classes: int):
        super().__init__()
        self.hubert = HubertModel(build_hubert_config(encoder))
        self.final_proj = nn.Linear(encoder.hidden_size, loss.final_dim)
        # Normal rather than fairseq's uniform [0, 1): under cosine similarity all-positive vectors start out nearly
        # parallel, normal ones start spread out.
        self.label_embeddings = nn.Parameter(torch.randn(num_classes, loss.final_dim))

    def forward(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None, mask_time_indices: torch.Tensor | None
    ) -> torch.Tensor:
        """Projected last-layer outputs (B, T, final_dim); T = frames of the conv stack."""
        out = self.hubert(input_values, attention_mask=attention_mask, mask_time_indices=mask_time_indices)
        return self.final_proj(out.last_hidden_state)


def num_frames(num_samples: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Frames a conv stack gives for `num_samples` (0 when shorter than one receptive field)."""
    length = num_samples
    for kernel, stride in zip(kernels, strides, strict=True):
        if length < kernel:
            return 0
        length = (length - kernel) // stride + 1
    return length


def normalize_wave(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as Wav2Vec2FeatureExtractor(do_normalize=True) does per utterance."""
    wave = np.asarray(wave, dtype=np.float32)
    return ((wave - wave.mean()) / np.sqrt(wave.var() + NORM_EPS)).astype(np.float32)


def collate_waves(waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, samples) float32 waves and the (B, samples) int attention mask."""
    longest = max(len(w) for w in waves)
    values = torch.zeros((len(waves), longest), dtype=torch.float32)
    mask = torch.zeros((len(waves), longest), dtype=torch.long)
    for row, wave in enumerate(waves):
        values[row, : len(wave)] = torch.from_numpy(np.asarray(wave, dtype=np.float32))
        mask[row, : len(wave)] = 1
    return values, mask


def span_mask(lengths: Sequence[int], max_length: int, cfg: MaskConfig, rng: np.random.Generator) -> torch.Tensor:
    """(B, max_length) bool: spans of cfg.length frames starting at round(prob * n) distinct random frames of each
    utterance of n valid frames (rounded at random, so the expectation is exact; at least min_masks spans).

    Starts are drawn from the first n - length + 1 frames, so a span never reaches the padding. An utterance shorter
    than one span gets no mask. Random only through `rng`: the same seed gives the same mask.
    """
    mask = np.zeros((len(lengths), max_length), dtype=bool)
    for row, n in enumerate(lengths):
        if n > max_length:
            raise ValueError(f"length {n} exceeds the padded length {max_length}")
        positions = n - cfg.length + 1
        if positions < 1 or cfg.prob == 0:
            continue
        count = int(cfg.prob * n + rng.random())
        count = min(max(count, cfg.min_masks), positions)
        starts = rng.choice(positions, size=count, replace=False)
        for start in starts:
            mask[row, start : start + cfg.length] = True
    return torch.from_numpy(mask)


def align_targets(units: np.ndarray, frames: int, max_diff: int = 2, uttid: str = "") -> np.ndarray:
    """Targets cut or padded (by repeating the last unit) to the encoder's frame count.

    The MFCC frames (centred windows) and the conv frames (valid windows) of one utterance differ by a frame or so at
    the end; a larger difference means the targets are at the wrong rate or belong to other audio, which is an error.
    """
    units = np.asarray(units, dtype=np.int64)
    if abs(len(units) - frames) > max_diff:
        where = f"utterance '{uttid}': " if uttid else ""
        raise ValueError(
            f"{where}{len(units)} target frames for {frames} encoder frames (allowed difference {max_diff}); "
            "are the targets at the encoder's frame rate (targets.stack_frames)?"
        )
    if len(units) >= frames:
        return units[:frames]
    if len(units) == 0:
        raise ValueError(f"utterance '{uttid}': no targets")
    return np.concatenate([units, np.full(frames - len(units), units[-1], dtype=np.int64)])


def hubert_logits(projected: torch.Tensor, label_embeddings: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, T, D) x (K, D) -> (B, T, K) cosine similarities / temperature, in float32."""
    a = F.normalize(projected.float(), dim=-1, eps=1e-8)
    b = F.normalize(label_embeddings.float(), dim=-1, eps=1e-8)
    return a @ b.T / temperature


def hubert_loss(
    projected: torch.Tensor,
    label_embeddings: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    valid: torch.Tensor,
    cfg: LossConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """masked_weight * mean CE over masked frames + unmasked_weight * mean CE over valid unmasked frames.

    projected (B, T, D), targets (B, T) class ids, masked and valid (B, T) bool (padding is not valid). Returns the loss
    and statistics: loss_masked, acc_masked, loss_unmasked, acc_unmasked (where there are such frames), n_masked and
    n_unmasked.
    """
    logits = hubert_logits(projected, label_embeddings, cfg.temperature)
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
    correct = logits.argmax(dim=-1) == targets
    masked = masked & valid
    unmasked = valid & ~masked
    loss = logits.new_zeros(())
    stats: dict[str, float] = {"n_masked": float(masked.sum()), "n_unmasked": float(unmasked.sum())}
    for name, select, weight in (("masked", masked, cfg.masked_weight), ("unmasked", unmasked, cfg.unmasked_weight)):
        if not bool(select.any()):
            continue
        part = ce[select].mean()
        if weight > 0:
            loss = loss + weight * part
        stats[f"loss_{name}"] = float(part.detach())
        stats[f"acc_{name}"] = float(correct[select].float().mean())
    return loss, stats
