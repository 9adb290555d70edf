"""Grammar: transcripts, intents and slot tags; vocabulary size and length range over a planned corpus."""

import random
import re
from collections import Counter

import pytest

from toolkit.synth.grammar import MAX_WORDS, MIN_WORDS, generate, generate_many
from toolkit.synth.numbers import number_words, ordinal_words


@pytest.fixture(scope="module")
def corpus():
    return generate_many(4000, seed=11)


def test_numbers_are_spelled_out():
    assert number_words(0) == "zero"
    assert number_words(42) == "forty two"
    assert number_words(105) == "one hundred and five"
    assert ordinal_words(21) == "twenty first"
    assert ordinal_words(30) == "thirtieth"
    with pytest.raises(ValueError):
        number_words(1000)


def test_vocabulary_and_lengths(corpus):
    words = Counter(w for u in corpus for w in u.text.split())
    lengths = [len(u.text.split()) for u in corpus]
    assert len(words) >= 400
    assert min(lengths) == MIN_WORDS and max(lengths) == MAX_WORDS
    assert len(set(lengths)) == MAX_WORDS - MIN_WORDS + 1
    assert all(re.fullmatch(r"[a-z]+", w) for w in words), "lower-case words only, no digits or punctuation"


def test_speech_is_the_transcript_with_punctuation(corpus):
    for u in corpus:
        assert re.sub(r"[,.?!]", " ", u.speech).split() == u.text.split()


def test_intents(corpus):
    intents = Counter(u.intent for u in corpus)
    fsc = [i for i in intents if "|" in i]
    assert all(re.fullmatch(r"[a-z_]+\|[a-z_]+\|[a-z_]+", i) for i in fsc)
    assert {"activate|lights|kitchen", "increase|heat|none", "change_language|none|none"} <= set(fsc)
    assert {"set_alarm", "get_weather", "play_music", "chat"} <= set(intents)
    assert all(re.fullmatch(r"[a-z_|]+", i) for i in intents)


def test_slot_tags_are_balanced_and_strip_to_the_transcript(corpus):
    tagged = 0
    for u in corpus:
        tokens = u.slots.split()
        open_slot = None
        plain = []
        for token in tokens:
            if token.startswith("B-"):
                assert open_slot is None, u.slots
                open_slot = token[2:]
            elif token.startswith("E-"):
                assert token[2:] == open_slot, u.slots
                open_slot = None
            else:
                plain.append(token)
        assert open_slot is None, u.slots
        assert " ".join(plain) == u.text
        tagged += "B-" in u.slots
        if "|" in u.intent or u.intent == "chat":
            assert u.slots == u.text
    assert tagged > len(corpus) // 4
    examples = {u.slots for u in corpus}
    assert any(re.search(r"B-time [a-z ]+ E-time", s) for s in examples)


def test_deterministic_and_no_global_random_state():
    random.seed(123)
    state = random.getstate()
    first = generate_many(300, seed=5)
    assert random.getstate() == state
    assert first == generate_many(300, seed=5)
    assert first != generate_many(300, seed=6)
    rng = random.Random(9)
    assert [generate(rng) for _ in range(5)] == generate_many(5, seed=9)
