"""The losses of the codec training (toolkit/train/codec.py) and the dev SNR.

Losses (weights configurable in `LossConfig`, defaults after EnCodec: lambda_t 0.1, lambda_f 1, lambda_w 1):
- time: L1 between the input crop and its reconstruction (a plain mean, taken in the training step);
- mel: multi-scale mel-spectrogram L1, for every STFT size in `loss.mel_scales` (hop = size / 4) the mean L1 of the
  mel magnitudes plus the mean L1 of their logs (our choice: EnCodec adds an L2 term on linear mels; the log term
  weighs quiet speech more, which matters more for units than loudness), averaged over the scales;
- commitment: mean over the codebooks used of || r_c - sg(q_c) ||^2 (r_c the residual entering codebook c, q_c its
  codeword), which keeps the encoder output near the codebooks.
No adversarial discriminator (EnCodec's MS-STFT discriminator, feature matching): it roughly triples the cost of a
step and mainly buys perceptual sharpness, which the units do not need; on a 2-core CPU budget it is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torchaudio


@dataclass
class LossConfig:
    time_weight: float = 0.1
    mel_weight: float = 1.0
    commitment_weight: float = 1.0
    mel_scales: list[int] = field(default_factory=lambda: [256, 512, 1024])  # STFT sizes (hop: size / 4)
    n_mels: int = 64

    def __post_init__(self):
        if min(self.time_weight, self.mel_weight, self.commitment_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if not self.mel_scales or any(not isinstance(s, int) or s < 16 for s in self.mel_scales):
            raise ValueError(f"loss.mel_scales must be a list of STFT sizes >= 16, got {self.mel_scales}")
        if self.n_mels < 1:
            raise ValueError(f"loss.n_mels must be >= 1, got {self.n_mels}")


class MelLoss(torch.nn.Module):
    """Multi-scale mel L1: per STFT size, mean |M(x) - M(y)| + mean |log M(x) - log M(y)|; averaged over sizes."""

    def __init__(self, sample_rate: int, scales: list[int], n_mels: int, floor: float = 1e-5):
        super().__init__()
        self.floor = floor
        self.mels = torch.nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=size,
                win_length=size,
                hop_length=size // 4,
                # A small STFT has few frequency bins: fewer mel bands than bins/2 avoids empty filters.
                n_mels=min(n_mels, size // 8),
                power=1.0,
                center=True,
            )
            for size in scales
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for mel in self.mels:
            mx, my = mel(x.float()), mel(y.float())
            total = total + (mx - my).abs().mean()
            total = total + (mx.clamp_min(self.floor).log() - my.clamp_min(self.floor).log()).abs().mean()
        return total / len(self.mels)


def commitment_loss(residuals: list[torch.Tensor], codewords: list[torch.Tensor]) -> torch.Tensor:
    """Mean over codebooks of mean((r_c - sg(q_c))^2)."""
    losses = [F.mse_loss(r, q.detach()) for r, q in zip(residuals, codewords, strict=True)]
    return torch.stack(losses).mean()


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    noise = (reference - estimate).pow(2).sum().item()
    signal = reference.pow(2).sum().item()
    return 10 * math.log10(max(signal, 1e-12) / max(noise, 1e-12))
