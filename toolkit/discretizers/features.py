"""Kaldi-style MFCC features for unit discovery: MFCC, deltas, per-utterance CMVN, optional frame stacking.

Frames are 25 ms long every 10 ms (100 Hz) with Kaldi's `snip_edges=false` framing: frame i is centred at
(i + 0.5) * 10 ms and an utterance of n samples has round(n / 160) frames at 16 kHz. That is the same grid as the
`phone_ali` labels of the embedded corpus, so units line up frame by frame with phone alignments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional

FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
# Kaldi's feature code works on 16-bit sample values; scaling floats in [-1, 1] back keeps its energy floors and
# therefore its numbers (only C0 would shift otherwise, and CMVN removes that, but matching Kaldi costs nothing).
INT16_SCALE = 32768.0
# The smallest standard deviation CMVN divides by: a constant dimension (digital silence) must not blow up.
CMVN_MIN_STD = 1e-5


@dataclass(frozen=True)
class FeatureSpec:
    sample_rate: int = 16000
    num_ceps: int = 13
    deltas: bool = True  # append first and second order deltas (13 -> 39 dims)
    cmvn: bool = True  # per-utterance mean and variance normalisation
    stack_frames: int = 1  # concatenate k neighbouring frames and keep every k-th: k=2 gives 50 Hz

    @property
    def dim(self) -> int:
        return self.num_ceps * (3 if self.deltas else 1) * self.stack_frames

    @property
    def frame_rate(self) -> float:
        return 1000.0 / FRAME_SHIFT_MS / self.stack_frames

    def window_samples(self) -> int:
        return int(self.sample_rate * FRAME_LENGTH_MS / 1000)


def mfcc(wave: torch.Tensor, sample_rate: int, num_ceps: int = 13) -> torch.Tensor:
    """(num_samples,) float waveform in [-1, 1] -> (frames, num_ceps); no frames when shorter than one window."""
    window = int(sample_rate * FRAME_LENGTH_MS / 1000)
    if wave.numel() < window:
        return wave.new_zeros((0, num_ceps))
    return kaldi.mfcc(
        wave.unsqueeze(0) * INT16_SCALE,
        sample_frequency=float(sample_rate),
        num_ceps=num_ceps,
        frame_length=FRAME_LENGTH_MS,
        frame_shift=FRAME_SHIFT_MS,
        dither=0.0,  # Kaldi dithers by default; units must not change from one run to the next
        snip_edges=False,
    )


def add_deltas(feats: torch.Tensor) -> torch.Tensor:
    """(frames, d) -> (frames, 3d): the features, their deltas and delta-deltas (Kaldi's window of 2)."""
    if feats.shape[0] == 0:
        return feats.new_zeros((0, feats.shape[1] * 3))
    static = feats.T  # compute_deltas works along the last axis
    delta = torchaudio.functional.compute_deltas(static, win_length=5)
    delta2 = torchaudio.functional.compute_deltas(delta, win_length=5)
    return torch.cat([static, delta, delta2], dim=0).T


def apply_cmvn(feats: torch.Tensor) -> torch.Tensor:
    """Per-utterance mean and variance normalisation of (frames, d); speaker and channel offsets cancel out."""
    if feats.shape[0] == 0:
        return feats
    mean = feats.mean(dim=0, keepdim=True)
    std = feats.std(dim=0, unbiased=False, keepdim=True).clamp_min(CMVN_MIN_STD)
    return (feats - mean) / std


def stack_frames(feats: torch.Tensor, k: int) -> torch.Tensor:
    """(frames, d) -> (ceil(frames / k), k * d): each output frame is k consecutive input frames side by side.

    The last group is completed by repeating the last frame, so the output still covers the whole utterance.
    """
    if k == 1 or feats.shape[0] == 0:
        return feats if k == 1 else feats.new_zeros((0, feats.shape[1] * k))
    missing = -feats.shape[0] % k
    if missing:
        feats = torch.cat([feats, feats[-1:].expand(missing, -1)], dim=0)
    return feats.reshape(feats.shape[0] // k, k * feats.shape[1])


def compute_features(wave: np.ndarray | torch.Tensor, spec: FeatureSpec) -> torch.Tensor:
    """One utterance at spec.sample_rate -> (frames, spec.dim) float32 features."""
    tensor = torch.as_tensor(wave, dtype=torch.float32)
    if tensor.dim() != 1:
        raise ValueError(f"expected a 1-D (mono) waveform, got shape {tuple(tensor.shape)}")
    feats = mfcc(tensor, spec.sample_rate, spec.num_ceps)
    if spec.deltas:
        feats = add_deltas(feats)
    if spec.cmvn:
        feats = apply_cmvn(feats)
    return stack_frames(feats, spec.stack_frames)


def compute_features_batch(waves: Sequence[np.ndarray | torch.Tensor], spec: FeatureSpec) -> list[torch.Tensor]:
    """Features of several utterances. Kaldi's MFCC takes one waveform at a time and the later steps cost
    microseconds per utterance, so this is a plain map; batching pays off in the unit assignment, which
    concatenates all frames into one matrix product."""
    return [compute_features(w, spec) for w in waves]
