"""eager_fast_dropout: the eager attention with a cheaper dropout mask, the same model otherwise."""

from __future__ import annotations

import pytest
import torch

from toolkit.models.attention import dropout_keep_mask, eager_fast_dropout_attention
from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout

LAYOUT = VocabLayout(text_size=20, speech_size=30)


def pair(arch: str, dropout: float):
    """The same weights twice: with `eager` and with `eager_fast_dropout`."""
    models = []
    for attn in ("eager", "eager_fast_dropout"):
        torch.manual_seed(0)
        cfg = SpeechLMConfig(
            arch=arch, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, dropout=dropout
        )
        cfg.attn_implementation = attn
        models.append(build_speech_lm(cfg, LAYOUT))
    return models


def batch():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, LAYOUT.size, (3, 17), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0  # a right-padded row
    return ids, mask


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_without_dropout_it_computes_what_eager_computes(arch):
    eager, fast = pair(arch, dropout=0.1)
    ids, mask = batch()
    for model in (eager, fast):
        model.eval()  # eval mode: no dropout
    with torch.no_grad():
        expected = eager(input_ids=ids, attention_mask=mask).logits
        got = fast(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(got, expected, atol=1e-5)


def test_keep_mask_rate_and_seeding():
    shape = torch.Size([8, 4, 128, 129])  # an element count that is not a multiple of 4
    torch.manual_seed(3)
    first = dropout_keep_mask(shape, 0.1, torch.device("cpu"))
    torch.manual_seed(3)
    again = dropout_keep_mask(shape, 0.1, torch.device("cpu"))
    assert first.shape == shape and first.dtype == torch.bool
    assert torch.equal(first, again)  # torch's default generator: seeded runs repeat
    assert abs((~first).float().mean().item() - 0.1) < 0.003  # 528k weights: std of the rate ~0.0004
    assert dropout_keep_mask(shape, 0.0, torch.device("cpu")).all()
    assert abs((~dropout_keep_mask(shape, 0.5, torch.device("cpu"))).float().mean().item() - 0.5) < 0.003


def test_dropout_is_unbiased():
    """Inverted dropout: averaged over many masks, the attention output is the output without dropout."""
    generator = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 4, 9, 8, generator=generator) for _ in range(3))
    causal = torch.full((9, 9), float("-inf")).triu(1).expand(2, 1, 9, 9)
    module = torch.nn.Module()
    module.eval()
    clean, _ = eager_fast_dropout_attention(module, q, k, v, causal, dropout=0.3)
    module.train()
    torch.manual_seed(5)
    draws = torch.stack([eager_fast_dropout_attention(module, q, k, v, causal, dropout=0.3)[0] for _ in range(2000)])
    single = (draws[0] - clean).abs().mean()
    assert single > 0.05  # dropout is on in training mode
    # The mean of 2000 draws deviates by ~single / sqrt(2000) = 0.02 x single; a biased rescaling would not.
    assert (draws.mean(0) - clean).abs().mean() < 0.05 * single


def test_training_step_runs_backward():
    _, fast = pair("gpt2", dropout=0.1)
    ids, mask = batch()
    fast.train()
    logits = fast(input_ids=ids, attention_mask=mask).logits
    logits.float().logsumexp(-1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in fast.parameters() if p.requires_grad)
