"""Text tokenizers: trained on the training transcripts (SentencePiece unigram or BPE, or characters), or the
tokenizer of a pretrained language model (kind "pretrained").

Token ids are 0..size-1. For the trained kinds id 0 is always `<unk>` and there are no bos/eos/pad ids in this
range, because the shared vocabulary (`vocab.py`) owns those specials. A pretrained tokenizer keeps its own ids (so
that a speech-text LM initialised from the same model can keep its text embedding rows: `init_text_rows` in
toolkit/models/speech_lm.py); its special tokens are never produced from plain text. A tokenizer is a directory:

    config.yaml     the TextTokenizerConfig it was trained with
    spm.model       (kind sentencepiece) the SentencePiece model
    tokens.txt      (kind char) one token per line, line i = id i: <unk>, <space>, then the characters
    pretrained/     (kind pretrained) the transformers tokenizer, saved with save_pretrained (no hub access later)

Training is deterministic: the same transcripts and config give the same model bytes (see `train_sentencepiece`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from toolkit.config import load_config, save_config
from toolkit.fileio import atomic_write

TEXT_KINDS = ("sentencepiece", "char", "pretrained")
MODEL_TYPES = ("unigram", "bpe")
UNK = "<unk>"
# The char tokenizer's word boundary. Every other char token is one character, so this can never collide.
SPACE = "<space>"
# What decode() writes for <unk>: SentencePiece's own default surface, used for both kinds so they read alike.
UNK_SURFACE = " \u2047 "
# SentencePiece skips (with only a log line) any training sentence longer than this many bytes; we raise the limit
# to the longest sentence instead, so nothing is silently left out.
SPM_DEFAULT_MAX_SENTENCE_BYTES = 4192


@dataclass
class TextTokenizerConfig:
    """How to build the text tokenizer.

    kind:                "sentencepiece", "char" (characters plus <space>; ignores the sentencepiece-only keys) or
                         "pretrained" (the tokenizer named by `pretrained`; nothing is trained).
    pretrained:          kind pretrained: a transformers tokenizer, hub name or folder (e.g. gpt2-medium, the SLD
                         release's initial LM), loaded with AutoTokenizer.
    model_type:          "unigram" or "bpe" (sentencepiece).
    vocab_size:          number of ids including <unk> (sentencepiece); too large for the data is an error.
    character_coverage:  share of characters SentencePiece must cover; 1.0 keeps every character (small corpora).
    normalization:       SentencePiece normalization rule: "nmt_nfkc" (its default), "nfkc", "identity", ...
    input_sentence_size: train on at most this many transcripts, drawn with `seed` (0: all of them).
    seed:                seed of that draw.
    num_threads:         SentencePiece training threads. The model depends on the thread count (the expected
                         counts are summed per thread in float), so 1 keeps it identical on every machine.
    hard_vocab_limit:    false: vocab_size is an upper bound (SentencePiece may find fewer useful pieces).
    """

    kind: str = "sentencepiece"
    model_type: str = "unigram"
    vocab_size: int = 256
    character_coverage: float = 1.0
    normalization: str = "nmt_nfkc"
    input_sentence_size: int = 0
    seed: int = 0
    num_threads: int = 1
    hard_vocab_limit: bool = True
    pretrained: str | None = None

    def __post_init__(self):
        if self.kind not in TEXT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(TEXT_KINDS)}, got '{self.kind}'")
        if (self.kind == "pretrained") != bool(self.pretrained):
            raise ValueError("kind pretrained needs `pretrained` (a tokenizer's hub name or folder), and only it")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got '{self.model_type}'")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if not 0 < self.character_coverage <= 1:
            raise ValueError(f"character_coverage must be in (0, 1], got {self.character_coverage}")
        if self.input_sentence_size < 0 or self.num_threads < 1:
            raise ValueError("input_sentence_size must be >= 0 and num_threads >= 1")


def subsample(items: Sequence, size: int, seed: int) -> list:
    """At most `size` items (all when size is 0), drawn with `seed` and kept in their original order.

    Done here rather than by SentencePiece's own shuffling so the draw does not depend on its global RNG state.
    """
    if size == 0 or len(items) <= size:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), size))
    return [items[i] for i in keep]


def train_sentencepiece(sentences: Sequence[str], what: str, **options) -> bytes:
    """Train a SentencePiece model in memory and return its bytes; also used by the unit tokenizer.

    Only <unk> (id 0) is kept among SentencePiece's specials. The model is written through `model_writer`, so no
    file path ends up inside it and two runs on the same input give identical bytes. SentencePiece's errors about
    the vocabulary size become ValueErrors that name `what` (e.g. "text.vocab_size") and the usable range.
    """
    if not sentences:
        raise ValueError(f"{what}: no training sentences")
    longest = max(len(s.encode("utf-8")) for s in sentences)
    model = _BytesSink()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=max(SPM_DEFAULT_MAX_SENTENCE_BYTES, longest + 1),
            minloglevel=2,
            **options,
        )
    except RuntimeError as e:
        raise ValueError(_explain_spm_error(str(e), what, options.get("vocab_size"))) from None
    return model.data


def _explain_spm_error(message: str, what: str, vocab_size: int | None) -> str:
    too_high = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if too_high:
        section = what.split(".")[0]
        return (
            f"{what}={too_high.group(1)}: SentencePiece found only {too_high.group(2)} useful pieces in this "
            f"training data; ask for at most that many, or set {section}.hard_vocab_limit=false to accept fewer"
        )
    too_low = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", message)
    if too_low:
        return (
            f"{what}={too_low.group(1)} is smaller than the {too_low.group(2)} pieces every character "
            f"(plus <unk>) needs; use at least {too_low.group(2)}"
        )
    return f"{what}={vocab_size}: SentencePiece training failed: {message.splitlines()[-1]}"


class _BytesSink:
    """The `model_writer` SentencePiece calls with the serialized model."""

    def __init__(self):
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _SentencePieceCodec:
    def __init__(self, model: bytes):
        self.model = model
        self.sp = spm.SentencePieceProcessor(model_proto=model)

    @property
    def size(self) -> int:
        return self.sp.get_piece_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, out_type=int)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def save(self, out_dir: Path) -> None:
        with atomic_write(out_dir / "spm.model", "wb") as f:
            f.write(self.model)


class _CharCodec:
    """Characters of the whitespace-split words, with <space> between words.

    decode(encode(t)) == " ".join(t.split()) when every character of t was seen in training.
    """

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [UNK, SPACE]:
            raise ValueError(f"a char vocabulary must start with {UNK} and {SPACE}, got {tokens[:2]}")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def train(cls, texts: Sequence[str]) -> _CharCodec:
        chars = sorted({c for text in texts for c in text if not c.isspace()})
        return cls([UNK, SPACE, *chars])

    @property
    def size(self) -> int:
        return len(self.tokens)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self._encode(text) for text in texts]

    def _encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in text.split():
            if ids:
                ids.append(1)  # <space>
            ids.extend(self.index.get(c, 0) for c in word)
        return ids

    def decode(self, ids: list[int]) -> str:
        surface = {0: UNK_SURFACE, 1: " "}
        return "".join(surface.get(i) or self.tokens[i] for i in ids)

    def save(self, out_dir: Path) -> None:
        with atomic_write(out_dir / "tokens.txt") as f:
            f.writelines(f"{t}\n" for t in self.tokens)

    @classmethod
    def load(cls, out_dir: Path) -> _CharCodec:
        with open(out_dir / "tokens.txt", encoding="utf-8") as f:
            return cls([line.rstrip("\n") for line in f])


class _PretrainedCodec:
    """A transformers tokenizer used as it is: its ids, no special tokens added."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, name: str | Path) -> _PretrainedCodec:
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(str(name)))
        except OSError as e:  # not a folder, not cached while offline, no such repo
            raise ValueError(f"text.pretrained={name}: cannot load the tokenizer ({e})") from None

    @property
    def size(self) -> int:
        return len(self.tokenizer)

    @property
    def unk_id(self) -> int:
        unk = self.tokenizer.unk_token_id
        return -1 if unk is None else int(unk)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def save(self, out_dir: Path) -> None:
        self.tokenizer.save_pretrained(out_dir / "pretrained")


class TextTokenizer:
    """Transcript <-> text token ids 0..size-1 (<unk> = 0 for the trained kinds)."""

    def __init__(self, config: TextTokenizerConfig, codec: _SentencePieceCodec | _CharCodec | _PretrainedCodec):
        self.config = config
        self._codec = codec

    @property
    def size(self) -> int:
        return self._codec.size

    @property
    def unk_id(self) -> int:
        """The id of unknown text (-1 when a pretrained tokenizer has none: byte-level BPE covers everything)."""
        return self._codec.unk_id if isinstance(self._codec, _PretrainedCodec) else 0

    def encode(self, text: str) -> list[int]:
        return self._codec.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._codec.encode_batch(texts)

    def decode(self, ids: list[int]) -> str:
        bad = [i for i in ids if not 0 <= i < self.size]
        if bad:
            raise ValueError(f"text token ids {bad[:5]} are outside 0..{self.size - 1}")
        return self._codec.decode(list(ids))

    def save(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        self._codec.save(out_dir)
        save_config(self.config, out_dir / "config.yaml")

    @classmethod
    def load(cls, out_dir: str | Path) -> TextTokenizer:
        out_dir = Path(out_dir)
        config = load_config(TextTokenizerConfig, out_dir / "config.yaml")
        if config.kind == "char":
            return cls(config, _CharCodec.load(out_dir))
        if config.kind == "pretrained":
            return cls(config, _PretrainedCodec.load(out_dir / "pretrained"))
        return cls(config, _SentencePieceCodec((out_dir / "spm.model").read_bytes()))


def train_text_tokenizer(texts: Sequence[str], out_dir: str | Path, config: TextTokenizerConfig) -> TextTokenizer:
    """Train on the transcripts (empty ones are ignored), save to out_dir and return the tokenizer."""
    texts = subsample([t for t in texts if t.strip()], config.input_sentence_size, config.seed)
    if not texts:
        raise ValueError("text tokenizer: no non-empty training transcripts")
    if config.kind == "char":
        codec: _SentencePieceCodec | _CharCodec | _PretrainedCodec = _CharCodec.train(texts)
    elif config.kind == "pretrained":
        codec = _PretrainedCodec.load(config.pretrained)
    else:
        model = train_sentencepiece(
            texts,
            "text.vocab_size",
            model_type=config.model_type,
            vocab_size=config.vocab_size,
            character_coverage=config.character_coverage,
            normalization_rule_name=config.normalization,
            hard_vocab_limit=config.hard_vocab_limit,
            num_threads=config.num_threads,
        )
        codec = _SentencePieceCodec(model)
    tokenizer = TextTokenizer(config, codec)
    tokenizer.save(out_dir)
    return tokenizer
