"""Batched greedy decoding of the speech-text LM with a KV cache.

Prompts (`[<bos>] speech... <speech_end>`) are sorted by length and packed into batches under a token budget; each
batch is left-padded, so every row's last prompt token sits in the last column and one forward over the prompts
fills the cache; then one token per step is fed back with the cache. Position ids are cumsum(mask) - 1, so a row's
padding never shifts its positions: a padded row decodes exactly as it would alone. Rows that emitted <text_end>
(or reached their limit) are dropped from the batch and the cache, so a long hypothesis does not make the short
ones pay for its steps.

The helpers here (token limits, batching, left padding, the text-only logit mask) are shared with beam.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from toolkit.tokenizers.vocab import VocabLayout

DEFAULT_RATIO = 0.5  # default limit: 0.5 new tokens per speech token of the prompt ...
DEFAULT_EXTRA = 10  # ... plus 10


def new_token_limits(
    prompts: Sequence[Sequence[int]],
    layout: VocabLayout,
    max_new_tokens: int | float = DEFAULT_RATIO,
    extra_new_tokens: int = DEFAULT_EXTRA,
    max_positions: int | None = None,
) -> list[int]:
    """How many tokens (<text_end> included) each prompt may generate.

    An int is an absolute limit; a float is a ratio of the prompt's speech tokens, plus `extra_new_tokens`
    (the transcript's length follows the speech's). `max_positions` caps prompt + generation at what the model can
    embed (GPT-2 has no position beyond it).
    """
    if isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int or float ratio, got {max_new_tokens!r}")
    limits = []
    for prompt in prompts:
        if isinstance(max_new_tokens, int):
            limit = max_new_tokens
        else:
            limit = int(max_new_tokens * sum(layout.is_speech(t) for t in prompt)) + extra_new_tokens
        if max_positions is not None:
            if len(prompt) >= max_positions:
                raise ValueError(f"a prompt of {len(prompt)} tokens leaves no room below max_positions {max_positions}")
            limit = min(limit, max_positions - len(prompt))
        limits.append(limit)
    return limits


def model_max_positions(model) -> int | None:
    config = model.config
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def length_batches(costs: Sequence[int], max_tokens: int | None, batch_size: int | None = None) -> Iterator[list[int]]:
    """Indices sorted by decreasing cost, grouped so that rows x largest cost stays within max_tokens.

    Longest first: a batch that does not fit in memory fails at once rather than at the end of a long run.
    A single row larger than the budget still gets a batch of its own.
    """
    order = sorted(range(len(costs)), key=lambda i: -costs[i])
    batch: list[int] = []
    for i in order:
        full = batch_size is not None and len(batch) >= batch_size
        # Sorted decreasing, so the batch's first row has its largest cost.
        over = max_tokens is not None and batch and costs[batch[0]] * (len(batch) + 1) > max_tokens
        if batch and (full or over):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of shape [B, longest], prompts aligned on the right (their last token in the last column)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if len(prompt) == 0:
            raise ValueError("empty prompt: a prompt holds at least <speech_end>")
        ids[row, width - len(prompt) :] = torch.as_tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def text_only_bias(layout: VocabLayout, vocab_size: int, device) -> torch.Tensor:
    """Additive logit bias: 0 on the text block and <text_end>, -inf elsewhere.

    Our choice (text_only=True, the default): the hypothesis of an ASR decoder is text, so speech tokens and the
    other special tokens are never emitted, even by an undertrained model. text_only=False is plain argmax.
    Rows beyond layout.size (a pretrained model's vocabulary padded to a multiple) are excluded too.
    """
    bias = torch.full((vocab_size,), float("-inf"), device=device)
    bias[layout.text_offset : layout.speech_offset] = 0.0
    bias[layout.text_end_id] = 0.0
    return bias


def prefill(model, ids: torch.Tensor, mask: torch.Tensor):
    """One forward over the left-padded prompts: (last-position logits [B, V] in fp32, cache, next positions [B])."""
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1].float(), out.past_key_values, positions[:, -1] + 1


def step(model, tokens: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache):
    """Feed one token per row; `mask` already includes the new column. Returns fp32 logits [B, V]."""
    out = model(
        input_ids=tokens[:, None],
        attention_mask=mask,
        position_ids=positions[:, None],
        past_key_values=cache,
        use_cache=True,
    )
    return out.logits[:, -1].float()


def _decode_batch(model, prompts, limits, layout, text_only: bool) -> list[list[int]]:
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, layout.pad_id, device)
    logits, cache, positions = prefill(model, ids, mask)
    bias = text_only_bias(layout, logits.shape[-1], device) if text_only else None
    limit = torch.as_tensor(limits, device=device)
    rows = torch.arange(len(prompts), device=device)  # which prompt each remaining row decodes
    out = torch.full((len(prompts), max(limits)), layout.pad_id, dtype=torch.long, device=device)
    lengths = torch.zeros(len(prompts), dtype=torch.long, device=device)
    for t in range(max(limits)):
        tokens = (logits if bias is None else logits + bias).argmax(-1)
        ended = tokens == layout.text_end_id
        out[rows, t] = torch.where(ended, layout.pad_id, tokens)
        lengths[rows] = torch.where(ended, lengths[rows], t + 1)
        keep = ~ended & (t + 1 < limit[rows])
        if not keep.any():
            break
        if not keep.all():
            # Drop finished rows from the batch and the cache (exactly what "ignore them" means, but cheaper).
            index = keep.nonzero().squeeze(1)
            cache.batch_select_indices(index)
            rows, tokens, mask, positions = rows[index], tokens[index], mask[index], positions[index]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        logits = step(model, tokens, mask, positions, cache)
        positions = positions + 1
    return [row[:n] for row, n in zip(out.tolist(), lengths.tolist(), strict=True)]


def greedy_decode(
    model,
    prompts: Sequence[Sequence[int]],
    layout: VocabLayout,
    max_new_tokens: int | float = DEFAULT_RATIO,
    max_tokens: int | None = 8000,
    batch_size: int | None = None,
    text_only: bool = True,
    extra_new_tokens: int = DEFAULT_EXTRA,
) -> list[list[int]]:
    """Greedy hypotheses (vocabulary ids, without the prompt and without <text_end>), in the order of `prompts`.

    max_new_tokens: int = tokens per utterance (<text_end> included); float = ratio of the prompt's speech tokens,
        plus extra_new_tokens.
    max_tokens: batch budget in cache positions (rows x (longest prompt + its limit)); None = no budget.
    batch_size: optional cap on rows per batch.
    text_only: restrict the argmax to the text block and <text_end> (see text_only_bias).
    The model is run in eval mode under torch.inference_mode (its training flag is restored afterwards); wrap the
    call in torch.autocast to decode in bf16/fp16.
    """
    if not prompts:
        return []
    limits = new_token_limits(prompts, layout, max_new_tokens, extra_new_tokens, model_max_positions(model))
    costs = [len(p) + n for p, n in zip(prompts, limits, strict=True)]
    results: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in length_batches(costs, max_tokens, batch_size):
                batch = [i for i in batch if limits[i] > 0]
                if not batch:
                    continue
                hyps = _decode_batch(model, [prompts[i] for i in batch], [limits[i] for i in batch], layout, text_only)
                for i, hyp in zip(batch, hyps, strict=True):
                    results[i] = hyp
    finally:
        model.train(was_training)
    return results
