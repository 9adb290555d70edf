"""Default speaker table: size, ids, speaker-disjoint splits and held-out accents."""

import re

import pytest

from toolkit.synth.espeak import list_variants, synthesize
from toolkit.synth.speakers import TEST_HELDOUT_BASE, default_speakers, split_speakers


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
