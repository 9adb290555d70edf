"""Token tables and sequence layout: vocabulary offsets, mismatch reporting, errors leave no output."""

from __future__ import annotations

import json

import pytest

from toolkit.fileio import TableError, read_table
from toolkit.tokenizers.sequences import Tokenizers, build_sequence, make_sequences, prompt
from toolkit.tokenizers.text import TextTokenizerConfig, train_text_tokenizer
from toolkit.tokenizers.units import UnitTokenizerConfig, train_unit_tokenizer
from toolkit.tokenizers.vocab import VocabLayout


def test_sequence_layout():
    layout = VocabLayout(text_size=10, speech_size=20)  # specials 0..4, text 5..14, speech 15..34
    speech, text = layout.speech_ids([0, 3]), layout.text_ids([0, 2])
    assert speech == [15, 18] and text == [5, 7]
    assert build_sequence(speech, text, layout, use_bos=True) == [1, 15, 18, 2, 5, 7, 3]
    assert build_sequence(speech, text, layout, use_bos=False) == [15, 18, 2, 5, 7, 3]
    assert prompt(speech, layout, use_bos=True) == [1, 15, 18, 2]
    assert prompt(speech, layout, use_bos=False) == [15, 18, 2]
    with pytest.raises(ValueError, match="not in the speech block"):
        prompt([0, 3], layout, use_bos=False)  # tokenizer ids instead of vocabulary ids
    with pytest.raises(ValueError, match="not in the text block"):
        build_sequence(speech, [15], layout, use_bos=False)


@pytest.fixture
def tokenizers(tmp_path) -> Tokenizers:
    text = train_text_tokenizer(["ab ba", "abc"], tmp_path / "tok" / "text", TextTokenizerConfig(kind="char"))
    units = train_unit_tokenizer([[0, 1, 2, 3]], tmp_path / "tok" / "units", UnitTokenizerConfig(dedup=True))
    layout = VocabLayout(text.size, units.speech_size)
    layout.save(tmp_path / "tok" / "vocab.json")
    return Tokenizers(text, units, layout)


def write(path, content: str):
    path.write_text(content, encoding="utf-8")
    return path


def test_make_sequences_reports_and_skips_mismatches(tmp_path, tokenizers, caplog):
    units = write(tmp_path / "units", "u1 0 0 1 1 1 3\nu2 2\nu3 1 2\nu5 1\nu6\n")
    text = write(tmp_path / "text", "u1 ab c\nu2 bad\nu4 a\nu5 \nu6 a\n")
    stats = make_sequences(units, text, tokenizers, tmp_path / "out")
    layout = tokenizers.layout  # text: <unk> <space> a b c (5), speech: 4 units; offsets 5 and 10
    assert read_table(tmp_path / "out" / "speech") == {"u1": "10 11 13", "u2": "12"}
    # "bad": b a <unk>(d)
    assert read_table(tmp_path / "out" / "text") == {"u1": "7 8 6 9", "u2": "8 7 5"}
    assert layout.text_offset == 5 and layout.speech_offset == 10
    assert stats == json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["utterances"] == 2 and stats["units"] == 7 and stats["units_removed_by_dedup"] == 3
    assert stats["speech_tokens"] == 4 and stats["mean_speech_tokens"] == 2.0 and stats["mean_text_tokens"] == 3.5
    assert stats["text_unk_tokens"] == 1
    assert stats["skipped"] == {
        "no_text": {"count": 1, "first": ["u3"]},
        "no_units": {"count": 1, "first": ["u4"]},
        "empty": {"count": 2, "first": ["u5", "u6"]},
        "no_text_tokens": {"count": 0, "first": []},
    }
    assert f"1 utterances are in {units} but not in {text}; skipped (first: u3)" in caplog.text
    assert f"1 utterances are in {text} but not in {units}; skipped (first: u4)" in caplog.text


def test_make_sequences_errors_leave_no_output(tmp_path, tokenizers):
    text = write(tmp_path / "text", "u1 a\nu2 b\n")
    out = tmp_path / "out"
    cases = [
        ("u1 0 1\nu2 0 7\n", TableError, r":2: 'u2': unit 7 is outside 0..3"),
        ("u1 0 1\nu1 2\n", TableError, r":2: duplicate utterance 'u1' \(first on line 1\)"),
        ("x1 0 1\n", ValueError, "no utterance has both units and a transcript"),
    ]
    for content, error, message in cases:
        units = write(tmp_path / "units", content)
        with pytest.raises(error, match=message):
            make_sequences(units, text, tokenizers, out)
        assert not out.exists()


def test_tokenizers_load_checks_the_layout(tmp_path, tokenizers):
    assert Tokenizers.load(tmp_path / "tok").layout == tokenizers.layout
    VocabLayout(tokenizers.text.size + 1, tokenizers.units.speech_size).save(tmp_path / "tok" / "vocab.json")
    with pytest.raises(ValueError, match="does not match the tokenizers"):
        Tokenizers.load(tmp_path / "tok")


def test_a_text_tokenizer_that_gives_no_tokens_is_refused(tmp_path, tokenizers, monkeypatch, caplog):
    # Training on such sequences asks the LM for <text_end> alone: loss 0 over no text, then nan. Stage 6 must stop.
    units = write(tmp_path / "units", "u1 0 1\nu2 2\n")
    text = write(tmp_path / "text", "u1 ab\nu2 ba\n")
    monkeypatch.setattr(tokenizers.text, "encode_batch", lambda texts: [[] for _ in texts])
    with pytest.raises(ValueError, match=r"text: the text tokenizer gives no tokens for any transcript \(e.g. 'u1'"):
        make_sequences(units, text, tokenizers, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    real = type(tokenizers.text).encode_batch.__get__(tokenizers.text)
    monkeypatch.setattr(
        tokenizers.text, "encode_batch", lambda texts: [[] if t == "ba" else real([t])[0] for t in texts]
    )
    stats = make_sequences(units, text, tokenizers, tmp_path / "out")
    assert stats["utterances"] == 1 and stats["skipped"]["no_text_tokens"] == {"count": 1, "first": ["u2"]}
    assert "1 utterances have a transcript the text tokenizer turns into no tokens; skipped (first: u2)" in caplog.text
