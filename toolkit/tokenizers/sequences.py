"""Token tables for the speech-text LM, and the sequence format built from them.

`make_sequences` turns a units file and a Kaldi text file into, under <out>:

    speech       `uttid id...`  speech-block vocabulary ids (VocabLayout.speech_ids of the speech tokens)
    text         `uttid id...`  text-block vocabulary ids (VocabLayout.text_ids of the text tokens)
    stats.json   counts: utterances, tokens, means, units removed by dedup, <unk> text tokens, skipped utterances

Rows follow the units file's order (stage outputs are sorted by utterance id). An utterance is kept only when it has
both a non-empty unit sequence and a non-empty transcript; the others are counted, their first ids listed, and skipped.

One sequence per utterance is then `[<bos>] speech <speech_end> text <text_end>` (`build_sequence`), and the
inference prompt is `[<bos>] speech <speech_end>` (`prompt`).

A tokenizer directory (written by `python -m toolkit.bin.train_tokenizers`) holds text/ (TextTokenizer),
units/ (UnitTokenizer), vocab.json (VocabLayout) and config.yaml (the resolved config).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.fileio import TableError, atomic_write, read_table
from toolkit.tokenizers.text import TextTokenizer
from toolkit.tokenizers.units import UnitTokenizer, dedup, read_units
from toolkit.tokenizers.vocab import VocabLayout

TEXT_DIR = "text"
UNITS_DIR = "units"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.yaml"
FIRST_IDS_REPORTED = 5  # how many ids a skipped-utterance report lists
BATCH = 256  # utterances tokenized per SentencePiece call: amortizes the call overhead, keeps memory flat

log = logging.getLogger(__name__)


@dataclass
class Tokenizers:
    """The text tokenizer, the unit tokenizer and the vocabulary layout that places both."""

    text: TextTokenizer
    units: UnitTokenizer
    layout: VocabLayout

    def __post_init__(self):
        # A layout from another training run would shift every id silently; refuse it here.
        if (self.layout.text_size, self.layout.speech_size) != (self.text.size, self.units.speech_size):
            raise ValueError(
                f"vocabulary layout (text {self.layout.text_size}, speech {self.layout.speech_size}) does not match "
                f"the tokenizers (text {self.text.size}, speech {self.units.speech_size})"
            )

    @classmethod
    def load(cls, path: str | Path) -> Tokenizers:
        path = Path(path)
        return cls(
            TextTokenizer.load(path / TEXT_DIR),
            UnitTokenizer.load(path / UNITS_DIR),
            VocabLayout.load(path / VOCAB_FILE),
        )


def _check_block(ids: list[int], layout: VocabLayout, speech: bool) -> None:
    inside = layout.is_speech if speech else layout.is_text
    bad = [i for i in ids if not inside(i)]
    if bad:
        block = "speech" if speech else "text"
        raise ValueError(f"ids {bad[:5]} are not in the {block} block of the vocabulary (expected vocabulary ids)")


def prompt(speech_ids: list[int], layout: VocabLayout, use_bos: bool) -> list[int]:
    """`[<bos>] speech <speech_end>`: what the model continues with text at inference. Ids are vocabulary ids."""
    _check_block(speech_ids, layout, speech=True)
    return ([layout.bos_id] if use_bos else []) + list(speech_ids) + [layout.speech_end_id]


def build_sequence(speech_ids: list[int], text_ids: list[int], layout: VocabLayout, use_bos: bool) -> list[int]:
    """`[<bos>] speech <speech_end> text <text_end>`, the training sequence. Ids are vocabulary ids."""
    _check_block(text_ids, layout, speech=False)
    return prompt(speech_ids, layout, use_bos) + list(text_ids) + [layout.text_end_id]


@dataclass
class _Skipped:
    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, uttid: str) -> None:
        self.count += 1
        if len(self.first) < FIRST_IDS_REPORTED:
            self.first.append(uttid)


@dataclass
class _Totals:
    utterances: int = 0
    units: int = 0
    units_removed_by_dedup: int = 0
    speech_tokens: int = 0
    text_tokens: int = 0
    text_unk_tokens: int = 0


def make_sequences(units_path: str | Path, text_path: str | Path, tokenizers: Tokenizers, out_dir: str | Path) -> dict:
    """Write <out>/speech, <out>/text and <out>/stats.json; return the stats.

    Bad input (a malformed line, a unit out of range, no utterance in common) raises ValueError naming the file and
    line; then nothing is left under out_dir (a directory this call created is removed again).
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    try:
        return _make_sequences(units_path, text_path, tokenizers, out_dir)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only succeeds when empty, i.e. nothing of ours or anyone's is in it
        raise


def _make_sequences(units_path, text_path, tokenizers: Tokenizers, out_dir: Path) -> dict:
    texts = read_table(text_path, allow_empty_value=True)
    totals = _Totals()
    skipped = {"no_text": _Skipped(), "no_units": _Skipped(), "empty": _Skipped(), "no_text_tokens": _Skipped()}
    seen: dict[str, int] = {}
    with atomic_write(out_dir / "speech") as speech_out, atomic_write(out_dir / "text") as text_out:
        batch: list[tuple[str, list[int]]] = []
        for lineno, uttid, units in read_units(units_path):
            if uttid in seen:
                raise TableError(units_path, lineno, f"duplicate utterance '{uttid}' (first on line {seen[uttid]})")
            seen[uttid] = lineno
            if uttid not in texts:
                skipped["no_text"].add(uttid)
                continue
            if not units or not texts[uttid].strip():
                skipped["empty"].add(uttid)
                continue
            try:
                tokenizers.units.check(units)
            except ValueError as e:
                raise TableError(units_path, lineno, f"'{uttid}': {e}") from None
            batch.append((uttid, units))
            if len(batch) == BATCH:
                _write_batch(batch, texts, tokenizers, speech_out, text_out, totals, skipped)
                batch = []
        _write_batch(batch, texts, tokenizers, speech_out, text_out, totals, skipped)
        for uttid in texts:
            if uttid not in seen:
                skipped["no_units"].add(uttid)
        if totals.utterances == 0 and skipped["no_text_tokens"].count:
            first = skipped["no_text_tokens"].first[0]
            raise ValueError(
                f"{text_path}: the text tokenizer gives no tokens for any transcript (e.g. '{first}': "
                f"'{texts[first]}'); its vocabulary does not cover this corpus's text: check the tokenizer config"
            )
        if totals.utterances == 0:
            raise ValueError(f"{units_path} and {text_path}: no utterance has both units and a transcript")
    _report(skipped, units_path, text_path)
    n = totals.utterances
    stats = {
        "units_file": str(units_path),
        "text_file": str(text_path),
        **vars(totals),
        "mean_units": round(totals.units / n, 3),
        "mean_speech_tokens": round(totals.speech_tokens / n, 3),
        "mean_text_tokens": round(totals.text_tokens / n, 3),
        "skipped": {reason: vars(s) for reason, s in skipped.items()},
    }
    with atomic_write(out_dir / "stats.json") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    return stats


def _write_batch(batch, texts, tokenizers: Tokenizers, speech_out, text_out, totals: _Totals, skipped) -> None:
    if not batch:
        return
    layout = tokenizers.layout
    speech_tokens = tokenizers.units.encode_batch([units for _, units in batch])
    text_tokens = tokenizers.text.encode_batch([texts[uttid] for uttid, _ in batch])
    for (uttid, units), speech, text in zip(batch, speech_tokens, text_tokens, strict=True):
        if not text:
            # A transcript the tokenizer turns into nothing would train the LM to answer with <text_end> alone.
            skipped["no_text_tokens"].add(uttid)
            continue
        speech_out.write(f"{uttid} {' '.join(map(str, layout.speech_ids(speech)))}\n")
        text_out.write(f"{uttid} {' '.join(map(str, layout.text_ids(text)))}\n")
        totals.utterances += 1
        totals.units += len(units)
        if tokenizers.units.config.dedup:
            totals.units_removed_by_dedup += len(units) - len(dedup(units))
        totals.speech_tokens += len(speech)
        totals.text_tokens += len(text)
        totals.text_unk_tokens += text.count(tokenizers.text.unk_id)


def _report(skipped: dict[str, _Skipped], units_path, text_path) -> None:
    what = {
        "no_text": f"are in {units_path} but not in {text_path}",
        "no_units": f"are in {text_path} but not in {units_path}",
        "empty": "have no units or an empty transcript",
        "no_text_tokens": "have a transcript the text tokenizer turns into no tokens",
    }
    for reason, s in skipped.items():
        if s.count:
            log.warning("%d utterances %s; skipped (first: %s)", s.count, what[reason], ", ".join(s.first))
