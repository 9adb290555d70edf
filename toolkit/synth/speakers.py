"""The default speakers of the embedded corpus: espeak base voices x variants x prosody, split speaker-disjointly.

Held-out conditions make dev/test measure generalisation, not memorisation of voices:
- every dev/test speaker is new (never in train);
- each of dev and test has a base voice (accent) that no train speaker uses (dev: en-gb-x-gbcwmd, test:
  en-gb-scotland);
- the dev/test speakers on train accents use variants (timbres) that train never uses.
The table is fixed (seeded by a constant), so a speaker id means the same voice in every corpus built with it.

Training has two groups of speakers: the first 48 (spk001-048) on TRAIN_VARIANTS, and 48 more (spk067-114) on
MORE_TRAIN_VARIANTS, other timbres (formant and pitch settings) of espeak-ng. The second group was added after the
dev/test speakers (spk049-066), so their voices did not change. `split_speakers("train", limit=48)` is the first
group alone; the embedded recipes train on it by default (`local/data.sh --train_speakers 48`), because all 96 did
not lower the test WER (egs/mini_synth/asr1/RESULTS.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from toolkit.synth.espeak import Voice

SPLITS = ("train", "dev", "test")

# Accents (espeak language voices) seen in training.
TRAIN_BASES = ("en-us", "en", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan")
DEV_HELDOUT_BASE = "en-gb-x-gbcwmd"
TEST_HELDOUT_BASE = "en-gb-scotland"

# Timbres (voices/!v variants). Numbered m*/f* variants and the Klatt-synthesiser ones; a few named female variants
# balance the pool. Novelty voices (croak, whisper, robots) are left out on purpose.
TRAIN_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "f1",
    "f2",
    "f3",
    "linda",
    "aunty",
    "klatt",
    "klatt2",
    "klatt3",
)
DEV_VARIANTS = ("m7", "f4", "belinda")
TEST_VARIANTS = ("m8", "f5", "klatt4", "anika")

TRAIN_VARIANTS_PER_BASE = 8  # 6 bases x 8 = 48 train speakers
# More timbres for training: the test error sits on unseen timbres and the unseen accent, and these let training hear
# more timbres (one run with them was not better: RESULTS.md). Human-like variants only (no whisper, robots or the
# extreme child/novelty voices), none of the dev/test ones.
MORE_TRAIN_VARIANTS = (
    "Alex",
    "Andy",
    "Annie",
    "Jacky",
    "Lee",
    "Michael",
    "Gene",
    "Andrea",
    "adam",
    "benjamin",
    "david",
    "edward",
    "iven",
    "max",
    "paul",
    "quincy",
    "rob",
    "steph",
    "travis",
    "klatt5",
    "grandma",
    "grandpa",
)
MORE_TRAIN_VARIANTS_PER_BASE = 8  # 6 bases x 8 = 48 more train speakers
_TABLE_SEED = 20240917  # fixed: changing it changes every default speaker's prosody


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: Kaldi-friendly id (`spk017`), its split and its espeak voice."""

    id: str
    split: str
    voice: Voice


def _prosody(rng: random.Random, base: str, variant: str) -> Voice:
    # Moderate ranges: extreme pitch/rate make espeak sound broken rather than like another person.
    word_gap = rng.choices((0, 1, 2), weights=(6, 3, 1))[0]
    return Voice(
        base=base,
        variant=variant,
        rate=rng.randrange(140, 200, 5),
        pitch=rng.randrange(25, 76),
        pitch_range=rng.randrange(30, 86),
        word_gap=word_gap,
    )


def _voice_plan() -> list[tuple[str, str, str]]:
    """(split, base, variant) for every default speaker, in id order."""
    plan = []
    # Rotate the variant pool across accents so each accent gets a different subset and each variant several accents.
    for b, base in enumerate(TRAIN_BASES):
        for j in range(TRAIN_VARIANTS_PER_BASE):
            plan.append(("train", base, TRAIN_VARIANTS[(3 * b + j) % len(TRAIN_VARIANTS)]))
    # dev: the held-out accent with train and dev timbres, plus train accents with dev-only timbres.
    for variant in ("m2", "f1", "klatt", "m7"):
        plan.append(("dev", DEV_HELDOUT_BASE, variant))
    for base, variant in (("en-us", "m7"), ("en", "f4"), ("en-029", "belinda"), ("en-us-nyc", "f4")):
        plan.append(("dev", base, variant))
    # test: likewise, with its own held-out accent and timbres.
    for variant in ("m3", "f2", "klatt2", "m8", "f5"):
        plan.append(("test", TEST_HELDOUT_BASE, variant))
    for base, variant in (
        ("en-us", "f5"),
        ("en", "m8"),
        ("en-gb-x-rp", "klatt4"),
        ("en-gb-x-gbclan", "anika"),
        ("en-us-nyc", "m8"),
    ):
        plan.append(("test", base, variant))
    # Appended last: the speakers above keep their ids and voices (the prosody comes from one generator in order).
    for b, base in enumerate(TRAIN_BASES):
        for j in range(MORE_TRAIN_VARIANTS_PER_BASE):
            plan.append(("train", base, MORE_TRAIN_VARIANTS[(5 * b + j) % len(MORE_TRAIN_VARIANTS)]))
    return plan


def default_speakers() -> list[Speaker]:
    """All default speakers (114: 96 train, 8 dev, 10 test), ids spk001.. in table order."""
    rng = random.Random(_TABLE_SEED)
    return [
        Speaker(id=f"spk{i:03d}", split=split, voice=_prosody(rng, base, variant))
        for i, (split, base, variant) in enumerate(_voice_plan(), start=1)
    ]


def split_speakers(split: str, limit: int | None = None) -> list[Speaker]:
    """The default speakers of one split (train, dev or test), in table order; the first `limit` of them if given."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    speakers = [s for s in default_speakers() if s.split == split]
    if limit is not None and not 1 <= limit <= len(speakers):
        raise ValueError(f"the {split} split has {len(speakers)} speakers; a limit of {limit} is out of range")
    return speakers[:limit]
