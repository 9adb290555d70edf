"""The label side of the downstream tasks: intent labels as per-head class ids (IC, ER) and the character-and-tag
vocabulary of slot filling (SF), with the exact encodings SUPERB's heads and toolkit.scoring.slu expect.

- `IntentLabels` maps `utt2intent` labels ('|'-joined slots) to per-head class ids and back: Fluent Speech Commands
  has three heads (action, object, location), emotion recognition one.
- `SlotVocab` turns `text.slots` lines (`set an alarm for B-time seven thirty E-time`) into CTC targets where every
  `B-<type>` / `E-<type>` is one token, attached to its word without a space token as s3prl's
  CharacterTextSlotEncoder does, and decodes ids back to the whitespace-normalised tagged line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from toolkit.fileio import atomic_write


def _normalise_label(label: str) -> list[str]:
    # The same field split as toolkit.scoring.slu.intent_fields: '|' slots, inner whitespace collapsed.
    return [" ".join(f.split()) for f in label.split("|")]


@dataclass(frozen=True)
class IntentLabels:
    """Class names per head. One head `intent` over whole labels, or one head per '|' field (FSC's slots)."""

    classes: dict[str, tuple[str, ...]]  # head name -> sorted class names
    split_fields: bool  # labels are '|' fields, one per head in order

    @classmethod
    def from_labels(cls, labels: Iterable[str], names: Sequence[str] | None = None) -> IntentLabels:
        """`names` given: one head per '|' field (every label must have that many fields); else one head."""
        values: dict[str, set[str]] = {}
        head_names = list(names) if names else ["intent"]
        if len(set(head_names)) != len(head_names):
            raise ValueError(f"head names must differ, got {head_names}")
        for name in head_names:
            values[name] = set()
        for label in labels:
            for name, value in zip(head_names, _fields(label, head_names if names else None, ""), strict=True):
                values[name].add(value)
        if not any(values.values()):
            raise ValueError("no labels to build the classes from")
        return cls({name: tuple(sorted(v)) for name, v in values.items()}, bool(names))

    @property
    def num_classes(self) -> dict[str, int]:
        return {name: len(values) for name, values in self.classes.items()}

    def encode(self, label: str, where: str = "") -> list[int]:
        """Class ids, one per head; `where` (an utterance id) names the label in errors."""
        fields = _fields(label, list(self.classes) if self.split_fields else None, where)
        ids = []
        for (name, values), value in zip(self.classes.items(), fields, strict=True):
            index = _class_index(values, value)
            if index is None:
                prefix = f"{where}: " if where else ""
                raise ValueError(f"{prefix}{name} {value!r} of intent {label!r} is not among the {len(values)} known")
            ids.append(index)
        return ids

    def encode_batch(self, labels: Sequence[str], ids: Sequence[str] | None = None) -> torch.Tensor:
        return torch.tensor([self.encode(x, ids[i] if ids else "") for i, x in enumerate(labels)], dtype=torch.long)

    def decode(self, ids: Sequence[int]) -> str:
        return "|".join(values[int(i)] for values, i in zip(self.classes.values(), ids, strict=True))


def _fields(label: str, names: Sequence[str] | None, where: str) -> list[str]:
    fields = _normalise_label(label)
    if names is None:
        return ["|".join(fields)]
    if len(fields) != len(names):
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}intent {label!r} has {len(fields)} '|' fields, expected {len(names)} ({names})")
    return fields


def _class_index(values: tuple[str, ...], value: str) -> int | None:
    i = bisect.bisect_left(values, value)  # values are sorted
    return i if i < len(values) and values[i] == value else None


# ---------------------------------------------------------------------------------------------------------------
# Slot filling (SF)

BLANK, UNK, SPACE = "<blank>", "<unk>", "<space>"
SPECIALS = (BLANK, UNK, SPACE)  # ids 0, 1, 2
TAG = re.compile(r"^[BE]-\S+$")  # a slot tag word, as toolkit.scoring.slu reads them


@dataclass(frozen=True)
class SlotVocab:
    """CTC vocabulary: 0 blank, 1 unknown, 2 space, then characters, then `B-<type>` / `E-<type>` tags."""

    tokens: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"a slot vocabulary starts with {', '.join(SPECIALS)}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a slot vocabulary lists every token once")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> SlotVocab:
        """Every character of the words and every tag of `text.slots` lines (sorted: characters, then tags)."""
        chars: set[str] = set()
        tags: set[str] = set()
        for line in lines:
            for word in line.split():
                if TAG.match(word):
                    tags.add(word)
                else:
                    chars.update(word)
        return cls(SPECIALS + tuple(sorted(chars)) + tuple(sorted(tags)))

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def blank_id(self) -> int:
        return 0

    def token_id(self, token: str) -> int:
        return self._index.get(token, 1)

    def encode(self, line: str) -> list[int]:
        """CTC target ids of a tagged line; unseen characters or tags become <unk>.

        Words are separated by one space token; a `B-` tag goes after the space before its first word and an `E-` tag
        right after its last word, so `x E-a B-b y` is `x E-a <space> B-b y` (s3prl's CharacterTextSlotEncoder).
        """
        ids: list[int] = []
        space_due = False  # a word was written and no space followed it yet
        for word in line.split():
            if TAG.match(word):
                if word.startswith("B-") and space_due:
                    ids.append(2)
                    space_due = False
                ids.append(self.token_id(word))
            else:
                if space_due:
                    ids.append(2)
                ids.extend(self.token_id(c) for c in word)
                space_due = True
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The tagged line (tags as whitespace-separated words, whitespace collapsed) of collapsed CTC ids."""
        pieces = []
        for i in ids:
            i = int(i)
            if i == 0:
                continue
            token = self.tokens[i]
            pieces.append(" " if i == 2 else f" {token} " if TAG.match(token) else token)
        return " ".join("".join(pieces).split())

    def save(self, path: str | Path) -> None:
        """One token per line (the space token as <space>)."""
        with atomic_write(path) as f:
            f.writelines(f"{t}\n" for t in self.tokens)

    @classmethod
    def load(cls, path: str | Path) -> SlotVocab:
        tokens = Path(path).read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        try:
            return cls(tuple(tokens))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
