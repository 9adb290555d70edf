"""Losses of the speech-text decoder-only LM: Loss Masking (`lm`), multimodal CE (`ce`) and SLD (`sld`).

Chen et al., "Loss Masking Is Not Needed in Decoder-only Transformer for Discrete-token-based ASR" (ICASSP 2024).
Written from the formulas in docs/methods.md section 1. One sequence per utterance,

    [<bos>] x_1..x_m <speech_end> y_1..y_n <text_end> <pad>...

and position t predicts token t+1. Targets are grouped by kind:

    speech targets   speech tokens and <speech_end>          (CE_speech, and KL_speech on the speech tokens)
    text targets     text tokens and <text_end>               (CE_text)

    lm:   CE_text
    ce:   CE_text + w_speech * CE_speech
    sld:  CE_text + w_speech * CE_speech + alpha * KL_speech

    KL_speech = mean over speech-token targets x_t of KL(q' || p) * tau^2
    q'(k) = (1 - eps) * 1[k = x_t] + eps / K,   p = softmax(z_t[speech block] / tau)

`release_compat=True` reproduces the authors' release instead (see `release_kl`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from toolkit.tokenizers.vocab import VocabLayout

IGNORE_INDEX = -100  # the target of positions that predict nothing (F.cross_entropy's default ignore_index)

# Values of the target-kind tensor.
KIND_IGNORE = 0
KIND_SPEECH = 1
KIND_TEXT = 2

LOSS_KINDS = ("lm", "ce", "sld")


@dataclass
class SLDLossConfig:
    """Which loss to train with, and its weights.

    kind:            "lm" (Loss Masking, text targets only), "ce" (text + speech CE) or "sld" (ce + smoothed KL).
    speech_weight:   w_speech, the weight of CE_speech ("ce" and "sld").
    alpha:           weight of KL_speech ("sld"). 1.0 suits the per-position mean of the formula. The release uses
                     0.008, but only together with its "batchmean" reduction (a sum over all positions divided by
                     the batch size, far larger than a per-position mean): set alpha=0.008 with release_compat=True.
    eps:             label smoothing of the KL target q', in [0, 1]; eps=0 makes q' one-hot.
    tau:             temperature of the model's speech-block softmax (and of the release's target softmax); > 0.
    release_compat:  reproduce the released code's KL (see `release_kl`); only valid with kind="sld".
    text_eps:        label smoothing of the text targets, in [0, 1) (our choice, not in the paper; 0 = off, the
                     formula): CE_text's target becomes (1 - text_eps) * one-hot + text_eps spread evenly over the
                     text classes (the text block and <text_end>), as ASR decoders are usually trained. Any kind.
    """

    kind: str = "sld"
    speech_weight: float = 1.0
    alpha: float = 1.0
    eps: float = 0.1
    tau: float = 1.0
    release_compat: bool = False
    text_eps: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in LOSS_KINDS:
            raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {self.kind!r}")
        if not (math.isfinite(self.speech_weight) and self.speech_weight >= 0):
            raise ValueError(f"speech_weight must be a finite number >= 0, got {self.speech_weight}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha}")
        if not 0.0 <= self.eps <= 1.0:
            raise ValueError(f"eps (label smoothing) must be in [0, 1], got {self.eps}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"tau (temperature) must be a finite number > 0, got {self.tau}")
        if not 0.0 <= self.text_eps < 1.0:
            raise ValueError(f"text_eps (text label smoothing) must be in [0, 1), got {self.text_eps}")
        if self.release_compat and self.kind != "sld":
            raise ValueError(f"release_compat only changes the SLD KL term; it needs kind='sld', got {self.kind!r}")


def next_token_targets(input_ids: torch.Tensor, layout: VocabLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token targets and their kinds for a right-padded batch `input_ids` [B, L].

    Returns `targets` [B, L] (long): targets[:, t] = input_ids[:, t + 1], and IGNORE_INDEX at the last position,
    where the next token is <pad> (or any other special that is never predicted: <bos>, <mask>) and where the input
    itself is <pad>. `kinds` [B, L] (long): KIND_SPEECH for a speech token or <speech_end>, KIND_TEXT for a text
    token or <text_end>, KIND_IGNORE where the target is IGNORE_INDEX.

    BOS (our choice, docs/methods.md section 1): a <bos> at the start is allowed and then the first speech token x_1 is
    predicted from it, like every other speech token. Without a <bos> the sequence starts with x_1, which has no
    predictor and so is never a target; nothing else changes.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, L], got shape {tuple(input_ids.shape)}")
    # Element-wise ops only (no in-place masked writes): the whole loss compiles into one graph (`compile: true`).
    nxt = torch.cat([input_ids[:, 1:], torch.full_like(input_ids[:, :1], layout.pad_id)], dim=1)

    speech = ((nxt >= layout.speech_offset) & (nxt < layout.size)) | (nxt == layout.speech_end_id)
    text = ((nxt >= layout.text_offset) & (nxt < layout.speech_offset)) | (nxt == layout.text_end_id)
    # A pad input predicts nothing, even if a real token follows (left padding would otherwise train pad -> x_1).
    live = input_ids != layout.pad_id
    speech &= live
    text &= live

    kinds = torch.where(text, KIND_TEXT, torch.where(speech, KIND_SPEECH, KIND_IGNORE))
    targets = torch.where(kinds != KIND_IGNORE, nxt, torch.full_like(nxt, IGNORE_INDEX))
    return targets, kinds


def smoothed_targets(labels: torch.Tensor, num_classes: int, eps: float) -> torch.Tensor:
    """q'(k) = (1 - eps) * 1[k = label] + eps / K for each label in `labels` [N] -> [N, K] (float32)."""
    q = torch.full((labels.numel(), num_classes), eps / num_classes, dtype=torch.float32, device=labels.device)
    q.scatter_add_(1, labels.reshape(-1, 1), torch.full((labels.numel(), 1), 1.0 - eps, device=labels.device))
    return q


def kl_target(labels: torch.Tensor, num_classes: int, eps: float, tau: float, release_compat: bool) -> torch.Tensor:
    """The KL target over the speech block for speech-class labels [N] (0..K-1) -> [N, K], rows summing to 1.

    The formula's target is q' itself; the release's is softmax(q' / tau), a softmax applied to probabilities, which
    is close to uniform (with eps = 0.1, K = 3 the true class gets ~0.46 instead of ~0.93).
    """
    q = smoothed_targets(labels, num_classes, eps)
    return torch.softmax(q / tau, dim=-1) if release_compat else q


def _kl_rows(target: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(target || p) per row, in log space; entries with target 0 contribute 0 (0 * log 0 = 0, eps = 0)."""
    positive = target > 0
    log_t = torch.log(torch.where(positive, target, torch.ones_like(target)))
    # where() keeps 0 * (-inf) out of both the value and the gradient when a logit is -inf.
    elem = torch.where(positive, target * (log_t - log_p), torch.zeros_like(log_p))
    return elem.sum(dim=-1)


def _entropy_term(num_classes: int, eps: float) -> float:
    """sum_k q'(k) log q'(k), the same for every row of q' (0 log 0 = 0)."""
    hit, miss = 1.0 - eps + eps / num_classes, eps / num_classes
    return hit * math.log(hit) + ((num_classes - 1) * miss * math.log(miss) if miss > 0 else 0.0)


def speech_kl(
    logits: torch.Tensor, targets: torch.Tensor, kinds: torch.Tensor, layout: VocabLayout, cfg: SLDLossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL_speech of the formula: mean over speech-token targets of KL(q' || softmax(z[speech] / tau)) * tau^2.

    Returns (the term, the number of positions it averages over, a 0-d tensor). Only targets that are speech tokens
    count: <speech_end> is a speech target for CE_speech but lies outside the speech block, so it has no class in q'
    (our reading of "for every speech target position t" with q' defined over the K speech tokens only).
    Only the speech block of the logits receives a gradient from this term.

    q' has two values per row, so the KL needs no [N, K] target: with log p = log_softmax(z / tau),
        KL(q' || p) = sum_k q' log q' - (1 - eps) log p(x_t) - (eps / K) sum_k log p(k),
    the value and gradient of `_kl_rows(kl_target(...), log p)` in far fewer passes over the speech block (the dense
    form was about two thirds of the loss's time in a training step).
    """
    k = layout.speech_size
    rows = (kinds == KIND_SPEECH) & (targets >= layout.speech_offset)
    # Every position is computed and the rows are selected by where(), not by boolean indexing: a selection of
    # data-dependent size would split the compiled graph. where() also keeps the unselected rows out of the value and
    # the gradient, -inf logits included.
    z = logits[..., layout.speech_offset : layout.speech_offset + k].float()
    log_p = torch.log_softmax(z / cfg.tau, dim=-1)
    labels = torch.where(rows, targets - layout.speech_offset, 0).unsqueeze(-1)
    cross = (1.0 - cfg.eps) * torch.where(rows, log_p.gather(-1, labels).squeeze(-1), 0.0).sum()
    if cfg.eps > 0:  # with eps = 0 the uniform part is absent, also where a logit is -inf (0 * -inf would be NaN)
        cross = cross + cfg.eps / k * torch.where(rows, log_p.sum(-1), 0.0).sum()
    n = rows.sum()
    # Sums over an empty selection are 0 and still part of the graph, so no NaN and no special case for n = 0.
    return (n * _entropy_term(k, cfg.eps) - cross) * cfg.tau**2 / n.clamp(min=1), n


def release_kl(
    logits: torch.Tensor,
    targets: torch.Tensor,
    kinds: torch.Tensor,
    layout: VocabLayout,
    cfg: SLDLossConfig,
    input_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL_speech as the authors' release computes it (release_compat=True). Three differences from `speech_kl`:

    1. the target is softmax(q' / tau) over the K speech classes (`kl_target(..., release_compat=True)`);
    2. the KL is summed over all positions and classes and divided by the batch size B ("batchmean" over the
       sequences), then scaled by tau^2 as in the formula, so alpha = 0.008 is the matching weight;
    3. non-speech positions are included with their label clamped to speech class 0: every position with a target
       (kind != KIND_IGNORE: text tokens, <text_end> and <speech_end> too) takes part, and all but the speech-token
       targets get the one-hot on speech class 0 before smoothing.

    And one consequence of how the release batches: it pads every sequence to its block length, so the position
    whose *input* is <text_end> (its target is padding) is a row too, with a uniform target (a padding label has no
    class: q' is eps / K everywhere, and its softmax is uniform). That row is added here for every sequence, also
    for the longest one of a batch, whose <text_end> is the last position. Pads after it are left out, as the
    release leaves them out.

    Returns (the term, the number of positions summed over).
    """
    k = layout.speech_size
    rows = kinds != KIND_IGNORE
    tgt = targets[rows]
    is_speech_token = tgt >= layout.speech_offset
    labels = torch.where(is_speech_token, tgt - layout.speech_offset, torch.zeros_like(tgt))
    z = logits[rows][:, layout.speech_offset : layout.speech_offset + k].float()
    log_p = torch.log_softmax(z / cfg.tau, dim=-1)
    r = kl_target(labels, k, cfg.eps, cfg.tau, release_compat=True)
    total = _kl_rows(r, log_p).sum()
    ends = input_ids == layout.text_end_id
    z_end = logits[ends][:, layout.speech_offset : layout.speech_offset + k].float()
    log_p_end = torch.log_softmax(z_end / cfg.tau, dim=-1)
    # KL(uniform || p) = -log K - mean_k log p(k), per row.
    total = total + (-math.log(k) - log_p_end.mean(dim=-1)).sum()
    return total * cfg.tau**2 / logits.shape[0], rows.sum() + ends.sum()


def text_uniform_ce(
    flat_logits: torch.Tensor, text: torch.Tensor, n_text: torch.Tensor, layout: VocabLayout
) -> torch.Tensor:
    """Mean over text targets of the cross-entropy against the uniform distribution on the text classes (the text
    block and <text_end>): the smoothing part of CE_text with label smoothing (`text_eps`).

    Over the text classes only, not the whole vocabulary: a text position should not learn to give mass to speech
    tokens or to specials it never predicts.
    """
    # -mean_c log p_c = logsumexp(z) - mean_c z_c: one reduction over the vocabulary, no [N, V] log-softmax kept.
    n_classes = layout.speech_offset - layout.text_offset + 1
    block = flat_logits[:, layout.text_offset : layout.speech_offset].sum(-1) + flat_logits[:, layout.text_end_id]
    per_position = torch.logsumexp(flat_logits, dim=-1) - block / n_classes
    return (per_position * text.reshape(-1)).sum() / n_text.clamp(min=1)


def sld_loss(
    logits: torch.Tensor, input_ids: torch.Tensor, layout: VocabLayout, cfg: SLDLossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss for one batch.

    logits:     [B, L, V] from the model run on `input_ids` (possibly time-masked); V >= layout.size (a model may pad
                its vocabulary; ids past layout.size are never targets but do take part in the full softmax).
    input_ids:  [B, L] the *unmasked* right-padded sequences; targets come from these (see `next_token_targets`).
    Returns (loss, stats). The loss is a scalar connected to `logits` even when a kind has no targets (its term is
    then 0), so backward always works. The losses are computed in float32 whatever the logits' dtype.
    stats: loss, ce_text, ce_speech (always, for monitoring), kl_speech (kind "sld" only), n_text, n_speech (counts of
    targets), acc_text (greedy accuracy of text targets over the whole vocabulary).
    """
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError(
            f"logits must be [B, L, V] matching input_ids {tuple(input_ids.shape)}, got {tuple(logits.shape)}"
        )
    if logits.shape[-1] < layout.size:
        raise ValueError(f"logits have {logits.shape[-1]} classes, fewer than the vocabulary size {layout.size}")

    targets, kinds = next_token_targets(input_ids, layout)
    flat = logits.reshape(-1, logits.shape[-1]).float()
    ce = F.cross_entropy(flat, targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none").view_as(targets)
    text, speech = kinds == KIND_TEXT, kinds == KIND_SPEECH
    # Counts stay tensors: a Python int would end the compiled graph here (`compile: true`).
    n_text, n_speech = text.sum(), speech.sum()
    # Masked sums stay 0 (not NaN) when a kind has no targets; the clamp only guards the division.
    ce_text = (ce * text).sum() / n_text.clamp(min=1)
    ce_speech = (ce * speech).sum() / n_speech.clamp(min=1)

    loss = ce_text
    if cfg.text_eps > 0:
        loss = (1.0 - cfg.text_eps) * ce_text + cfg.text_eps * text_uniform_ce(flat, text, n_text, layout)
    if cfg.kind in ("ce", "sld"):
        loss = loss + cfg.speech_weight * ce_speech
    kl = None
    if cfg.kind == "sld":
        if cfg.release_compat:
            kl, _ = release_kl(logits, targets, kinds, layout, cfg, input_ids)
        else:
            kl, _ = speech_kl(logits, targets, kinds, layout, cfg)
        loss = loss + cfg.alpha * kl

    with torch.no_grad():
        correct = ((flat.argmax(-1).view_as(targets) == targets) & text).sum()
        acc_text = correct.float() / n_text.clamp(min=1)
        names = ["loss", "ce_text", "ce_speech", "acc_text"] + (["kl_speech"] if kl is not None else [])
        values = [loss, ce_text, ce_speech, acc_text] + ([kl] if kl is not None else []) + [n_text, n_speech]
        # One device -> host copy for all stats instead of one sync per .item().
        numbers = torch.stack([v.detach().float() for v in values]).tolist()
    stats = dict(zip([*names, "n_text", "n_speech"], numbers, strict=True))
    return loss, stats
