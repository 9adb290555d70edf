"""Speech-unit tokenizer: dedup, plain units, unit subwords (round trip, K, unseen units), errors, determinism."""

from __future__ import annotations

import random

import pytest

from toolkit.fileio import TableError
from toolkit.tokenizers.units import (
    MAX_SUBWORD_UNITS,
    UnitTokenizer,
    UnitTokenizerConfig,
    dedup,
    read_units,
    string_to_units,
    train_unit_tokenizer,
    units_to_string,
)


def random_walk(n_seqs: int, length: int, num_units: int, seed: int = 0, stay: float = 0.7) -> list[list[int]]:
    """Unit sequences with runs (like frame-level k-means labels) and a few recurring patterns worth a piece."""
    rng = random.Random(seed)
    patterns = [[rng.randrange(num_units) for _ in range(4)] for _ in range(8)]
    seqs = []
    for _ in range(n_seqs):
        seq: list[int] = []
        while len(seq) < length:
            if rng.random() < 0.3:
                seq.extend(rng.choice(patterns))
            else:
                u = rng.randrange(num_units)
                seq.append(u)
                while rng.random() < stay:
                    seq.append(u)
        seqs.append(seq[:length])
    return seqs


def test_dedup_and_strings():
    assert dedup([5, 5, 7, 7, 7, 5]) == [5, 7, 5]
    assert dedup([]) == []
    assert string_to_units(units_to_string([0, 3, 20991])) == [0, 3, 20991]
    assert not any(c.isspace() for c in units_to_string(range(MAX_SUBWORD_UNITS)))


def test_plain_units(tmp_path):
    seqs = [[0, 0, 3, 3, 3, 1], [2, 2, 2]]
    tok = train_unit_tokenizer(seqs, tmp_path / "u", UnitTokenizerConfig(dedup=True))
    assert tok.speech_size == tok.num_units == 4  # inferred: 1 + the largest unit
    assert tok.unk_id is None
    assert tok.encode([0, 0, 3, 3, 1]) == [0, 3, 1]
    assert tok.decode([0, 3, 1]) == [0, 3, 1]
    with pytest.raises(ValueError, match=r"unit 4 is outside 0..3"):
        tok.encode([1, 4])
    kept = train_unit_tokenizer(seqs, tmp_path / "k", UnitTokenizerConfig(num_units=10))
    assert kept.speech_size == 10 and kept.encode([0, 0, 9]) == [0, 0, 9]
    loaded = UnitTokenizer.load(tmp_path / "k")
    assert loaded.config == kept.config and not (tmp_path / "k" / "spm.model").exists()


@pytest.mark.parametrize("use_dedup", [True, False])
def test_subword_round_trip_and_k(tmp_path, use_dedup):
    seqs = random_walk(150, 100, num_units=20)
    config = UnitTokenizerConfig(dedup=use_dedup, subwords=True, vocab_size=40, num_units=24)
    tok = train_unit_tokenizer(seqs, tmp_path / "u", config)
    assert tok.speech_size == 40 and tok.unk_id == 0
    tokens = tok.encode_batch(seqs[:30])
    for seq, toks in zip(seqs[:30], tokens, strict=True):
        assert all(0 < t < 40 for t in toks)  # <unk> (0) is never produced
        assert tok.decode(toks) == (dedup(seq) if use_dedup else seq)
    assert sum(map(len, tokens)) < sum(len(dedup(s) if use_dedup else s) for s in seqs[:30])  # pieces span units
    # Units 20..23 never occur in training, yet each is a piece of its own.
    assert tok.decode(tok.encode([21, 23, 0])) == [21, 23, 0]
    with pytest.raises(ValueError, match=r"unit 24 is outside 0..23"):
        tok.encode([24])
    with pytest.raises(ValueError, match="speech token 0 is not a unit piece"):
        tok.decode([0])
    loaded = UnitTokenizer.load(tmp_path / "u")
    assert loaded.speech_size == 40 and loaded.encode_batch(seqs[:30]) == tokens


def test_subwords_are_deterministic(tmp_path):
    seqs = random_walk(100, 80, num_units=16, seed=1)
    config = UnitTokenizerConfig(subwords=True, vocab_size=30, input_sentence_size=60, seed=2)
    train_unit_tokenizer(seqs, tmp_path / "a", config)
    train_unit_tokenizer(seqs, tmp_path / "b", config)
    assert (tmp_path / "a" / "spm.model").read_bytes() == (tmp_path / "b" / "spm.model").read_bytes()


def test_long_utterances_are_not_skipped(tmp_path):
    # 3000 units are 9000 UTF-8 bytes, beyond SentencePiece's default 4192-byte sentence limit.
    seqs = [[i % 7 for i in range(3000)], [(i // 3) % 7 for i in range(3000)]]
    tok = train_unit_tokenizer(seqs, tmp_path / "u", UnitTokenizerConfig(subwords=True, vocab_size=12))
    assert tok.speech_size == 12
    assert tok.decode(tok.encode(seqs[0])) == seqs[0]
    assert len(tok.encode(seqs[0])) < 3000


def test_subword_size_errors(tmp_path):
    seqs = random_walk(40, 50, num_units=10)
    with pytest.raises(ValueError, match=r"units.vocab_size=8 is smaller than num_units \+ 1 = 11"):
        train_unit_tokenizer(seqs, tmp_path / "a", UnitTokenizerConfig(subwords=True, vocab_size=8))
    with pytest.raises(ValueError, match=r"units.vocab_size=5000: SentencePiece found only \d+ useful pieces"):
        train_unit_tokenizer(seqs, tmp_path / "b", UnitTokenizerConfig(subwords=True, vocab_size=5000))
    soft = UnitTokenizerConfig(subwords=True, vocab_size=5000, hard_vocab_limit=False)
    tok = train_unit_tokenizer(seqs, tmp_path / "c", soft)
    assert 11 <= tok.speech_size < 5000
    with pytest.raises(ValueError, match="at most 20992 units"):
        UnitTokenizerConfig(subwords=True, num_units=MAX_SUBWORD_UNITS + 1)
    with pytest.raises(ValueError, match="at most 20992 units"):
        train_unit_tokenizer([[MAX_SUBWORD_UNITS]], tmp_path / "d", UnitTokenizerConfig(subwords=True))
    with pytest.raises(ValueError, match="units.num_units=5 but the training units go up to 9"):
        train_unit_tokenizer(seqs, tmp_path / "e", UnitTokenizerConfig(num_units=5))
    with pytest.raises(ValueError, match="no non-empty unit sequences"):
        train_unit_tokenizer([[]], tmp_path / "f", UnitTokenizerConfig())


def test_read_units(tmp_path):
    path = tmp_path / "units"
    path.write_text("a 1 2 3\nb\n")
    assert list(read_units(path)) == [(1, "a", [1, 2, 3]), (2, "b", [])]
    for content, message in [
        ("a 1 2\nb 1 x\n", "'b': unit 'x' is not an integer"),
        ("a 1 -2\n", "'a': unit -2 is outside >= 0"),
    ]:
        path.write_text(content)
        with pytest.raises(TableError, match=f"^{path}:{content.count(chr(10))}: {message}$"):
            list(read_units(path))
    path.write_text("a 1 2\nb 3 9\n")
    with pytest.raises(TableError, match=f"^{path}:2: 'b': unit 9 is outside 0..7$"):
        list(read_units(path, num_units=8))
