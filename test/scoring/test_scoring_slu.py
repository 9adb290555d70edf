"""Intent accuracy and SUPERB-style slot-filling metrics on hand-made examples."""

from __future__ import annotations

import json
import logging

import pytest

from toolkit.scoring.slu import (
    compute_slots,
    parse_slots,
    score_ic,
    score_intents,
    score_sf,
    slot_edit_counts,
    slot_type_f1,
    slot_value_pairs,
    strip_tags,
)

INTENT_REF = {
    "u1": "activate|lights|kitchen",
    "u2": "decrease|heat|none",
    "u3": "bring|shoes|none",
    "u4": "change language|none|none",
}


def test_intent_accuracy_with_one_slot_wrong():
    hyp = dict(INTENT_REF, u1="activate|lights|bedroom")  # only the location of u1 is wrong
    s = score_intents(INTENT_REF, hyp, ["action", "object", "location"])
    # 3 of 4 labels match exactly; per slot only location misses once.
    assert (s["accuracy"], s["n_correct"], s["n_utt"]) == (75.0, 3, 4)
    assert (s["acc_action"], s["acc_object"], s["acc_location"]) == (100.0, 100.0, 75.0)


def test_intent_missing_and_short_hypotheses(caplog):
    hyp = {"u1": "activate|lights", "u2": "decrease|heat|none", "u3": "bring|shoes|none"}
    with caplog.at_level(logging.WARNING):
        s = score_intents(INTENT_REF, hyp)
    # u1 lacks its third field and u4 has no hypothesis: 2 of 4 right; slot3 right for u2, u3 only.
    assert (s["accuracy"], s["n_missing_hyp"]) == (50.0, 1)
    assert (s["acc_slot1"], s["acc_slot2"], s["acc_slot3"]) == (75.0, 75.0, 50.0)
    assert "'u4'" in caplog.text


def test_intent_per_slot_needs_equal_field_counts(tmp_path):
    s = score_ic({"a": "x|y", "b": "z"}, {"a": "x|y", "b": "z"}, tmp_path)
    assert s["accuracy"] == 100.0 and not any(k.startswith("acc_") for k in s)
    with pytest.raises(ValueError, match="2 slot names given but the intent labels have 3"):
        score_intents(INTENT_REF, INTENT_REF, ["a", "b"])
    with pytest.raises(ValueError, match="'zz'"):
        score_intents(INTENT_REF, {"zz": "a|b|c"})


def test_ic_writes_score_and_errors(tmp_path):
    score_ic(INTENT_REF, dict(INTENT_REF, u2="increase|heat|none"), tmp_path)
    assert json.loads((tmp_path / "score.json").read_text())["accuracy"] == 75.0
    assert (tmp_path / "intents.txt").read_text() == "u2\tref=decrease|heat|none\thyp=increase|heat|none\n"


def test_parse_slots():
    text = "set  an alarm for B-time seven thirty E-time B-date today E-date"
    assert parse_slots(text) == [("time", "seven thirty"), ("date", "today")]
    # The closing tag must name the same type; as in s3prl's metric it matches as a prefix: E-timezone closes B-time.
    assert parse_slots("B-time seven E-date") == []
    assert parse_slots("B-time seven E-timezone") == [("time", "seven")]
    # Stray tags inside a hypothesis value are dropped from the value.
    assert parse_slots("B-time seven E-date thirty E-time", clean_values=True) == [("time", "seven thirty")]
    assert strip_tags("set B-time seven E-time now") == "set seven now"


def test_slot_type_f1_by_hand():
    assert slot_type_f1([], []) == 1.0
    assert slot_type_f1([("a", "x")], []) == 0.0
    assert slot_type_f1([], [("a", "x")]) == 0.0
    # ref types {artist, service}, hyp {artist, app}: P = 1/2, R = 1/2, F1 = 1/2.
    assert slot_type_f1([("artist", "x"), ("service", "y")], [("artist", "z"), ("app", "y")]) == 0.5
    # Sets, not lists: ref {time} vs hyp {time, date}: P = 1/2, R = 1 -> F1 = 2/3.
    assert slot_type_f1([("time", "a"), ("time", "b")], [("time", "a"), ("date", "c")]) == pytest.approx(2 / 3)


def test_slot_value_picks_lowest_cer():
    # "five pm" vs "noon": 7 chars, 5 edits at best; vs "five am": 1 substitution. The second is chosen.
    pairs = slot_value_pairs([("time", "five pm"), ("date", "today")], [("time", "noon"), ("time", "five am")])
    assert pairs == [("time", "five pm", "five am"), ("date", "today", "")]


def test_slot_edit_counts_by_hand():
    ref = [("time", "seven"), ("date", "today")]
    hyp = [("time", "seven"), ("date", "tomorrow"), ("place", "home")]
    # Over ref types: time TP; date FN (today) + FP (tomorrow). Full also charges place as FP.
    assert slot_edit_counts(ref, hyp, full=False) == (1, 1, 1)
    assert slot_edit_counts(ref, hyp, full=True) == (1, 2, 1)


# Four utterances for the corpus-level numbers:
#   a  ref time=seven thirty               hyp time=seven thirteen
#   b  ref artist=the beatles, service=spotify   hyp artist=beatles, app=spotify
#   c  ref (no slots)                      hyp x=there
#   d  ref (no slots)                      hyp (no slots)
# Slot-type F1 per utterance: a 1, b 1/2 (see above), c 0, d 1 -> mean 2.5/4 = 62.5%.
# Slot-value CER: a "seven thirty" (12 chars) -> "seven thirteen": y->e, +e, +n = 3 edits;
#   b "the beatles" (11) -> "beatles": 4 deletions ("the "); "spotify" (7) -> "" (no service slot): 7.
#   Total 14 / 30 = 46.6667%.
# Slot-edit: TP 0; FN 3 (every ref value); FP 2 over ref types (thirteen, beatles), 4 in full (+ app, x) -> F1 0.
SF_REF = {
    "a": "set an alarm for B-time seven thirty E-time",
    "b": "play B-artist the beatles E-artist on B-service spotify E-service",
    "c": "hello there",
    "d": "good  morning",
}
SF_HYP = {
    "a": "set an alarm for B-time seven thirteen E-time",
    "b": "play B-artist beatles E-artist on B-app spotify E-app",
    "c": "hello B-x there E-x",
    "d": "good morning",
}


def test_slot_metrics_by_hand():
    s, utts = compute_slots(SF_REF, SF_HYP)
    assert s["slot_type_f1"] == 62.5
    assert (s["slot_value_edits"], s["slot_value_chars"], s["slot_value_cer"]) == (14, 30, pytest.approx(46.6667))
    assert (s["slot_edit_tp"], s["slot_edit_fn"], s["slot_edit_fp"], s["slot_edit_fp_full"]) == (0, 3, 2, 4)
    assert s["slot_edit_f1"] == 0.0 and s["slot_edit_f1_full"] == 0.0
    assert [u.uttid for u in utts] == ["a", "b", "c", "d"]


def test_score_sf_writes_reports_and_transcript_wer(tmp_path, caplog):
    ref = dict(SF_REF, e="B-time now E-time")
    with caplog.at_level(logging.WARNING):
        s = score_sf(ref, SF_HYP, tmp_path)
    # Without tags: a thirty->thirteen (S), b "the" deleted (D), c/d right, e "now" deleted (no hyp).
    # Words: a 6 + b 5 + c 2 + d 2 + e 1 = 16; errors 3 -> WER 18.75%.
    assert (s["task"], s["wer_sub"], s["wer_del"], s["n_words"]) == ("sf", 1, 2, 16)
    assert s["wer"] == 18.75
    assert s["n_missing_hyp"] == 1 and "'e'" in caplog.text
    assert json.loads((tmp_path / "score.json").read_text()) == s
    report = (tmp_path / "slots.txt").read_text()
    assert "value:     time: 'seven thirty' -> 'seven thirteen' (3 char error(s))" in report
    assert "B-" not in (tmp_path / "hyp.trn").read_text()
    assert (tmp_path / "score_wer" / "result.txt").exists()


def test_a_malformed_hypothesis_scores_as_in_s3prl():
    # s3prl reads B-playlist ... E-playlist_owner as the playlist slot "jazz" (its closing tag matches as a prefix):
    # CER 0, type F1 100; a stricter parser would make the value "jazz E-playlist_owner x" (CER 50 after cleaning).
    ref = {"u": "play B-playlist jazz E-playlist"}
    hyp = {"u": "play B-playlist jazz E-playlist_owner x E-playlist"}
    s, _ = compute_slots(ref, hyp)
    assert (s["slot_value_cer"], s["slot_type_f1"], s["slot_edit_f1"]) == (0.0, 100.0, 100.0)


def test_slot_edit_counts_each_reference_value_once_as_s3prl():
    # A repeated reference value is a TP each time one hypothesis value equals it; extra hypothesis values of a
    # reference type are not charged, a miss is one FN and one FP.
    assert slot_edit_counts([("a", "x"), ("a", "x")], [("a", "x")], full=False) == (2, 0, 0)
    assert slot_edit_counts([("a", "x")], [("a", "y"), ("a", "z")], full=False) == (0, 1, 1)
    assert slot_edit_counts([("a", "x")], [("a", "x"), ("a", "y"), ("b", "z")], full=True) == (1, 1, 0)
