"""Build one split of the embedded corpus: plan it from (split, seed), synthesise a shard, write a Kaldi data dir.

Planning covers the whole split and is cheap (no audio), so any shard of it is the same as the corresponding part of
an unsharded run: utterance i belongs to shard (i % num_shards) + 1. Everything about utterance i (its sentence,
voice jitter, gain, padding, noise) comes from a generator seeded by (split, seed, i), so the corpus of N utterances
is a prefix of the corpus of N + M.

Each shard writes its own data dir (run shards into different out_dirs, then combine them), with
    wav/<spk>/<uttid>.wav  16-bit PCM mono at `sample_rate`
    wav.scp text utt2spk spk2utt utt2dur utt2intent text.slots spk2voice phone_ali
phone_ali holds one espeak phoneme mnemonic per 10 ms frame (stress marks removed, pauses as `sil`).
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from toolkit.fileio import write_table
from toolkit.synth.espeak import Synthesis, Voice, synthesize
from toolkit.synth.grammar import Utterance, generate
from toolkit.synth.resample import SincResampler
from toolkit.synth.speakers import SPLITS, Speaker, split_speakers

FRAME_RATE = 100  # phone_ali frames per second
SILENCE = "sil"


@dataclass(frozen=True)
class PlannedUtterance:
    """Everything needed to render one utterance; `voice` is the speaker's voice with a small per-utterance jitter."""

    utt_id: str
    index: int
    speaker: Speaker
    voice: Voice
    sentence: Utterance
    seed: int  # espeak's and the noise generator's seed
    peak: float  # the waveform is scaled to this peak amplitude
    lead: float  # seconds of silence added before the speech
    trail: float  # and after it
    noise_db: float  # noise floor, dB below full scale


def _jitter(voice: Voice, rng: random.Random) -> Voice:
    # Small enough to keep the speaker recognisable, large enough that no two utterances are timed identically.
    return Voice(
        base=voice.base,
        variant=voice.variant,
        rate=min(450, max(80, voice.rate + rng.randint(-10, 10))),
        pitch=min(99, max(0, voice.pitch + rng.randint(-4, 4))),
        pitch_range=voice.pitch_range,
        word_gap=voice.word_gap,
    )


# How many times a sentence is redrawn before a repeat is accepted anyway (with `max_repeats`). The grammar has
# hundreds of thousands of sentences: planning 30,000 distinct training sentences took at most 12 redraws.
MAX_REDRAWS = 50


def _draw_sentence(rng: random.Random, counts: dict[str, int], max_repeats: int) -> Utterance:
    # The redraws come from the utterance's own generator, so the plan stays a function of (split, seed, index) and
    # of the sentences planned before it: a corpus of N utterances is still a prefix of one of N + M.
    sentence = generate(rng)
    if max_repeats > 0:
        for _ in range(MAX_REDRAWS):
            if counts.get(sentence.text, 0) < max_repeats:
                break
            sentence = generate(rng)
    counts[sentence.text] = counts.get(sentence.text, 0) + 1
    return sentence


def plan_split(
    split: str, num_utts: int, seed: int, max_repeats: int = 0, num_speakers: int | None = None
) -> list[PlannedUtterance]:
    """Deterministically plan `num_utts` utterances of `split` (sentences, speakers, voices, levels).

    `num_speakers` uses only the first speakers of the split's table (`split_speakers`); None: all of them. With 48
    the training split is the one of the corpus before the second group of training speakers, utterance for utterance.

    `max_repeats` > 0 redraws a sentence already planned that many times (1: every sentence distinct, as far as
    MAX_REDRAWS draws allow); 0 keeps the grammar's own distribution, where short commands and chat repeat (15,000
    draws give about 12,000 distinct sentences).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if num_utts < 1:
        raise ValueError(f"num_utts must be at least 1, got {num_utts}")
    if max_repeats < 0:
        raise ValueError(f"max_repeats must be 0 (no limit) or more, got {max_repeats}")
    speakers = split_speakers(split, num_speakers)
    # Round-robin over a seeded order of speakers: every speaker gets num_utts / len(speakers) utterances (+-1).
    random.Random(f"{split}/{seed}/speakers").shuffle(speakers)
    plan = []
    counts: dict[str, int] = {}
    for index in range(num_utts):
        rng = random.Random(f"{split}/{seed}/{index}")
        speaker = speakers[index % len(speakers)]
        plan.append(
            PlannedUtterance(
                utt_id=f"{speaker.id}-{index:06d}",
                index=index,
                speaker=speaker,
                sentence=_draw_sentence(rng, counts, max_repeats),
                voice=_jitter(speaker.voice, rng),
                seed=rng.getrandbits(31),
                peak=rng.uniform(0.4, 0.9),
                lead=rng.uniform(0.05, 0.25),
                trail=rng.uniform(0.05, 0.25),
                noise_db=rng.uniform(60.0, 72.0),
            )
        )
    return plan


def shard_plan(plan: list[PlannedUtterance], shard: int, num_shards: int) -> list[PlannedUtterance]:
    """The utterances of shard `shard` (1-based) of `num_shards`: every index with index % num_shards == shard - 1."""
    if num_shards < 1 or not 1 <= shard <= num_shards:
        raise ValueError(f"shard must be in 1..num_shards, got shard={shard} num_shards={num_shards}")
    return [p for p in plan if p.index % num_shards == shard - 1]


@lru_cache(maxsize=4)
def _resampler(orig: int, new: int) -> SincResampler:
    # Built once: torchaudio's functional.resample rebuilds its filter on every call, which costs far more than the
    # filtering itself for short utterances.
    return SincResampler(orig, new)


def normalize_phone(mnemonic: str) -> str:
    """espeak mnemonic -> phone_ali label: stress marks (' ,) dropped, pauses (`_`, `_:`, `_!`...) -> sil."""
    phone = mnemonic.lstrip("',")
    return SILENCE if not phone or phone.startswith("_") else phone


def num_frames(num_samples: int, sample_rate: int) -> int:
    """round(duration * 100), rounding halves up, in integers so that no float error can shift a frame."""
    return (2 * num_samples * FRAME_RATE + sample_rate) // (2 * sample_rate)


def frame_phones(synthesis: Synthesis, lead: float, frames: int) -> list[str]:
    """The phone at the centre of each 10 ms frame of a waveform that starts with `lead` s of added silence."""
    centres = (np.arange(frames) + 0.5) / FRAME_RATE
    if not synthesis.phones:
        return [SILENCE] * frames
    starts = lead + np.array([p.start for p in synthesis.phones]) / synthesis.sample_rate
    labels = [normalize_phone(p.phone) for p in synthesis.phones]
    speech_end = lead + synthesis.duration
    which = np.searchsorted(starts, centres, side="right") - 1
    return [
        labels[k] if k >= 0 and centre < speech_end else SILENCE
        for k, centre in zip(which.tolist(), centres.tolist(), strict=True)
    ]


def render(utt: PlannedUtterance, sample_rate: int) -> tuple[np.ndarray, list[str]]:
    """Synthesise one planned utterance: int16 samples at `sample_rate` and its frame-level phone labels."""
    synthesis = synthesize(utt.sentence.speech, utt.voice, seed=utt.seed)
    native = synthesis.sample_rate
    padded = np.concatenate(
        [
            np.zeros(round(utt.lead * native), dtype=np.float32),
            synthesis.samples,
            np.zeros(round(utt.trail * native), dtype=np.float32),
        ]
    )
    wave = _resampler(native, sample_rate)(padded) if sample_rate != native else padded
    samples = wave.astype(np.float64)
    peak = float(np.abs(samples).max())
    if peak > 0:
        samples *= utt.peak / peak
    # A faint noise floor: real recordings are never digital zero, and log-energy features dislike exact zeros.
    noise = np.random.default_rng(utt.seed).standard_normal(len(samples))
    samples += noise * 10 ** (-utt.noise_db / 20)
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    lead = round(utt.lead * native) / native
    return pcm, frame_phones(synthesis, lead, num_frames(len(pcm), sample_rate))


def _write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        soundfile.write(tmp, pcm, sample_rate, format="WAV", subtype="PCM_16")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def synthesize_split(
    out_dir: str | Path,
    split: str,
    num_utts: int,
    seed: int,
    shard: int = 1,
    num_shards: int = 1,
    sample_rate: int = 16000,
    progress: bool = True,
    max_repeats: int = 0,
    num_speakers: int | None = None,
) -> None:
    """Synthesise shard `shard` of `num_shards` of the planned split into the Kaldi data dir `out_dir`."""
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    todo = shard_plan(plan_split(split, num_utts, seed, max_repeats, num_speakers), shard, num_shards)
    out = Path(out_dir).resolve()
    tables: dict[str, dict[str, str]] = {
        name: {} for name in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent", "text.slots", "phone_ali")
    }
    spk2utt: dict[str, list[str]] = {}
    spk2voice: dict[str, str] = {}
    desc = f"synth {split}" + (f" {shard}/{num_shards}" if num_shards > 1 else "")
    for utt in tqdm(todo, desc=desc, unit="utt", file=sys.stderr, disable=not progress):
        pcm, phones = render(utt, sample_rate)
        wav_path = out / "wav" / utt.speaker.id / f"{utt.utt_id}.wav"
        _write_wav(wav_path, pcm, sample_rate)
        tables["wav.scp"][utt.utt_id] = str(wav_path)
        tables["text"][utt.utt_id] = utt.sentence.text
        tables["utt2spk"][utt.utt_id] = utt.speaker.id
        tables["utt2dur"][utt.utt_id] = f"{len(pcm) / sample_rate:.3f}"
        tables["utt2intent"][utt.utt_id] = utt.sentence.intent
        tables["text.slots"][utt.utt_id] = utt.sentence.slots
        tables["phone_ali"][utt.utt_id] = " ".join(phones)
        spk2utt.setdefault(utt.speaker.id, []).append(utt.utt_id)
        spk2voice[utt.speaker.id] = utt.speaker.voice.describe()
    for name, table in tables.items():
        write_table(out / name, table)
    write_table(out / "spk2utt", {spk: " ".join(sorted(utts)) for spk, utts in spk2utt.items()})
    write_table(out / "spk2voice", spk2voice)
