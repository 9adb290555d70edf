"""Residual vector quantisation with codebook learning for the codec (toolkit/models/codec.py).

Quantiser learning: the transformers module only quantises (its codebook buffers `embed`, `cluster_size`,
`embed_avg` are never updated; a fresh model has all-zero codebooks). So training does it here, as EnCodec does:
- codebook c is initialised from random residual vectors of the first batch;
- exponential moving averages (decay `quantizer.ema_decay`) of the code counts (`cluster_size`) and of the sum of
  the vectors assigned to each code (`embed_avg`), with Laplace smoothing; embed = embed_avg / smoothed count;
- dead codes (EMA count below `quantizer.dead_code_threshold`) are replaced by random residual vectors of the
  batch, and their statistics reset so that the replacement is not overwritten by the next average (the original
  code overwrites it);
- gradients pass the quantiser straight through to the encoder;
- quantiser dropout: every step uses the codebooks of a bandwidth drawn uniformly from `target_bandwidths`, so the
  first codebooks alone also reconstruct (the lower bandwidths work); the training loop draws the bandwidth.
The EMA statistics live in the model's own buffers, so checkpoints and the saved model carry them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from toolkit.losses.codec import commitment_loss


@dataclass
class QuantizerConfig:
    # EnCodec uses 0.99 with batches of ~5000 frames; a CPU batch of ~400 frames and a short run need a shorter
    # memory, or the codebooks lag behind an encoder that is still moving fast.
    ema_decay: float = 0.95
    epsilon: float = 1e-5  # Laplace smoothing of the code counts
    # EMA count (uses per step) below which a code is replaced; 0 disables. EnCodec's 2 assumes many frames per code
    # per step; with 400 frames and 1024 codes the mean is 0.4, so the default is relative to that scale.
    dead_code_threshold: float = 0.03
    reset_count: float = 1.0  # the EMA count given to a new or replaced code: its grace period before replacement
    dropout: bool = True  # a random bandwidth per step (else always the highest)

    def __post_init__(self):
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"quantizer.ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.epsilon <= 0 or self.dead_code_threshold < 0 or self.reset_count <= self.dead_code_threshold:
            raise ValueError(
                "quantizer.epsilon must be positive, quantizer.dead_code_threshold >= 0 and "
                "quantizer.reset_count above dead_code_threshold"
            )


def _nearest(vectors: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    distances = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ embed.t() + embed.pow(2).sum(1)[None]
    return distances.argmin(1)


def _random_rows(vectors: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    # The generator lives on the CPU whatever the device, so the draws are the same on CPU and GPU.
    index = torch.randint(0, vectors.shape[0], (count,), generator=generator)
    return vectors[index.to(vectors.device)]


@torch.no_grad()
def ema_update(codebook, vectors: torch.Tensor, codes: torch.Tensor, qcfg: QuantizerConfig, generator) -> int:
    """One EMA step of a transformers EncodecEuclideanCodebook's buffers; returns the number of codes replaced."""
    size = codebook.embed.shape[0]
    onehot = F.one_hot(codes, size).to(vectors.dtype)
    decay = qcfg.ema_decay
    codebook.cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    codebook.embed_avg.mul_(decay).add_(onehot.t() @ vectors, alpha=1 - decay)
    n = codebook.cluster_size.sum()
    smoothed = (codebook.cluster_size + qcfg.epsilon) / (n + size * qcfg.epsilon) * n
    codebook.embed.copy_(codebook.embed_avg / smoothed[:, None])
    dead = codebook.cluster_size < qcfg.dead_code_threshold
    count = int(dead.sum())
    if count:
        fresh = _random_rows(vectors, count, generator)
        codebook.embed[dead] = fresh
        codebook.cluster_size[dead] = qcfg.reset_count
        codebook.embed_avg[dead] = fresh * qcfg.reset_count
    return count


@torch.no_grad()
def init_codebook(codebook, vectors: torch.Tensor, qcfg: QuantizerConfig, generator) -> None:
    fresh = _random_rows(vectors, codebook.embed.shape[0], generator)
    codebook.embed.copy_(fresh)
    codebook.embed_avg.copy_(fresh * qcfg.reset_count)
    codebook.cluster_size.fill_(qcfg.reset_count)


def quantize(
    model, embeddings: torch.Tensor, num_codebooks: int, qcfg: QuantizerConfig, train: bool, generator=None, init=False
):
    """Residual VQ of encoder output [B, D, T] with the first `num_codebooks` codebooks.

    Returns (straight-through quantised [B, D, T], commitment loss, codes [num_codebooks, B, T], replaced codes).
    With train=True the codebooks take an EMA step (init=True first fills them from the batch).
    """
    batch, dim, frames = embeddings.shape
    vectors = embeddings.permute(0, 2, 1).reshape(-1, dim).float()
    residual = vectors
    total = torch.zeros_like(vectors)
    residuals, codewords, all_codes = [], [], []
    replaced = 0
    for layer in model.quantizer.layers[:num_codebooks]:
        codebook = layer.codebook
        if init:
            init_codebook(codebook, residual.detach(), qcfg, generator)
        codes = _nearest(residual.detach(), codebook.embed)
        codeword = codebook.embed[codes].clone()
        residuals.append(residual)
        codewords.append(codeword)
        total = total + codeword
        if train:
            replaced += ema_update(codebook, residual.detach(), codes, qcfg, generator)
        residual = residual - codeword.detach()
        all_codes.append(codes.view(batch, frames))
    # Straight-through on the sum: the value is the codewords' sum, the gradient reaches the encoder once (a
    # straight-through per codebook would pass it once per codebook used, n times).
    out = vectors + (total - vectors).detach()
    quantized = out.view(batch, frames, dim).permute(0, 2, 1)
    return quantized, commitment_loss(residuals, codewords), torch.stack(all_codes), replaced
