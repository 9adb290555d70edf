"""PAD: prior-informed adaptive knowledge distillation from a text encoder (teacher) to a speech encoder (student).

Ni et al., "Adaptive Knowledge Distillation between Text and Speech Pre-trained Models" (ICASSP 2023); written from
docs/methods.md section 2 (no code was released; the reconstructed parts are marked "our choice"). Speech units s_1..s_m
are the student's frame outputs (already projected to the teacher's size by the caller), text units t_1..t_n the
teacher's token outputs:

    glob        || s_hat - t_hat ||_1                          s_hat, t_hat: mean of the units (or the first unit)
    tlocal      -(1/n) sum_j max_i cos(s_i, t_j)
    pad_glob    || sum_i P_S[i] s_i - sum_j P_T[j] t_j ||_1
    pad_tlocal  - sum_j P_T[j] max_i cos(s_i, t_j)
    pad_slocal  - sum_j P_T[j] max_k cos(span_k, t_j)           spans from AASA (anchors + span pooling)
    joint       global_weight * (glob | pad_glob) + local_weight * (tlocal | pad_tlocal | pad_slocal)

|| . ||_1 is the L1 norm, a sum over the D dimensions (not a mean). Every loss is the mean over the utterances of the
batch. P_S, P_T are the attention-based significance priors (ASP, `significance_prior`) or, as the ablation, uniform.
The building blocks (priors, alignment, anchors, spans) are in `toolkit.losses.pad_prior`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from toolkit.losses.pad_prior import (
    anchor_positions,
    check_mask,
    max_cosine_alignment,
    restrict_prior,
    sentence_vector,
    significance_prior,
    span_vectors,
    span_widths,
    uniform_prior,
)

GLOBAL_KINDS = ("glob", "pad_glob")
LOCAL_KINDS = ("tlocal", "pad_tlocal", "pad_slocal")
LOSS_KINDS = GLOBAL_KINDS + LOCAL_KINDS + ("joint",)
PRIORS = ("asp", "uniform")
ANCHORS = ("asp", "stride")
SPAN_POOLS = ("mean",)
POOLINGS = ("mean", "first")


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _layers(value: object, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int | str) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be null (all layers) or a list of layer indices, got {value!r}")
    layers = tuple(value)
    if not layers or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
        raise ValueError(f"{name} must be a non-empty list of integer layer indices, got {value!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{name} lists a layer twice: {value!r}")
    return layers


@dataclass
class PADLossConfig:
    """Which distillation loss, and the options docs/methods.md leaves open ("our choice" below).

    kind:               glob | tlocal (baselines), pad_glob | pad_tlocal | pad_slocal (PAD), joint.
    prior:              "asp" (attention-based significance prior) or "uniform" (ablation). It sets the weights P_S,
                        P_T of the pad_* formulas (glob and tlocal have none: they are the uniform case).
    anchors:            AASA anchors of pad_slocal: "asp" (top-k of P_S read from the student's attention, even when
                        prior="uniform") or "stride" (ablation: evenly spaced, see `anchor_positions`).
    span_widths:        multipliers c of xi; the spans are floor(c * xi + 1/2) frames wide (at least 1). Paper:
                        xi/2, xi, 2*xi.
    xi:                 None = m/n per utterance, real frames per non-special text token (our choice), or a fixed
                        number of frames > 0.
    num_anchors:        None = n per utterance, the number of non-special text tokens (our choice), or a fixed
                        count >= 1; clipped to the utterance's frame count.
    span_pool:          how frames of a span are pooled: "mean" (our choice; the only one implemented).
    speech_asp_layers:  student attention layers averaged for P_S: None = all (the paper's default, docs/methods.md section 2) or indices.
    text_asp_layers:    teacher attention layers averaged for P_T: None = all or indices.
    sentence_pooling:   sentence vector of glob: "mean" (our choice) or "first" (SPLAT: first position).
    global_kind, local_kind, global_weight, local_weight: the two parts of kind="joint" and their weights.
    detach_prior:       True (our choice): no gradient flows through P_S into the student's attention, so the
                        student cannot lower the loss by reshaping its own weights; False lets it.
    """

    kind: str = "pad_slocal"
    prior: str = "asp"
    anchors: str = "asp"
    span_widths: tuple[float, ...] = (0.5, 1.0, 2.0)
    xi: float | None = None
    num_anchors: int | None = None
    span_pool: str = "mean"
    speech_asp_layers: tuple[int, ...] | None = None
    text_asp_layers: tuple[int, ...] | None = None
    sentence_pooling: str = "mean"
    global_kind: str = "pad_glob"
    local_kind: str = "pad_slocal"
    global_weight: float = 1.0
    local_weight: float = 1.0
    detach_prior: bool = True

    def __post_init__(self) -> None:
        for name, value, allowed in [
            ("kind", self.kind, LOSS_KINDS),
            ("prior", self.prior, PRIORS),
            ("anchors", self.anchors, ANCHORS),
            ("span_pool", self.span_pool, SPAN_POOLS),
            ("sentence_pooling", self.sentence_pooling, POOLINGS),
            ("global_kind", self.global_kind, GLOBAL_KINDS),
            ("local_kind", self.local_kind, LOCAL_KINDS),
        ]:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if isinstance(self.span_widths, str) or not isinstance(self.span_widths, Sequence):
            raise ValueError(f"span_widths must be a list of multipliers of xi, got {self.span_widths!r}")
        self.span_widths = tuple(self.span_widths)
        if not self.span_widths or not all(_is_number(c) and c > 0 for c in self.span_widths):
            raise ValueError(f"span_widths must be a non-empty list of numbers > 0, got {list(self.span_widths)}")
        if self.xi is not None and not (_is_number(self.xi) and self.xi > 0):
            raise ValueError(f"xi must be null (m/n per utterance) or a number of frames > 0, got {self.xi!r}")
        if self.num_anchors is not None and not (
            isinstance(self.num_anchors, int) and not isinstance(self.num_anchors, bool) and self.num_anchors >= 1
        ):
            raise ValueError(f"num_anchors must be null (n per utterance) or an integer >= 1, got {self.num_anchors!r}")
        self.speech_asp_layers = _layers(self.speech_asp_layers, "speech_asp_layers")
        self.text_asp_layers = _layers(self.text_asp_layers, "text_asp_layers")
        for name in ("global_weight", "local_weight"):
            w = getattr(self, name)
            if not (_is_number(w) and w >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {w!r}")
        if not isinstance(self.detach_prior, bool):
            raise ValueError(f"detach_prior must be true or false, got {self.detach_prior!r}")


# ---------------------------------------------------------------------------------------------------------------
# The losses (each a mean over the batch)


def glob_loss(
    speech: torch.Tensor, speech_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, pooling: str = "mean"
) -> torch.Tensor:
    """Glob (SPLAT): mean over utterances of || s_hat - t_hat ||_1 (sum over dimensions), see `sentence_vector`."""
    s = sentence_vector(speech, speech_mask, pooling)
    t = sentence_vector(text, text_mask, pooling)
    return (s - t).abs().sum(-1).mean()


def pad_glob_loss(
    speech: torch.Tensor,
    speech_mask: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    prior_s: torch.Tensor,
    prior_t: torch.Tensor,
) -> torch.Tensor:
    """PAD-Glob: mean over utterances of || sum_i P_S[i] s_i - sum_j P_T[j] t_j ||_1 (priors summing to 1)."""
    s = sentence_vector(speech, speech_mask, "mean", weights=prior_s)
    t = sentence_vector(text, text_mask, "mean", weights=prior_t)
    return (s - t).abs().sum(-1).mean()


def pad_tlocal_loss(
    speech: torch.Tensor, speech_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, prior_t: torch.Tensor
) -> torch.Tensor:
    """PAD-TLocal: mean over utterances of -sum_j P_T[j] * max_i cos(s_i, t_j) over the real tokens of text_mask."""
    best, _ = max_cosine_alignment(speech, speech_mask, text, text_mask)
    return -(prior_t.float() * text_mask * best).sum(-1).mean()


def tlocal_loss(
    speech: torch.Tensor, speech_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
) -> torch.Tensor:
    """TLocal (SPLAT): mean over utterances of -(1/n) sum_j max_i cos(s_i, t_j), i.e. PAD-TLocal with P_T = 1/n."""
    return pad_tlocal_loss(speech, speech_mask, text, text_mask, uniform_prior(text_mask))


def aasa_spans(
    speech: torch.Tensor,
    speech_mask: torch.Tensor,
    text_mask: torch.Tensor,
    prior_s: torch.Tensor | None,
    anchors: str = "asp",
    num_anchors: int | None = None,
    xi: float | None = None,
    multipliers: Sequence[float] = (0.5, 1.0, 2.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """AASA span vectors ([B, W*K, D], mask): anchors (`anchor_positions`), then mean spans (`span_vectors`).

    Per utterance, with m real frames and n real tokens in text_mask (n counted as at least 1):
    xi = m / n unless given (our choice), k = n anchors unless num_anchors is given (our choice).
    """
    m = speech_mask.sum(-1)
    n = text_mask.sum(-1).clamp_min(1)
    k = n if num_anchors is None else num_anchors
    x = m / n if xi is None else torch.full_like(m, float(xi), dtype=torch.float32)
    pos, pos_mask = anchor_positions(prior_s, speech_mask, k, anchors)
    return span_vectors(speech, speech_mask, pos, pos_mask, span_widths(x, multipliers))


def pad_slocal_loss(
    speech: torch.Tensor,
    speech_mask: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    prior_t: torch.Tensor,
    prior_s: torch.Tensor | None = None,
    anchors: str = "asp",
    num_anchors: int | None = None,
    xi: float | None = None,
    multipliers: Sequence[float] = (0.5, 1.0, 2.0),
) -> torch.Tensor:
    """PAD-SLocal: mean over utterances of -sum_j P_T[j] * max_k cos(span_k, t_j), spans from `aasa_spans`.

    prior_s (the ASP of the speech frames) picks the anchors when anchors="asp"; "stride" does not use it.
    """
    spans, span_mask = aasa_spans(speech, speech_mask, text_mask, prior_s, anchors, num_anchors, xi, multipliers)
    return pad_tlocal_loss(spans, span_mask, text, text_mask, prior_t)


# ---------------------------------------------------------------------------------------------------------------
# Dispatch


def pad_loss(
    cfg: PADLossConfig,
    speech: torch.Tensor,
    speech_mask: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    speech_attn: Sequence[torch.Tensor] | None = None,
    text_attn: Sequence[torch.Tensor] | None = None,
    text_local_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The distillation loss of one batch, by cfg.kind.

    speech [B, M, D] + speech_mask [B, M] bool: the student's frames (projected to the teacher's size D).
    text [B, N, D] + text_mask [B, N] bool: the teacher's outputs and its attention mask (special tokens included).
    speech_attn / text_attn: per layer [B, H, M, M] / [B, H, N, N] attention maps (`output_attentions=True`); needed
        only where an ASP is used (prior="asp" for pad_*, anchors="asp" for pad_slocal).
    text_local_mask [B, N] bool: the tokens of the local losses, text_mask without [CLS]/[SEP] (docs/methods.md section 2: special
        tokens are excluded for local losses); default text_mask. The global losses use text_mask. P_T is computed
        from the attention over text_mask and renormalised to text_local_mask (`restrict_prior`).
    Returns (loss, stats) with stats "loss" and, for joint, "global" and "local".
    """
    if speech.dim() != 3 or text.dim() != 3 or speech.shape[0] != text.shape[0] or speech.shape[2] != text.shape[2]:
        raise ValueError(
            f"speech [B, M, D] and text [B, N, D] must share B and D, got {tuple(speech.shape)} and {tuple(text.shape)}"
        )
    check_mask(speech_mask, speech.shape[:2], "speech_mask")
    check_mask(text_mask, text.shape[:2], "text_mask")
    local_mask = text_mask if text_local_mask is None else text_local_mask
    check_mask(local_mask, text.shape[:2], "text_local_mask")
    if bool((local_mask & ~text_mask).any()):
        raise ValueError("text_local_mask marks a padding token of text_mask as real")

    cache: dict[str, torch.Tensor] = {}

    def asp(side: str, kind: str) -> torch.Tensor:
        if side not in cache:
            attn, mask, layers = (
                (speech_attn, speech_mask, cfg.speech_asp_layers)
                if side == "speech"
                else (text_attn, text_mask, cfg.text_asp_layers)
            )
            if attn is None:
                who = "student (speech)" if side == "speech" else "teacher (text)"
                raise ValueError(
                    f"loss {kind!r} with an attention-based prior needs {side}_attn, the {who} encoder's attention "
                    "maps (call it with output_attentions=True and attn_implementation='eager'), or prior='uniform'"
                    + (" and anchors='stride'" if side == "speech" and kind == "pad_slocal" else "")
                )
            p = significance_prior(attn, mask, layers)
            cache[side] = p.detach() if cfg.detach_prior else p
        return cache[side]

    def part(kind: str) -> torch.Tensor:
        if kind == "glob":
            return glob_loss(speech, speech_mask, text, text_mask, cfg.sentence_pooling)
        if kind == "tlocal":
            return tlocal_loss(speech, speech_mask, text, local_mask)
        use_asp = cfg.prior == "asp"
        if kind == "pad_glob":
            p_s = asp("speech", kind) if use_asp else uniform_prior(speech_mask)
            p_t = asp("text", kind) if use_asp else uniform_prior(text_mask)
            return pad_glob_loss(speech, speech_mask, text, text_mask, p_s, p_t)
        p_t = restrict_prior(asp("text", kind), local_mask) if use_asp else uniform_prior(local_mask)
        if kind == "pad_tlocal":
            return pad_tlocal_loss(speech, speech_mask, text, local_mask, p_t)
        p_s = asp("speech", kind) if cfg.anchors == "asp" else None
        return pad_slocal_loss(
            speech, speech_mask, text, local_mask, p_t, p_s, cfg.anchors, cfg.num_anchors, cfg.xi, cfg.span_widths
        )

    if cfg.kind == "joint":
        g, loc = part(cfg.global_kind), part(cfg.local_kind)
        loss = cfg.global_weight * g + cfg.local_weight * loc
        values = {"loss": loss, "global": g, "local": loc}
    else:
        loss = part(cfg.kind)
        values = {"loss": loss}
    # One device -> host copy for all stats.
    numbers = torch.stack([v.detach().float() for v in values.values()]).tolist()
    return loss, dict(zip(values, numbers, strict=True))
