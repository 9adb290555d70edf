"""Beam search with a KV cache: beam 1 is greedy, a wider beam finds sequences at least as likely, scores are true
sequence log-probs, and batching utterances together changes nothing."""

from __future__ import annotations

import pytest
import torch

from toolkit.decode.beam import beam_search, beam_search_nbest
from toolkit.decode.greedy import greedy_decode, text_only_bias

from tiny_models import LAYOUT, rough_model

LIMIT = 12


def make_prompts(lengths=(3, 9, 1, 15, 6, 12, 2), seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    speech = [torch.randint(LAYOUT.speech_offset, LAYOUT.size, (n,), generator=g).tolist() for n in lengths]
    return [[LAYOUT.bos_id, *s, LAYOUT.speech_end_id] for s in speech]


def sequence_logprob(model, prompt: list[int], tokens: list[int], ended: bool, text_only: bool = True) -> float:
    """Sum of log-probs of the generated tokens (and <text_end> if ended) from one full forward."""
    seq = prompt + tokens + ([LAYOUT.text_end_id] if ended else [])
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([seq])).logits[0].float()
    if text_only:
        logits = logits + text_only_bias(LAYOUT, logits.shape[-1], "cpu")
    logp = logits.log_softmax(-1)
    return sum(logp[i - 1, seq[i]].item() for i in range(len(prompt), len(seq)))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("text_only", [True, False])
def test_beam_one_is_greedy(arch, text_only):
    model = rough_model(arch)
    prompts = make_prompts()
    greedy = greedy_decode(model, prompts, LAYOUT, max_new_tokens=LIMIT, text_only=text_only)
    for length_penalty in (0.0, 1.0):
        beam = beam_search(
            model,
            prompts,
            LAYOUT,
            beam_size=1,
            max_new_tokens=LIMIT,
            length_penalty=length_penalty,
            text_only=text_only,
        )
        assert beam == greedy


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_wider_beam_scores_at_least_greedy(arch):
    model = rough_model(arch)
    prompts = make_prompts()
    greedy = greedy_decode(model, prompts, LAYOUT, max_new_tokens=LIMIT)
    nbests = beam_search_nbest(model, prompts, LAYOUT, beam_size=4, max_new_tokens=LIMIT, length_penalty=0.0)
    better = 0
    for prompt, hyp, nbest in zip(prompts, greedy, nbests, strict=True):
        greedy_score = sequence_logprob(model, prompt, hyp, ended=len(hyp) < LIMIT)
        best = nbest[0]
        # The reported score is the sequence's true log-prob.
        assert best.score == pytest.approx(sequence_logprob(model, prompt, best.tokens, best.ended), abs=1e-4)
        assert best.score >= greedy_score - 1e-4
        better += best.score > greedy_score + 1e-4
        assert [h.normalized for h in nbest] == sorted((h.normalized for h in nbest), reverse=True)
        assert 1 <= len(nbest) <= 4
        assert len({(tuple(h.tokens), h.ended) for h in nbest}) == len(nbest)  # distinct hypotheses
    assert better > 0  # the beam matters on this model


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batched_equals_one_at_a_time(arch):
    model = rough_model(arch, seed=2)
    prompts = make_prompts()
    together = beam_search_nbest(model, prompts, LAYOUT, beam_size=3, max_new_tokens=LIMIT)
    alone = [beam_search_nbest(model, [p], LAYOUT, beam_size=3, max_new_tokens=LIMIT)[0] for p in prompts]
    tight = beam_search_nbest(model, prompts, LAYOUT, beam_size=3, max_new_tokens=LIMIT, max_tokens=100)
    for a, b, c in zip(together, alone, tight, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b] == [h.tokens for h in c]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


def test_text_only_and_nbest_limit():
    model = rough_model("llama", seed=3)
    nbests = beam_search_nbest(model, make_prompts(), LAYOUT, beam_size=5, max_new_tokens=LIMIT, nbest=2)
    assert all(1 <= len(n) <= 2 for n in nbests)
    assert all(LAYOUT.is_text(t) for n in nbests for h in n for t in h.tokens)
    assert all(len(h.tokens) <= LIMIT for n in nbests for h in n)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, make_prompts(), LAYOUT, beam_size=0)
