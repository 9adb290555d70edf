"""The shared vocabulary of the speech-text LM: special tokens, then the text block, then the speech block.

    ids 0 .. S-1              special tokens (pad, bos, speech_end, text_end, mask)
    ids S .. S+T-1            text tokens (the text tokenizer's ids + S)
    ids S+T .. S+T+K-1        speech tokens, the "speech sub-vocabulary" of size K (unit or unit-subword ids + S+T)

One sequence per utterance: [<bos>] x_1..x_m <speech_end> y_1..y_n <text_end>. The layout is saved as JSON beside
the model, so decoding and scoring never guess how ids were assigned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.fileio import atomic_write

SPECIAL_TOKENS = ("<pad>", "<bos>", "<speech_end>", "<text_end>", "<mask>")


@dataclass(frozen=True)
class VocabLayout:
    text_size: int
    speech_size: int
    special: tuple[str, ...] = field(default=SPECIAL_TOKENS)

    def __post_init__(self):
        if self.text_size < 1 or self.speech_size < 1:
            raise ValueError(f"text_size and speech_size must be >= 1, got {self.text_size}, {self.speech_size}")
        missing = [t for t in SPECIAL_TOKENS if t not in self.special]
        if missing:
            raise ValueError(f"special tokens {missing} are missing from the layout")

    def special_id(self, token: str) -> int:
        return self.special.index(token)

    @property
    def pad_id(self) -> int:
        return self.special_id("<pad>")

    @property
    def bos_id(self) -> int:
        return self.special_id("<bos>")

    @property
    def speech_end_id(self) -> int:
        return self.special_id("<speech_end>")

    @property
    def text_end_id(self) -> int:
        return self.special_id("<text_end>")

    @property
    def mask_id(self) -> int:
        return self.special_id("<mask>")

    @property
    def text_offset(self) -> int:
        return len(self.special)

    @property
    def speech_offset(self) -> int:
        return self.text_offset + self.text_size

    @property
    def size(self) -> int:
        return self.speech_offset + self.speech_size

    def text_ids(self, tokens: list[int]) -> list[int]:
        """Text tokenizer ids -> vocabulary ids."""
        bad = [t for t in tokens if not 0 <= t < self.text_size]
        if bad:
            raise ValueError(f"text token ids {bad[:5]} are outside 0..{self.text_size - 1}")
        return [t + self.text_offset for t in tokens]

    def speech_ids(self, tokens: list[int]) -> list[int]:
        """Speech token ids (units or unit subwords, 0..K-1) -> vocabulary ids."""
        bad = [t for t in tokens if not 0 <= t < self.speech_size]
        if bad:
            raise ValueError(f"speech token ids {bad[:5]} are outside 0..{self.speech_size - 1}")
        return [t + self.speech_offset for t in tokens]

    def is_speech(self, vocab_id: int) -> bool:
        return self.speech_offset <= vocab_id < self.size

    def is_text(self, vocab_id: int) -> bool:
        return self.text_offset <= vocab_id < self.speech_offset

    def save(self, path: str | Path) -> None:
        with atomic_write(path) as f:
            json.dump({**asdict(self), "special": list(self.special)}, f, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> VocabLayout:
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} does not exist: run the tokenizer stage first") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a valid vocabulary file ({e}); rerun the tokenizer stage") from None
        try:
            layout = cls(text_size=raw["text_size"], speech_size=raw["speech_size"], special=tuple(raw["special"]))
        except (KeyError, TypeError) as e:
            raise ValueError(
                f"{path}: not a vocabulary layout (missing or malformed {e}); rerun the tokenizer stage"
            ) from None
        if not (isinstance(layout.text_size, int) and isinstance(layout.speech_size, int)):
            raise ValueError(f"{path}: text_size and speech_size must be whole numbers")
        return layout
