"""A pretrained LM's own tokenizer as the text tokenizer, and a speech-text LM that keeps that LM's text rows."""

from __future__ import annotations

import os

import pytest
import torch

from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.text import TextTokenizer, TextTokenizerConfig, train_text_tokenizer
from toolkit.tokenizers.vocab import VocabLayout

os.environ["HF_HUB_OFFLINE"] = "1"
TEXTS = ["TURN ON THE LIGHT", "SET AN ALARM FOR SEVEN", "WHAT IS THE WEATHER LIKE", "play some music now"]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A byte-level BPE tokenizer and a GPT-2 of its vocabulary, saved like a hub checkpoint."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    folder = tmp_path_factory.mktemp("gpt2-tiny")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS * 5, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    end = "<|endoftext|>"
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=end, eos_token=end, unk_token=end)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_the_pretrained_tokenizer_round_trips_and_reloads_offline(tiny_gpt2, tmp_path):
    config = TextTokenizerConfig(kind="pretrained", pretrained=str(tiny_gpt2))
    tokenizer = train_text_tokenizer(TEXTS, tmp_path / "text", config)
    reloaded = TextTokenizer.load(tmp_path / "text")
    assert (tmp_path / "text" / "pretrained").is_dir()  # a copy: no hub access when decoding later
    for text in TEXTS:
        ids = reloaded.encode(text)
        assert ids == tokenizer.encode(text) and all(0 <= i < reloaded.size for i in ids)
        assert reloaded.decode(ids) == text
    assert reloaded.size == tokenizer.size and reloaded.unk_id not in reloaded.encode(TEXTS[0])


def test_init_text_rows_gives_each_text_token_its_pretrained_row(tiny_gpt2, tmp_path):
    from transformers import AutoModelForCausalLM

    pretrained = AutoModelForCausalLM.from_pretrained(tiny_gpt2).get_input_embeddings().weight
    tokenizer = train_text_tokenizer(
        TEXTS, tmp_path / "text", TextTokenizerConfig(kind="pretrained", pretrained=str(tiny_gpt2))
    )
    layout = VocabLayout(text_size=tokenizer.size, speech_size=7)
    torch.manual_seed(0)
    model = build_speech_lm(SpeechLMConfig(init_from=str(tiny_gpt2), init_text_rows=True), layout)
    rows = model.get_input_embeddings().weight
    start = layout.text_offset
    assert rows.shape[0] == layout.size
    assert torch.equal(rows[start : start + tokenizer.size], pretrained)
    # specials and speech tokens are new rows, none of them a copy of a pretrained one
    for i in [*range(start), *range(start + tokenizer.size, layout.size)]:
        assert not any(torch.equal(rows[i], p) for p in pretrained)
    # without the option the old rows stay at the first ids (the previous behaviour)
    plain = build_speech_lm(SpeechLMConfig(init_from=str(tiny_gpt2)), layout).get_input_embeddings().weight
    assert torch.equal(plain[: tokenizer.size], pretrained)


def test_bad_configs_are_clear_errors(tiny_gpt2):
    with pytest.raises(ValueError, match="kind pretrained needs `pretrained`"):
        TextTokenizerConfig(kind="pretrained")
    with pytest.raises(ValueError, match="init_text_rows needs model.init_from"):
        SpeechLMConfig(init_text_rows=True)
    with pytest.raises(ValueError, match="larger than the pretrained model"):
        build_speech_lm(
            SpeechLMConfig(init_from=str(tiny_gpt2), init_text_rows=True), VocabLayout(text_size=5000, speech_size=3)
        )
    with pytest.raises(ValueError, match="cannot load the tokenizer"):
        train_text_tokenizer(
            TEXTS, tiny_gpt2 / "nowhere", TextTokenizerConfig(kind="pretrained", pretrained=str(tiny_gpt2 / "missing"))
        )
