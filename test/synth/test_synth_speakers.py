"""Default speaker table: size, ids, speaker-disjoint splits and held-out accents."""

import re

import pytest

from toolkit.synth.espeak import Voice, list_variants, synthesize
from toolkit.synth.speakers import (
    DEV_VARIANTS,
    MORE_TRAIN_VARIANTS,
    TEST_HELDOUT_BASE,
    TEST_VARIANTS,
    TRAIN_VARIANTS,
    default_speakers,
    split_speakers,
)


def test_ids_are_unique_kaldi_prefixes():
    speakers = default_speakers()
    ids = [s.id for s in speakers]
    assert len(speakers) >= 40
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"spk\d{3}", i) for i in ids)
    assert ids == sorted(ids)


def test_splits_are_speaker_disjoint_with_held_out_accents():
    train, dev, test = (split_speakers(s) for s in ("train", "dev", "test"))
    assert len(train) >= 32 and len(dev) >= 4 and len(test) >= 4
    train_voices = {s.voice for s in train}
    for other in (dev, test):
        assert not {s.id for s in other} & {s.id for s in train}
        assert not {s.voice for s in other} & train_voices
        assert {s.voice.base for s in other} - {s.voice.base for s in train}, "needs an accent unseen in train"
    assert TEST_HELDOUT_BASE in {s.voice.base for s in test}
    assert TEST_HELDOUT_BASE not in {s.voice.base for s in train}
    assert not {s.id for s in dev} & {s.id for s in test}


def test_table_is_deterministic():
    assert default_speakers() == default_speakers()


def test_every_default_voice_synthesises():
    variants = set(list_variants())
    for speaker in default_speakers():
        assert speaker.voice.variant in variants
        assert synthesize("ok", speaker.voice).duration > 0.1


def test_unknown_split():
    with pytest.raises(ValueError, match="bogus"):
        split_speakers("bogus")


def test_dev_and_test_voices_are_fixed():
    # The second group of training speakers was appended to the table; the held-out voices must not move, or every
    # earlier dev/test result would stop being comparable. Values as written in data/test/spk2voice.
    test = {s.id: s.voice for s in split_speakers("test")}
    assert test["spk057"] == Voice("en-gb-scotland", "m3", rate=145, pitch=69, pitch_range=55, word_gap=0)
    assert test["spk066"] == Voice("en-us-nyc", "m8", rate=195, pitch=47, pitch_range=76, word_gap=0)
    assert [s.id for s in split_speakers("dev")] == [f"spk{i:03d}" for i in range(49, 57)]


def test_two_groups_of_training_speakers():
    train = split_speakers("train")
    first = split_speakers("train", limit=48)
    assert first == train[:48]
    assert [s.id for s in first] == [f"spk{i:03d}" for i in range(1, 49)]
    assert {s.voice.variant for s in first} <= set(TRAIN_VARIANTS)
    assert {s.voice.variant for s in train[48:]} <= set(MORE_TRAIN_VARIANTS)
    assert len({s.voice.variant for s in train}) == len(TRAIN_VARIANTS) + len(MORE_TRAIN_VARIANTS)
    # The dev/test timbres stay unheard in training.
    assert not {s.voice.variant for s in train} & (set(DEV_VARIANTS) | set(TEST_VARIANTS))


@pytest.mark.parametrize("limit", [0, 97])
def test_speaker_limit_out_of_range(limit: int):
    with pytest.raises(ValueError, match="96 speakers"):
        split_speakers("train", limit=limit)
