"""WER/CER on examples small enough to count by hand, and the sclite-style files they produce."""

from __future__ import annotations

import json
import logging

import pytest

from toolkit.scoring.asr import compute_asr, normalize_text, score_asr, speaker_of, trn_line

# Three utterances, counted by hand:
#   s1-u1  ref "a b c d"   hyp "a x c d e"  words: 3 hits, b->x (S), e inserted (I)     N=4
#   s1-u2  ref "e f g"     hyp "e g"        words: 2 hits, f deleted (D)                N=3
#   s2-u3  ref "h i"       hyp "h i"        words: 2 hits                               N=2
# Words: N=9, S=1 D=1 I=1 -> WER 3/9 = 33.3333%; 2 of 3 sentences wrong -> S.Err 66.6667%; Corr 7/9 = 77.8%.
# Chars (spaces count): u1 "a b c d" (7) vs "a x c d e": b->x (S), " e" inserted (2 I)  -> 3
#                       u2 "e f g" (5)   vs "e g":       "f " deleted (2 D)             -> 2
#                       u3 "h i" (3)     correct
# Chars: N=15, S=1 D=2 I=2 -> CER 5/15 = 33.3333%.
REF = {"s1-u1": "a b c d", "s1-u2": "e f g", "s2-u3": "h i"}
HYP = {"s1-u1": "a x c d e", "s1-u2": "e g", "s2-u3": "h i"}


def test_counts_by_hand(tmp_path):
    s = score_asr(REF, HYP, tmp_path)
    assert (s["n_utt"], s["n_words"], s["n_chars"]) == (3, 9, 15)
    assert (s["wer_hits"], s["wer_sub"], s["wer_del"], s["wer_ins"]) == (7, 1, 1, 1)
    assert s["wer"] == pytest.approx(33.3333)
    assert s["sent_err"] == pytest.approx(66.6667)
    assert (s["cer_sub"], s["cer_del"], s["cer_ins"]) == (1, 2, 2)
    assert s["cer"] == pytest.approx(33.3333)
    assert json.loads((tmp_path / "score.json").read_text()) == s


def test_cer_counts_spaces_as_characters():
    # "ab cd" (5 chars) vs "abcd": only the space is deleted -> CER 1/5; WER is 2 errors over 2 words.
    r = compute_asr({"u": "ab cd"}, {"u": "abcd"})
    assert r.totals("char").dele == 1 and r.totals("char").n_ref == 5
    assert r.totals("word").error_rate == pytest.approx(100.0)


def test_trn_lines(tmp_path):
    score_asr({"spkA-1": "hello world", "x2": "yes"}, {"spkA-1": "hello", "x2": ""}, tmp_path)
    # ESPnet's `paste` layout: text, tab, (spk-uttid); the speaker falls back to the id prefix, then the id.
    assert (tmp_path / "ref.trn").read_text() == "hello world\t(spkA-spkA-1)\nyes\t(x2-x2)\n"
    assert (tmp_path / "hyp.trn").read_text() == "hello\t(spkA-spkA-1)\n\t(x2-x2)\n"
    assert trn_line("a b", "s", "u") == "a b\t(s-u)\n"


def test_speaker_from_utt2spk(tmp_path):
    score_asr({"u1": "a"}, {"u1": "a"}, tmp_path, utt2spk={"u1": "alice"})
    assert (tmp_path / "ref.trn").read_text() == "a\t(alice-u1)\n"
    assert speaker_of("-odd") == "-odd"
    with pytest.raises(ValueError, match="no speaker for utterance 'u2'"):
        speaker_of("u2", {"u1": "alice"})


def _row(text: str, name: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {name} "))
    return line.replace("|", " ").split()


def test_result_txt_summary_and_alignment(tmp_path):
    score_asr(REF, HYP, tmp_path)
    wer = (tmp_path / "score_wer" / "result.txt").read_text()
    # Sum/Avg: 3 sentences, 9 words; Corr 7/9, Sub 1/9, Del 1/9, Ins 1/9, Err 3/9, S.Err 2/3.
    assert _row(wer, "Sum/Avg") == ["Sum/Avg", "3", "9", "77.8", "11.1", "11.1", "11.1", "33.3", "66.7"]
    # Speaker s1 has u1+u2: N=7, S=1 D=1 I=1 -> Err 3/7 = 42.9, both sentences wrong.
    assert _row(wer, "s1") == ["s1", "2", "7", "71.4", "14.3", "14.3", "14.3", "42.9", "100.0"]
    assert _row(wer, "s2") == ["s2", "1", "2", "100.0", "0.0", "0.0", "0.0", "0.0", "0.0"]
    assert "| SPKR    | # Snt # Wrd |" in wer
    assert "REF:  a B c d ***\nHYP:  a X c d E\nEval:   S     I\n" in wer
    assert "REF:  e F   g\nHYP:  e *** g\nEval:   D\n" in wer

    cer = (tmp_path / "score_cer" / "result.txt").read_text()
    assert "# Chr" in cer
    # Chars: Corr = 15 - S - D = 12 -> 80.0; Sub 1/15, Del 2/15, Ins 2/15, Err 5/15.
    assert _row(cer, "Sum/Avg") == ["Sum/Avg", "3", "15", "80.0", "6.7", "13.3", "13.3", "33.3", "66.7"]
    assert "<space>" in cer


def test_missing_hypothesis_is_all_deletions(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        s = score_asr({"u1": "a b", "u2": "c d e"}, {"u1": "a b"}, tmp_path)
    # u2's three words are deleted: WER 3/5 = 60%.
    assert (s["wer_del"], s["wer"], s["n_missing_hyp"]) == (3, 60.0, 1)
    assert "1 of 2 utterance(s) have no hypothesis" in caplog.text and "'u2'" in caplog.text


def test_unknown_hypothesis_id_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not in the reference: 'zz'"):
        score_asr({"u1": "a"}, {"u1": "a", "zz": "b"}, tmp_path)
    assert not (tmp_path / "score.json").exists()


def test_empty_reference_is_skipped(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        s = score_asr({"u1": "a", "u2": ""}, {"u1": "a", "u2": "junk"}, tmp_path)
    assert (s["n_utt"], s["n_empty_ref"], s["wer"]) == (1, 1, 0.0)
    assert "empty reference: 'u2'" in caplog.text
    with pytest.raises(ValueError, match="nothing to score"):
        score_asr({"u1": " "}, {}, tmp_path)


def test_normalisation_is_off_by_default(tmp_path):
    ref, hyp = {"u": "Hello, World!"}, {"u": "hello world"}
    assert score_asr(ref, hyp, tmp_path)["wer"] == 100.0
    s = score_asr(ref, hyp, tmp_path, lowercase=True, strip_punct=True)
    assert (s["wer"], s["lowercase"], s["strip_punct"]) == (0.0, True, True)
    assert normalize_text("  Don't   stop. ", lowercase=True, strip_punct=True) == "dont stop"
