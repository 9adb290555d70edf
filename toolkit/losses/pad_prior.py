"""PAD's building blocks: significance priors, max-cosine alignment, AASA anchors and span pooling.

Ni et al., "Adaptive Knowledge Distillation between Text and Speech Pre-trained Models" (ICASSP 2023); written from
docs/methods.md section 2 (no code was released). The losses that use these are in `toolkit.losses.pad`.

Conventions: units are batched [B, L, D] with a bool mask [B, L] (True = a real unit). Masks are right-padded (the
real units are a prefix), as Hugging Face encoders produce them; `anchor_positions` with method "stride" and
`span_vectors` check this. Padding units are zeroed before use, so whatever they hold (even NaN) never reaches a
value or a gradient. Everything is computed in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

TINY = 1e-12  # guards divisions by a sum of probabilities / a vector norm
ANCHOR_METHODS = ("asp", "stride")


def check_mask(mask: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    """Raise a ValueError unless `mask` is a bool tensor of `shape`."""
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must be a bool tensor of shape {tuple(shape)}, got {mask.dtype} {tuple(mask.shape)}")


def _check_right_padded(mask: torch.Tensor, name: str) -> None:
    prefix = torch.arange(mask.shape[-1], device=mask.device) < mask.sum(-1, keepdim=True)
    if not torch.equal(prefix, mask):
        raise ValueError(f"{name} must be right-padded (real units first, then padding)")


def zero_pad(units: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`units` [B, L, D] as float32 with the padding positions set to 0."""
    return units.float().masked_fill(~mask.unsqueeze(-1), 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Priors


def significance_prior(
    attentions: Sequence[torch.Tensor], mask: torch.Tensor, layers: Sequence[int] | None = None
) -> torch.Tensor:
    """Attention-based significance prior (ASP) [B, L]: the share of attention each unit receives.

    attentions: one [B, H, L, L] tensor per layer (query rows, key columns), as returned by a transformers model
                called with `output_attentions=True` (which needs the "eager" attention implementation).
    mask:       [B, L] bool, the model's attention mask (True = real unit).
    layers:     indices into `attentions` (negative allowed) to average over; None = all layers.

    For each layer l used, with A_l the head-averaged attention and q, k over the real units only:

        r_l[k] = sum_q A_l[q, k]           column sums over the non-padding query rows (padding rows are ignored)
        P_l[k] = r_l[k] / sum_k' r_l[k']   normalised over the non-padding units; padding units get 0
        P = (1 / |layers|) * sum_l P_l     equal weight per layer, so P sums to 1 as well

    Attention that real queries put on padding keys (none with a proper attention mask) is dropped before the
    normalisation, i.e. each layer is renormalised to the real units. An utterance with no real unit gets all zeros.
    """
    if len(attentions) == 0:
        raise ValueError("significance_prior needs at least one layer of attention maps")
    if mask.dim() != 2:
        raise ValueError(f"mask must be [B, L], got shape {tuple(mask.shape)}")
    b, length = mask.shape
    check_mask(mask, (b, length), "mask")
    n = len(attentions)
    used = list(range(n)) if layers is None else list(layers)
    if not used:
        raise ValueError("significance_prior: `layers` is empty")
    for i in used:
        if not -n <= i < n:
            raise ValueError(f"attention layer index {i} is out of range for {n} layers")
    total = torch.zeros(b, length, device=mask.device)
    for i in used:
        a = attentions[i]
        if a.dim() != 4 or a.shape[0] != b or a.shape[2:] != (length, length):
            raise ValueError(
                f"attention maps of layer {i} must be [B={b}, H, {length}, {length}], got {tuple(a.shape)}"
            )
        # [B, L(query), L(key)]; padding query rows are zeroed (whatever they hold), padding key columns after the sum.
        heads = a.float().mean(1).masked_fill(~mask.unsqueeze(-1), 0.0)
        received = heads.sum(1).masked_fill(~mask, 0.0)
        total = total + received / received.sum(-1, keepdim=True).clamp_min(TINY)
    return total / len(used)


def uniform_prior(mask: torch.Tensor) -> torch.Tensor:
    """The ablation of ASP: 1 / (number of real units) on every real unit, 0 on padding. [B, L] float32."""
    m = mask.float()
    return m / m.sum(-1, keepdim=True).clamp_min(1.0)


def restrict_prior(prior: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Renormalise `prior` [B, L] to the units of a sub-mask [B, L] (e.g. the text tokens without [CLS]/[SEP]):

        P'[k] = P[k] * mask[k] / sum_k' P[k'] * mask[k']

    An utterance whose prior has no mass on the sub-mask gets the uniform prior over the sub-mask instead.
    """
    p = prior.float() * mask
    s = p.sum(-1, keepdim=True)
    return torch.where(s > 0, p / s.clamp_min(TINY), uniform_prior(mask))


# ---------------------------------------------------------------------------------------------------------------
# Pooling and alignment


def sentence_vector(
    units: torch.Tensor, mask: torch.Tensor, pooling: str = "mean", weights: torch.Tensor | None = None
) -> torch.Tensor:
    """One vector per utterance [B, D] from units [B, L, D].

    pooling "mean":   (1 / |real|) * sum_i u_i over the real units; with `weights` [B, L] (a prior that sums to 1
                      over the mask) the weighted sum sum_i w_i u_i instead (PAD-Glob's sum_i P[i] u_i).
    pooling "first":  u_0, the first position ([CLS] for text, the first frame for speech), as in SPLAT.
    """
    check_mask(mask, units.shape[:2], "mask")
    if pooling == "first":
        if weights is not None:
            raise ValueError("sentence_vector: weights only apply to pooling 'mean'")
        return units[:, 0].float()
    if pooling != "mean":
        raise ValueError(f"sentence pooling must be 'mean' or 'first', got {pooling!r}")
    w = uniform_prior(mask) if weights is None else weights.float() * mask
    return torch.einsum("bl,bld->bd", w, zero_pad(units, mask))


def max_cosine_alignment(
    speech: torch.Tensor, speech_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every text token t_j its most similar speech unit: (max_i cos(s_i, t_j) [B, N], argmax i [B, N]).

    speech [B, M, D] may be frames or span vectors. Padding speech units are never chosen. Padding text tokens,
    and every token of an utterance without a real speech unit, get cosine 0 and index 0. A zero vector has
    cosine 0 with everything.
    """
    check_mask(speech_mask, speech.shape[:2], "speech_mask")
    check_mask(text_mask, text.shape[:2], "text_mask")
    s = F.normalize(zero_pad(speech, speech_mask), dim=-1, eps=TINY)
    t = F.normalize(zero_pad(text, text_mask), dim=-1, eps=TINY)
    cos = torch.bmm(t, s.transpose(1, 2)).masked_fill(~speech_mask.unsqueeze(1), float("-inf"))  # [B, N, M]
    if cos.shape[-1] == 0:  # no speech unit in the whole batch: add one -inf column so that max() is defined
        cos = torch.cat([cos, cos.new_full((*cos.shape[:2], 1), float("-inf"))], dim=-1)
    best, index = cos.max(-1)
    keep = text_mask & speech_mask.any(-1, keepdim=True)
    return torch.where(keep, best, torch.zeros_like(best)), torch.where(keep, index, torch.zeros_like(index))


# ---------------------------------------------------------------------------------------------------------------
# AASA: anchors and spans


def anchor_positions(
    prior_s: torch.Tensor | None,
    speech_mask: torch.Tensor,
    num_anchors: int | torch.Tensor,
    method: str = "asp",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor frames for AASA: (positions [B, K] long, validity mask [B, K] bool), K = the largest per-utterance k.

    num_anchors: an int or a [B] tensor; per utterance k = min(max(num_anchors, 1), m), m = its real frame count.
    method "asp":    the k real frames of highest significance prior_s [B, M] (top-k; ties broken by torch.topk).
    method "stride": the ablation, k evenly spaced frames: the centres of k equal segments of the real frames,
                     a_r = floor((2r + 1) * m / (2k)), r = 0..k-1 (prior_s is not used and may be None).
    Valid anchors come first in each row, in increasing position; invalid slots hold position 0.
    """
    b, m_max = speech_mask.shape
    check_mask(speech_mask, (b, m_max), "speech_mask")
    if method not in ANCHOR_METHODS:
        raise ValueError(f"anchor method must be one of {ANCHOR_METHODS}, got {method!r}")
    device = speech_mask.device
    lengths = speech_mask.sum(-1)
    k = torch.as_tensor(num_anchors, device=device, dtype=torch.long).expand(b)
    k = torch.minimum(k.clamp_min(1), lengths)
    k_max = int(k.max()) if b else 0
    slot = torch.arange(k_max, device=device).unsqueeze(0)
    anchor_mask = slot < k.unsqueeze(1)
    if method == "asp":
        if prior_s is None or prior_s.shape != speech_mask.shape:
            raise ValueError(f"ASP anchors need prior_s of shape {tuple(speech_mask.shape)}")
        score = prior_s.detach().float().masked_fill(~speech_mask, float("-inf"))
        top = score.topk(k_max, dim=-1).indices  # most significant first; padding frames only fill unused slots
        pos = torch.where(anchor_mask, top, torch.full_like(top, m_max)).sort(-1).values
    else:
        _check_right_padded(speech_mask, "speech_mask")
        pos = ((2 * slot + 1) * lengths.unsqueeze(1)) // (2 * k.clamp_min(1).unsqueeze(1))
    return torch.where(anchor_mask, pos, torch.zeros_like(pos)), anchor_mask


def span_widths(xi: torch.Tensor, multipliers: Sequence[float]) -> torch.Tensor:
    """Span widths in frames [B, W] for per-utterance xi [B]: floor(c * xi + 1/2) (rounding half up), at least 1."""
    c = torch.tensor([float(v) for v in multipliers], device=xi.device)
    return torch.floor(xi.float().unsqueeze(1) * c + 0.5).long().clamp_min(1)


def span_vectors(
    speech: torch.Tensor,
    speech_mask: torch.Tensor,
    anchors: torch.Tensor,
    anchor_mask: torch.Tensor,
    widths: torch.Tensor | Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-pooled spans around anchors: ([B, W*K, D], mask [B, W*K]), width-major (all anchors of width 0 first).

    widths: [B, W] long (per utterance, see `span_widths`) or W ints for every utterance; each >= 1.
    The span of anchor a with width w covers the frames [a - floor(w/2), a - floor(w/2) + w), clipped to the real
    frames [0, m); the span vector is the mean of those frames. Computed with cumulative sums C[t] = sum_{i<t} s_i:
    mean = (C[end] - C[start]) / (end - start), so the cost does not depend on the widths. Invalid anchors give
    zero vectors and mask False.
    """
    b, m_max = speech_mask.shape
    check_mask(speech_mask, speech.shape[:2], "speech_mask")
    _check_right_padded(speech_mask, "speech_mask")
    if not torch.is_tensor(widths):
        widths = torch.tensor([list(widths)] * b, dtype=torch.long, device=speech.device).reshape(b, -1)
    if widths.dim() != 2 or widths.shape[0] != b or bool((widths < 1).any()):
        raise ValueError(f"span widths must be [B={b}, W] frames >= 1, got {widths.tolist()}")
    x = zero_pad(speech, speech_mask)
    d = x.shape[-1]
    csum = torch.cat([x.new_zeros(b, 1, d), x.cumsum(1)], dim=1)  # [B, M + 1, D]
    length = speech_mask.sum(-1, keepdim=True)  # [B, 1]

    def at(index: torch.Tensor) -> torch.Tensor:
        return csum.gather(1, index.unsqueeze(-1).expand(-1, -1, d))

    spans = []
    for w in widths.unbind(-1):  # a loop over the (few) widths, not over frames
        w = w.unsqueeze(1)
        start = anchors - w // 2
        end = torch.minimum((start + w).clamp_min(0), length)
        start = torch.minimum(start.clamp_min(0), length)
        count = (end - start).clamp_min(1).unsqueeze(-1)
        spans.append((at(end) - at(start)) / count)
    mask = anchor_mask.repeat(1, widths.shape[1])
    return torch.cat(spans, dim=1) * mask.unsqueeze(-1), mask
