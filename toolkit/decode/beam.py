"""Batched beam search of the speech-text LM with a KV cache.

Several utterances are decoded together, each with `beam_size` beams (rows item*K .. item*K+K-1). The prompts are
run once, then their cache is repeated per beam; after every step the cache is gathered by each new beam's origin
(and items that are done are dropped from it). A hypothesis ends when <text_end> is chosen.

Scores are sums of log-probabilities (under the text-only distribution when text_only is set, see greedy.py);
hypotheses are ranked by score / length ** length_penalty, the length counting <text_end>.
An utterance is done when it has beam_size finished hypotheses and its best running beam, normalised at its current
length, cannot beat the worst of them (exact for length_penalty 0, where scores only fall; a heuristic otherwise,
as in transformers), or when it reaches its token limit, where the running beams are kept as unfinished hypotheses.
With beam_size 1 this is exactly greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from toolkit.decode.greedy import (
    DEFAULT_EXTRA,
    DEFAULT_RATIO,
    left_pad,
    length_batches,
    model_max_positions,
    new_token_limits,
    prefill,
    step,
    text_only_bias,
)
from toolkit.tokenizers.vocab import VocabLayout


@dataclass
class Hypothesis:
    tokens: list[int]  # vocabulary ids, without <text_end>
    score: float  # sum of log-probs of the generated tokens (<text_end> included when ended)
    normalized: float  # score / length ** length_penalty, the ranking key
    ended: bool  # False when the token limit cut it


class _Pool:
    """The best `size` finished hypotheses of one utterance."""

    def __init__(self, size: int):
        self.size = size
        self.hyps: list[Hypothesis] = []

    def add(self, hyp: Hypothesis) -> None:
        self.hyps.append(hyp)
        self.hyps.sort(key=lambda h: -h.normalized)
        del self.hyps[self.size :]

    def threshold(self) -> float:
        """A running beam must beat this to matter: the worst kept score once the pool is full."""
        return self.hyps[-1].normalized if len(self.hyps) >= self.size else float("-inf")


def _normalize(score: float, length: int, length_penalty: float) -> float:
    return score / max(length, 1) ** length_penalty


def _search_batch(model, prompts, limits, layout, beam_size: int, length_penalty: float, text_only: bool):
    k = beam_size
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, layout.pad_id, device)
    logits, cache, positions = prefill(model, ids, mask)
    bias = text_only_bias(layout, logits.shape[-1], device) if text_only else None
    vocab = logits.shape[-1]

    def log_probs(logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits if bias is None else logits + bias, dim=-1).view(-1, k, vocab)

    # Every beam starts as a copy of the prompt; only beam 0 is live at first, or the K copies would fill the beam.
    cache.batch_repeat_interleave(k)
    mask, positions = mask.repeat_interleave(k, 0), positions.repeat_interleave(k, 0)
    logp = log_probs(logits.repeat_interleave(k, 0))
    scores = torch.full((len(prompts), k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.zeros((len(prompts), k, 0), dtype=torch.long, device=device)
    items = torch.arange(len(prompts), device=device)  # which prompt each remaining item decodes
    limit = torch.as_tensor(limits, device=device)
    pools = [_Pool(k) for _ in prompts]
    width = min(2 * k, k * vocab)  # 2K candidates: at most K of them end, so K running beams always remain
    rank = torch.arange(width, device=device)

    for t in range(max(limits)):
        cand_scores, cand = (scores[:, :, None] + logp).view(len(items), -1).topk(width, dim=1)
        origin, token = cand // vocab, cand % vocab
        ending = token == layout.text_end_id
        # The K best candidates that do not end continue (candidates are sorted, so this keeps their order).
        run_scores, pick = cand_scores.masked_fill(ending, float("-inf")).topk(k, dim=1)
        run_origin, run_token = origin.gather(1, pick), token.gather(1, pick)
        gathered = history.gather(1, run_origin[:, :, None].expand(-1, -1, history.shape[2]))
        new_history = torch.cat([gathered, run_token[:, :, None]], dim=2)
        # An ending candidate counts only if it ranks among the K best (as in transformers).
        finished = ending & (rank < k) & cand_scores.isfinite()
        at_limit = t + 1 >= limit[items]

        # Bookkeeping of finished hypotheses, in Python over the few that finished (one device sync per step).
        item_list = items.tolist()
        ends = finished.nonzero()
        if len(ends):
            rows, js = ends[:, 0], ends[:, 1]
            ended_tokens = history[rows, origin[rows, js]].tolist()
            for row, score, tokens in zip(rows.tolist(), cand_scores[rows, js].tolist(), ended_tokens, strict=True):
                norm = _normalize(score, t + 1, length_penalty)
                pools[item_list[row]].add(Hypothesis(tokens, score, norm, True))
        for row in at_limit.nonzero().squeeze(1).tolist():
            for score, tokens in zip(run_scores[row].tolist(), new_history[row].tolist(), strict=True):
                if score > float("-inf"):
                    norm = _normalize(score, t + 1, length_penalty)
                    pools[item_list[row]].add(Hypothesis(tokens, score, norm, False))
        threshold = torch.tensor([pools[i].threshold() for i in item_list], device=device)
        best_running = run_scores[:, 0] / float(t + 1) ** length_penalty
        done = at_limit | (best_running <= threshold)
        if done.all():
            break

        keep = (~done).nonzero().squeeze(1)
        # Cache rows for the next step: of each kept item, the rows its running beams came from.
        rows = (keep[:, None] * k + run_origin[keep]).reshape(-1)
        cache.batch_select_indices(rows)
        items, scores, history = items[keep], run_scores[keep], new_history[keep]
        mask, positions = mask[rows], positions[rows]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        logp = log_probs(step(model, run_token[keep].reshape(-1), mask, positions, cache))
        positions = positions + 1
    return [pool.hyps for pool in pools]


def beam_search_nbest(
    model,
    prompts: Sequence[Sequence[int]],
    layout: VocabLayout,
    beam_size: int = 4,
    max_new_tokens: int | float = DEFAULT_RATIO,
    max_tokens: int | None = 8000,
    length_penalty: float = 1.0,
    text_only: bool = True,
    nbest: int | None = None,
    extra_new_tokens: int = DEFAULT_EXTRA,
) -> list[list[Hypothesis]]:
    """Up to `nbest` (default beam_size) hypotheses per prompt, best first, in the order of `prompts`.

    max_new_tokens / extra_new_tokens / text_only as in greedy_decode. max_tokens: batch budget in cache positions,
    counting all beams (rows x (longest prompt + its limit)). length_penalty: 0 ranks by summed log-prob; 1 (the
    default) by mean log-prob per token, which counters the summed score's bias towards short hypotheses.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    nbest = beam_size if nbest is None else min(nbest, beam_size)
    if not prompts:
        return []
    limits = new_token_limits(prompts, layout, max_new_tokens, extra_new_tokens, model_max_positions(model))
    costs = [(len(p) + n) * beam_size for p, n in zip(prompts, limits, strict=True)]
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0, 0.0, False)] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in length_batches(costs, max_tokens):
                batch = [i for i in batch if limits[i] > 0]
                if not batch:
                    continue
                sub = [prompts[i] for i in batch]
                nbests = _search_batch(
                    model, sub, [limits[i] for i in batch], layout, beam_size, length_penalty, text_only
                )
                for i, hyps in zip(batch, nbests, strict=True):
                    results[i] = hyps[:nbest]
    finally:
        model.train(was_training)
    return results


def beam_search(
    model,
    prompts: Sequence[Sequence[int]],
    layout: VocabLayout,
    beam_size: int = 4,
    max_new_tokens: int | float = DEFAULT_RATIO,
    max_tokens: int | None = 8000,
    length_penalty: float = 1.0,
    text_only: bool = True,
    extra_new_tokens: int = DEFAULT_EXTRA,
) -> list[list[int]]:
    """The best hypothesis per prompt (vocabulary ids, without the prompt and <text_end>); see beam_search_nbest."""
    nbests = beam_search_nbest(
        model, prompts, layout, beam_size, max_new_tokens, max_tokens, length_penalty, text_only, 1, extra_new_tokens
    )
    return [hyps[0].tokens for hyps in nbests]
