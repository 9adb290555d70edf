"""`eager_fast_dropout`: transformers' eager attention with a cheaper dropout mask, for training on CPU.

Attention dropout draws one random decision per attention weight, [batch, heads, length, length] of them per layer.
On CPU, torch's Bernoulli sampler (F.dropout) and inductor's compiled random numbers both spend several nanoseconds
per weight: about a third of a compiled training step of the embedded recipe's model. Here every 64-bit random draw
gives four 16-bit numbers, and a weight is dropped when its number falls below round(p * 65536) - 32768: the same
dropout (p is exact to 1/65536, 0.1 becomes 0.100006), masks from torch's default generator (so a seeded run is
reproducible and resumes exactly), at about a fifth of the cost.

Everything else is the eager attention of transformers' Llama and GPT-2 style models: scores in the autocast dtype,
softmax in float32, the additive mask transformers builds. Select it with `model.attn_implementation:
eager_fast_dropout`; without dropout, or in eval mode, it computes exactly what `eager` computes.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

NAME = "eager_fast_dropout"
_INT16_SPAN = 1 << 16


@torch.compiler.disable  # inductor would lower randint to its own per-element generator, the cost this avoids
def dropout_keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """A bool tensor of `shape`, True with probability 1 - p (to 1/65536), from torch's default generator."""
    count = shape.numel()
    draws = torch.randint(-(2**63), 2**63 - 1, ((count + 3) // 4,), dtype=torch.int64, device=device)
    return draws.view(torch.int16)[:count].view(shape) >= round(p * _INT16_SPAN) - _INT16_SPAN // 2


def eager_fast_dropout_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """query [B, H, Lq, D], key/value [B, Hkv, Lk, D] -> (output [B, Lq, H, D], attention weights [B, H, Lq, Lk])."""
    if key.shape[1] != query.shape[1]:  # grouped-query attention: each key/value head serves several query heads
        repeats = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeats, dim=1), value.repeat_interleave(repeats, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if module.training and dropout > 0:
        keep = dropout_keep_mask(weights.shape, dropout, weights.device)
        # The 1 / (1 - p) rescaling goes on the values, [.., Lk, D], instead of the larger weights, [.., Lq, Lk].
        weights = weights.masked_fill(~keep, 0.0)
        value = value * (1.0 / (1.0 - dropout))
    output = torch.matmul(weights, value)
    return output.transpose(1, 2).contiguous(), weights


AttentionInterface.register(NAME, eager_fast_dropout_attention)
# The mask builder is registered too: transformers gives an attention it has no mask builder for no mask at all, so
# without this line the model would see the future tokens and the padding.
AttentionMaskInterface.register(NAME, eager_mask)
