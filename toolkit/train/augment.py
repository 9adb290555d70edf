"""Time masking, the training-time augmentation of the SLD release (docs/methods.md section 1).

Each maskable *input* token is replaced by <mask> with probability p (the release uses p = 0.3; p = 0 disables).
The caller computes the targets from the unmasked ids (`toolkit.losses.sld.sld_loss` takes the unmasked ids) and
feeds the masked copy to the model, so the model still has to predict the true next token. Never used at inference.

Which tokens are maskable (`maskable_positions`, scope):
    "all"     (default) every text and speech token: docs/methods.md section 1.4 allows it; special tokens (<bos>,
              <speech_end>, <text_end>, <mask>) and <pad> are never masked, because they mark the format's
              boundaries that the model and the decoder rely on.
    "speech"  speech tokens only, for users who want the text history left intact.
    "release" the SLD release exactly: every input position but padding, specials included, replaced by
              <text_end> (the release's mask is its end-of-text token) instead of <mask> (`mask_token`).
"""

from __future__ import annotations

import torch

from toolkit.tokenizers.vocab import VocabLayout

MASK_SCOPES = ("all", "speech", "release")


def speech_positions(input_ids: torch.Tensor, layout: VocabLayout) -> torch.Tensor:
    """Bool mask [same shape as input_ids] of the speech tokens (the speech block, not <speech_end>)."""
    return (input_ids >= layout.speech_offset) & (input_ids < layout.size)


def maskable_positions(input_ids: torch.Tensor, layout: VocabLayout, scope: str = "all") -> torch.Tensor:
    """Bool mask of the tokens time masking may replace: "all" = text and speech tokens, "speech" = speech tokens,
    "release" = every token but padding."""
    if scope == "speech":
        return speech_positions(input_ids, layout)
    if scope == "all":
        # Specials come first in the layout, so "not special, not pad" is exactly the text and speech blocks.
        return (input_ids >= layout.text_offset) & (input_ids < layout.size)
    if scope == "release":
        return input_ids != layout.pad_id
    raise ValueError(f"time-mask scope must be one of {MASK_SCOPES}, got {scope!r}")


def mask_token(layout: VocabLayout, scope: str) -> int:
    """The id masked positions get: <mask>, or <text_end> for the release's scope."""
    return layout.text_end_id if scope == "release" else layout.mask_id


def time_mask(
    input_ids: torch.Tensor,
    p: float,
    mask_id: int,
    maskable: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A copy of `input_ids` with each position where `maskable` is True replaced by `mask_id` with probability p.

    `maskable` is a bool tensor of input_ids' shape (see `maskable_positions`). `generator`, when given, must live on
    input_ids' device; the draw is then reproducible. The input is never modified.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"time-mask probability must be in [0, 1], got {p}")
    if maskable.shape != input_ids.shape or maskable.dtype != torch.bool:
        raise ValueError(
            f"maskable must be a bool tensor of shape {tuple(input_ids.shape)}, got {maskable.dtype} {tuple(maskable.shape)}"
        )
    if p == 0.0:
        return input_ids.clone()
    # rand is in [0, 1), so p = 1 masks every maskable token.
    hit = (torch.rand(input_ids.shape, generator=generator, device=input_ids.device) < p) & maskable
    return input_ids.masked_fill(hit, mask_id)
