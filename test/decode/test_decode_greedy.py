"""Batched greedy decoding with a KV cache equals the simplest possible decoder: one prompt at a time, no cache."""

from __future__ import annotations

import pytest
import torch

from toolkit.decode.greedy import greedy_decode, length_batches, new_token_limits, text_only_bias
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout

from tiny_models import LAYOUT, rough_model

LENGTHS = [3, 9, 1, 15, 6, 12, 2, 7]


def make_prompts(layout: VocabLayout = LAYOUT, lengths=LENGTHS, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    speech = [torch.randint(layout.speech_offset, layout.size, (n,), generator=g).tolist() for n in lengths]
    return [[layout.bos_id, *s, layout.speech_end_id] for s in speech]


def naive_greedy(model, prompt: list[int], limit: int, text_only: bool) -> list[int]:
    """Full recompute of the whole sequence at every step, no cache, no padding."""
    bias = text_only_bias(LAYOUT, model.config.vocab_size, "cpu")
    seq, out = list(prompt), []
    with torch.inference_mode():
        for _ in range(limit):
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
            token = int((logits + bias if text_only else logits).argmax())
            if token == LAYOUT.text_end_id:
                break
            out.append(token)
            seq.append(token)
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("text_only", [True, False])
def test_batched_equals_single_equals_naive(arch, text_only):
    model = rough_model(arch)
    prompts = make_prompts()
    reference = [naive_greedy(model, p, 12, text_only) for p in prompts]
    batched = greedy_decode(model, prompts, LAYOUT, max_new_tokens=12, text_only=text_only)
    single = greedy_decode(model, prompts, LAYOUT, max_new_tokens=12, text_only=text_only, batch_size=1)
    budget = greedy_decode(model, prompts, LAYOUT, max_new_tokens=12, text_only=text_only, max_tokens=60)
    assert batched == single == budget == reference
    assert len({tuple(h) for h in reference}) > 2  # the check is not vacuous: hypotheses differ
    assert not text_only or any(len(h) < 12 for h in reference)  # and some end early


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_text_only_never_emits_other_ids(arch):
    model = rough_model(arch, seed=3)
    prompts = make_prompts(lengths=[4, 8, 12, 16, 20])
    free = greedy_decode(model, prompts, LAYOUT, max_new_tokens=10, text_only=False)
    constrained = greedy_decode(model, prompts, LAYOUT, max_new_tokens=10, text_only=True)
    assert any(not LAYOUT.is_text(t) for h in free for t in h)  # unconstrained argmax does stray here
    assert all(LAYOUT.is_text(t) for h in constrained for t in h)


def copy_task(layout: VocabLayout, n: int, seed: int) -> list[list[int]]:
    """Text = speech token i mapped to text token i % text_size; lengths 1..6."""
    g = torch.Generator().manual_seed(seed)
    seqs = []
    for _ in range(n):
        speech = torch.randint(0, layout.speech_size, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g)
        text = [int(s) % layout.text_size for s in speech]
        seqs.append(
            [layout.bos_id, *layout.speech_ids(speech.tolist()), layout.speech_end_id, *layout.text_ids(text)]
            + [layout.text_end_id]
        )
    return seqs


def trained_copy_model(layout: VocabLayout):
    """A tiny llama trained for a second or two on the copy task, so it ends its transcripts with <text_end>."""
    torch.manual_seed(0)
    cfg = SpeechLMConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128, max_positions=32)
    model = build_speech_lm(cfg, layout)
    seqs = copy_task(layout, 64, seed=0)
    width = max(map(len, seqs))
    ids = torch.tensor([s + [layout.pad_id] * (width - len(s)) for s in seqs])
    mask = (torch.arange(width)[None] < torch.tensor([len(s) for s in seqs])[:, None]).long()
    labels = ids.masked_fill(mask == 0, -100)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(120):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    return model.eval(), seqs


def test_stops_at_text_end_and_excludes_prompt():
    layout = VocabLayout(text_size=5, speech_size=10)
    model, seqs = trained_copy_model(layout)
    prompts = [s[: s.index(layout.speech_end_id) + 1] for s in seqs]
    targets = [s[len(p) : -1] for s, p in zip(seqs, prompts, strict=True)]
    hyps = greedy_decode(model, prompts, layout, max_new_tokens=20)
    assert sum(h == t for h, t in zip(hyps, targets, strict=True)) >= 0.9 * len(seqs)
    assert all(len(h) < 20 for h in hyps)  # every row stopped at <text_end>, well before the limit
    # A limit cuts hypotheses short (the limit counts <text_end>, as transformers' max_new_tokens does).
    short = greedy_decode(model, prompts, layout, max_new_tokens=2)
    assert all(s == h[:2] for s, h in zip(short, hyps, strict=True))


def test_limits():
    layout = LAYOUT
    prompts = [[layout.bos_id, *([layout.speech_offset] * 20), layout.speech_end_id], [layout.speech_end_id]]
    assert new_token_limits(prompts, layout, 0.5) == [20, 10]  # 0.5 per speech token + 10
    assert new_token_limits(prompts, layout, 0.25, extra_new_tokens=2) == [7, 2]
    assert new_token_limits(prompts, layout, 7) == [7, 7]
    assert new_token_limits(prompts, layout, 30, max_positions=32) == [10, 30]  # room left below max_positions
    with pytest.raises(ValueError, match="max_positions"):
        new_token_limits(prompts, layout, 5, max_positions=22)


def test_length_batches_budget_and_order():
    costs = [5, 30, 10, 10, 40, 1]
    batches = list(length_batches(costs, max_tokens=40))
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(max(costs[i] for i in b) * len(b) <= 40 for b in batches)
    assert batches[0] == [4]  # longest first
    assert [len(b) for b in length_batches(costs, None, batch_size=4)] == [4, 2]


def test_keeps_training_flag_and_handles_empty():
    model = rough_model("llama").train()
    assert greedy_decode(model, [], LAYOUT) == []
    assert greedy_decode(model, make_prompts(lengths=[2]), LAYOUT, max_new_tokens=0) == [[]]
    greedy_decode(model, make_prompts(lengths=[2, 3]), LAYOUT, max_new_tokens=3)
    assert model.training
