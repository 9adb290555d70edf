"""The speech LM: built from tiny configs, saved and reloaded, initialised from a (tiny, local) pretrained GPT-2."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

from toolkit.config import ConfigError
from toolkit.models.speech_lm import (
    SpeechLMConfig,
    build_speech_lm,
    count_params,
    load_speech_lm,
    save_speech_lm,
)
from toolkit.tokenizers.vocab import VocabLayout

LAYOUT = VocabLayout(text_size=12, speech_size=20)


def tiny(arch: str, **kw) -> SpeechLMConfig:
    return SpeechLMConfig(arch=arch, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, **kw)


def sample_ids() -> torch.Tensor:
    return torch.tensor([[LAYOUT.bos_id, 17, 20, 36, LAYOUT.speech_end_id, 6, 7, LAYOUT.text_end_id]])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_build_from_config(arch):
    torch.manual_seed(0)
    model = build_speech_lm(tiny(arch, max_positions=64), LAYOUT)
    assert isinstance(model, LlamaForCausalLM if arch == "llama" else GPT2LMHeadModel)
    assert model.get_input_embeddings().weight.shape[0] == LAYOUT.size
    assert (model.config.pad_token_id, model.config.bos_token_id) == (LAYOUT.pad_id, LAYOUT.bos_id)
    assert model.config.eos_token_id == LAYOUT.text_end_id  # generation ends with the transcript
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied by default
    logits = model(input_ids=sample_ids()).logits
    assert logits.shape == (1, 8, LAYOUT.size)


def test_untied_has_more_params():
    tied = count_params(build_speech_lm(tiny("llama"), LAYOUT))
    untied = count_params(build_speech_lm(tiny("llama", tie_embeddings=False), LAYOUT))
    assert untied - tied == LAYOUT.size * 32


def test_config_rejects_unknown_and_bad_values():
    assert SpeechLMConfig.from_dict({"arch": "gpt2", "num_layers": 2}).num_layers == 2
    with pytest.raises(ConfigError, match="unknown key 'hiden_size'"):
        SpeechLMConfig.from_dict({"hiden_size": 64})
    with pytest.raises(ConfigError, match="arch"):
        SpeechLMConfig.from_dict({"arch": "bert"})
    with pytest.raises(ValueError, match="divisible"):
        SpeechLMConfig(hidden_size=30, num_heads=4)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_save_load_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    model = build_speech_lm(tiny(arch), LAYOUT).eval()
    save_speech_lm(model, tmp_path / "best")
    save_speech_lm(model, tmp_path / "best")  # overwriting an existing model swaps it in whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    loaded = load_speech_lm(tmp_path / "best")
    assert not loaded.training
    with torch.inference_mode():
        assert torch.equal(model(input_ids=sample_ids()).logits, loaded(input_ids=sample_ids()).logits)


@pytest.mark.parametrize("tie", [True, False])
def test_init_from_resizes_and_keeps_old_rows(tmp_path, tie):
    torch.manual_seed(0)
    old_vocab = 40
    pretrained = GPT2LMHeadModel(
        GPT2Config(vocab_size=old_vocab, n_positions=64, n_embd=32, n_layer=1, n_head=2, tie_word_embeddings=tie)
    )
    pretrained.save_pretrained(tmp_path / "gpt2-tiny")
    layout = VocabLayout(text_size=30, speech_size=25)  # 60 rows: 20 new
    model = build_speech_lm(SpeechLMConfig(init_from=str(tmp_path / "gpt2-tiny")), layout)
    assert isinstance(model, GPT2LMHeadModel)
    assert model.config.eos_token_id == layout.text_end_id
    for new, old in [
        (model.get_input_embeddings().weight, pretrained.get_input_embeddings().weight),
        (model.get_output_embeddings().weight, pretrained.get_output_embeddings().weight),
    ]:
        assert new.shape == (layout.size, 32)
        assert torch.equal(new[:old_vocab], old)
        # New rows sit near the old rows' mean (within the small noise), not at random.
        assert ((new[old_vocab:] - old.mean(0)).abs() <= 0.6 * old.std(0)).all()
        assert not torch.equal(new[old_vocab], new[old_vocab + 1])
    assert (model.get_output_embeddings().weight is model.get_input_embeddings().weight) == tie
    # The transformer body is the pretrained one.
    assert torch.equal(model.transformer.h[0].attn.c_attn.weight, pretrained.transformer.h[0].attn.c_attn.weight)
    assert model(input_ids=torch.tensor([[1, 50, 59, 2]])).logits.shape == (1, 4, layout.size)
