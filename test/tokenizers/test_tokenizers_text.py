"""Text tokenizers: round trips, id ranges, <unk>, determinism and clear errors for impossible sizes."""

from __future__ import annotations

import random

import pytest

from toolkit.tokenizers.text import TextTokenizer, TextTokenizerConfig, train_text_tokenizer

WORDS = (
    "turn on off the light lights in kitchen bedroom set alarm alarms for seven eleven twenty play some music please "
    "what is weather today tomorrow morning evening find film times frozen train now remind me to call mother at noon"
).split()


def corpus(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n)]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip_and_range(tmp_path, model_type):
    texts = corpus()
    config = TextTokenizerConfig(kind="sentencepiece", model_type=model_type, vocab_size=60)
    tok = train_text_tokenizer(texts, tmp_path / "tok", config)
    assert tok.size == 60
    for text in texts[:50]:
        ids = tok.encode(text)
        assert ids and all(0 < i < tok.size for i in ids)  # 0 is <unk>, absent from in-vocabulary text
        assert tok.decode(ids) == text
    loaded = TextTokenizer.load(tmp_path / "tok")
    assert loaded.config == config
    assert loaded.encode_batch(texts[:20]) == tok.encode_batch(texts[:20])
    # The only special inside 0..size-1 is <unk> (id 0): unseen characters map to it, no bos/eos/pad is added.
    assert 0 in tok.encode("turn ž on")
    assert len(tok.encode("on")) <= 2


def test_sentencepiece_is_deterministic(tmp_path):
    texts = corpus(300)
    config = TextTokenizerConfig(vocab_size=50, input_sentence_size=150, seed=3)
    train_text_tokenizer(texts, tmp_path / "a", config)
    train_text_tokenizer(texts, tmp_path / "b", config)
    assert (tmp_path / "a" / "spm.model").read_bytes() == (tmp_path / "b" / "spm.model").read_bytes()
    assert (tmp_path / "a" / "config.yaml").read_text() == (tmp_path / "b" / "config.yaml").read_text()


def test_char_round_trip_and_unk(tmp_path):
    texts = corpus(50)
    tok = train_text_tokenizer(texts, tmp_path / "tok", TextTokenizerConfig(kind="char"))
    tokens = (tmp_path / "tok" / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<unk>", "<space>"]
    assert tok.size == len(tokens) == 2 + len(set("".join(texts).replace(" ", "")))
    ids = tok.encode("  turn   on\tthe light ")
    assert all(0 < i < tok.size for i in ids) and ids.count(1) == 3  # three word boundaries
    assert tok.decode(ids) == "turn on the light"
    assert tok.encode("qx") == [0, 0]
    loaded = TextTokenizer.load(tmp_path / "tok")
    assert loaded.encode(texts[0]) == tok.encode(texts[0]) and loaded.decode(tok.encode(texts[0])) == texts[0]


def test_decode_rejects_out_of_range_ids(tmp_path):
    tok = train_text_tokenizer(corpus(20), tmp_path / "tok", TextTokenizerConfig(kind="char"))
    with pytest.raises(ValueError, match="outside 0"):
        tok.decode([tok.size])


def test_impossible_vocab_sizes_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"text.vocab_size=5000: SentencePiece found only \d+ useful pieces"):
        train_text_tokenizer(corpus(50), tmp_path / "big", TextTokenizerConfig(vocab_size=5000))
    with pytest.raises(ValueError, match=r"text.vocab_size=5 is smaller than the \d+ pieces"):
        train_text_tokenizer(corpus(50), tmp_path / "small", TextTokenizerConfig(vocab_size=5))
    soft = TextTokenizerConfig(vocab_size=5000, hard_vocab_limit=False)
    assert train_text_tokenizer(corpus(50), tmp_path / "soft", soft).size < 5000


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        TextTokenizerConfig(kind="word")
    with pytest.raises(ValueError, match="model_type must be one of"):
        TextTokenizerConfig(model_type="char")
    with pytest.raises(ValueError, match="no non-empty training transcripts"):
        train_text_tokenizer(["", "  "], tmp_path / "tok", TextTokenizerConfig())
