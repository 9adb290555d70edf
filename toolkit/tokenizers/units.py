"""Speech units -> speech tokens 0..K-1: optional removal of repeats, optional unit subwords.

Plain units: speech token = unit id, K = num_units.

Unit subwords (the SLD release's scheme): every unit u becomes the character chr(UNIT_CHAR_OFFSET + u), an
utterance becomes one string, and a SentencePiece unigram model trained over those strings segments it into pieces;
the piece ids are the speech tokens and K is the number of pieces. Details we fix:

- The characters are CJK Unified Ideographs (U+4E00..U+9FFF): one contiguous block of 20,992 assigned letters, none of
  them whitespace, control, combining, a digit or changed by normalization, so SentencePiece never splits, drops or
  rewrites a unit. (The Basic Multilingual Plane's Private Use Area would only allow 6,400 units.)
- SentencePiece's whitespace, script and number splitting is off and no "▁" prefix is added: an utterance is a
  single unbroken string. Its training limit on sentence length (4192 bytes, i.e. ~1400 units) is raised to the
  longest utterance so long utterances are not silently skipped.
- Every unit 0..num_units-1 is a piece, including units that never occur in the training data (they are added as
  user-defined single-character pieces), so encode never needs <unk>.
- SentencePiece insists on an <unk> piece; it is speech token 0. encode never produces it (out-of-range units are an
  error instead), so it is one unused row of the speech block; K counts it.

A trained unit tokenizer is a directory: config.yaml (the resolved UnitTokenizerConfig, num_units filled in) and,
with subwords, spm.model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import sentencepiece as spm

from toolkit.config import load_config, save_config
from toolkit.fileio import TableError, atomic_write, iter_table
from toolkit.tokenizers.text import subsample, train_sentencepiece

UNIT_CHAR_OFFSET = 0x4E00  # first CJK Unified Ideograph
MAX_SUBWORD_UNITS = 0x9FFF - UNIT_CHAR_OFFSET + 1  # 20,992: the end of that block
MAX_PIECE_LENGTH_LIMIT = 512  # SentencePiece refuses a larger max_sentencepiece_length


@dataclass
class UnitTokenizerConfig:
    """How speech units become speech tokens.

    num_units:           size of the unit inventory (e.g. the k-means K); None: 1 + the largest unit in training.
    dedup:               remove consecutive repeats (u u u v -> u v) before anything else. The release keeps them.
    subwords:            segment unit strings with a SentencePiece unigram model (the release: 6000 pieces).
    vocab_size:          (subwords) number of pieces K, including <unk>; must be >= num_units + 1.
    max_piece_length:    (subwords) longest piece in units (SentencePiece's max_sentencepiece_length).
    hard_vocab_limit:    (subwords) false: vocab_size is an upper bound instead of an exact size.
    input_sentence_size: (subwords) train on at most this many utterances, drawn with `seed` (0: all).
    seed:                seed of that draw.
    num_threads:         SentencePiece training threads; 1 keeps the model identical on every machine.
    """

    num_units: int | None = None
    dedup: bool = False
    subwords: bool = False
    vocab_size: int = 6000
    max_piece_length: int = 16
    hard_vocab_limit: bool = True
    input_sentence_size: int = 0
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self):
        if self.num_units is not None and self.num_units < 1:
            raise ValueError(f"num_units must be >= 1, got {self.num_units}")
        if self.subwords and self.num_units is not None and self.num_units > MAX_SUBWORD_UNITS:
            raise ValueError(f"unit subwords support at most {MAX_SUBWORD_UNITS} units, got num_units={self.num_units}")
        if not 1 <= self.max_piece_length <= MAX_PIECE_LENGTH_LIMIT:
            raise ValueError(f"max_piece_length must be in 1..{MAX_PIECE_LENGTH_LIMIT}, got {self.max_piece_length}")
        if self.vocab_size < 2 or self.input_sentence_size < 0 or self.num_threads < 1:
            raise ValueError("vocab_size must be >= 2, input_sentence_size >= 0 and num_threads >= 1")


def dedup(units: Sequence[int]) -> list[int]:
    """Remove consecutive repeats: [5, 5, 7, 7, 7, 5] -> [5, 7, 5]."""
    return [u for u, _ in itertools.groupby(units)]


def units_to_string(units: Sequence[int]) -> str:
    return "".join([chr(UNIT_CHAR_OFFSET + u) for u in units])


def string_to_units(text: str) -> list[int]:
    return [ord(c) - UNIT_CHAR_OFFSET for c in text]


def read_units(path: str | Path, num_units: int | None = None) -> Iterator[tuple[int, str, list[int]]]:
    """Yield (line number, uttid, units) from a units file (`uttid u1 u2 ...`); an id alone is an empty utterance.

    Non-integer or negative units, and (when num_units is given) units >= num_units, raise TableError.
    """
    for lineno, uttid, value in iter_table(path, allow_empty_value=True):
        fields = value.split()
        try:
            units = [int(u) for u in fields]
        except ValueError:
            raise TableError(
                path, lineno, f"'{uttid}': unit '{_first_non_integer(fields)}' is not an integer"
            ) from None
        if units and (min(units) < 0 or (num_units is not None and max(units) >= num_units)):
            bad_unit = min(units) if min(units) < 0 else max(units)
            limit = f"0..{num_units - 1}" if num_units is not None else ">= 0"
            raise TableError(path, lineno, f"'{uttid}': unit {bad_unit} is outside {limit}")
        yield lineno, uttid, units


def _first_non_integer(fields: list[str]) -> str:
    for field in fields:
        try:
            int(field)
        except ValueError:
            return field
    return ""


class UnitTokenizer:
    """Unit sequences -> speech tokens 0..speech_size-1."""

    def __init__(self, config: UnitTokenizerConfig, model: bytes | None = None):
        if config.num_units is None:
            raise ValueError("a unit tokenizer needs a resolved num_units")
        if config.subwords != (model is not None):
            raise ValueError("a SentencePiece model is needed exactly when subwords is on")
        self.config = config
        self.num_units = config.num_units
        self._model = model
        self._sp = spm.SentencePieceProcessor(model_proto=model) if model is not None else None
        # The units each piece stands for, so decode is a table lookup; None for <unk>.
        self._piece_units: list[list[int] | None] = []
        if self._sp is not None:
            for i in range(self._sp.get_piece_size()):
                self._piece_units.append(None if self._sp.is_unknown(i) else string_to_units(self._sp.id_to_piece(i)))

    @property
    def speech_size(self) -> int:
        """K, the size of the speech block."""
        return len(self._piece_units) if self._sp is not None else self.num_units

    @property
    def unk_id(self) -> int | None:
        """Speech token 0 with subwords (never produced by encode); None without."""
        return 0 if self._sp is not None else None

    def check(self, units: Sequence[int]) -> None:
        if units and (min(units) < 0 or max(units) >= self.num_units):
            bad = min(units) if min(units) < 0 else max(units)
            raise ValueError(f"unit {bad} is outside 0..{self.num_units - 1} (num_units={self.num_units})")

    def prepare(self, units: Sequence[int]) -> list[int]:
        """The unit sequence the tokens stand for: checked, and without repeats when dedup is on."""
        self.check(units)
        return dedup(units) if self.config.dedup else list(units)

    def encode(self, units: Sequence[int]) -> list[int]:
        return self.encode_batch([units])[0]

    def encode_batch(self, sequences: Sequence[Sequence[int]]) -> list[list[int]]:
        prepared = [self.prepare(units) for units in sequences]
        if self._sp is None:
            return prepared
        # One call for the whole batch: SentencePiece segments the strings in C++ without the per-call overhead.
        return self._sp.encode([units_to_string(u) for u in prepared], out_type=int)

    def decode(self, tokens: Sequence[int]) -> list[int]:
        """Speech tokens -> the unit sequence (after dedup, if on) they stand for."""
        if self._sp is None:
            self.check(tokens)
            return list(tokens)
        units: list[int] = []
        for t in tokens:
            piece = self._piece_units[t] if 0 <= t < len(self._piece_units) else None
            if piece is None:
                raise ValueError(f"speech token {t} is not a unit piece (0 is <unk>; K={self.speech_size})")
            units.extend(piece)
        return units

    def save(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        if self._model is not None:
            with atomic_write(out_dir / "spm.model", "wb") as f:
                f.write(self._model)
        save_config(self.config, out_dir / "config.yaml")

    @classmethod
    def load(cls, out_dir: str | Path) -> UnitTokenizer:
        out_dir = Path(out_dir)
        config = load_config(UnitTokenizerConfig, out_dir / "config.yaml")
        model = (out_dir / "spm.model").read_bytes() if config.subwords else None
        return cls(config, model)


def train_unit_tokenizer(
    unit_seqs: Sequence[Sequence[int]], out_dir: str | Path, config: UnitTokenizerConfig
) -> UnitTokenizer:
    """Resolve num_units, train the unit subword model if asked, save to out_dir and return the tokenizer."""
    seqs = [s for s in unit_seqs if len(s)]
    if not seqs:
        raise ValueError("unit tokenizer: no non-empty unit sequences")
    largest = max(max(s) for s in seqs)
    if min(min(s) for s in seqs) < 0:
        raise ValueError("unit tokenizer: negative unit ids")
    if config.num_units is not None and largest >= config.num_units:
        raise ValueError(f"units.num_units={config.num_units} but the training units go up to {largest}")
    # replace() reruns the checks, including the subword limit on the inferred num_units.
    config = replace(config, num_units=config.num_units or largest + 1)
    model = _train_subwords(seqs, config) if config.subwords else None
    tokenizer = UnitTokenizer(config, model)
    tokenizer.save(out_dir)
    return tokenizer


def _train_subwords(seqs: list[Sequence[int]], config: UnitTokenizerConfig) -> bytes:
    assert config.num_units is not None
    if config.vocab_size < config.num_units + 1:
        raise ValueError(
            f"units.vocab_size={config.vocab_size} is smaller than num_units + 1 = {config.num_units + 1} "
            "(every unit is a piece, plus <unk>)"
        )
    seqs = subsample(seqs, config.input_sentence_size, config.seed)
    strings = [units_to_string(dedup(s) if config.dedup else s) for s in seqs]
    seen = set().union(*(set(s) for s in strings))
    unseen = [chr(UNIT_CHAR_OFFSET + u) for u in range(config.num_units) if chr(UNIT_CHAR_OFFSET + u) not in seen]
    return train_sentencepiece(
        strings,
        "units.vocab_size",
        model_type="unigram",
        vocab_size=config.vocab_size,
        hard_vocab_limit=config.hard_vocab_limit,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        split_by_whitespace=False,
        split_by_unicode_script=False,
        split_by_number=False,
        max_sentencepiece_length=config.max_piece_length,
        user_defined_symbols=unseen,
        num_threads=config.num_threads,
    )
