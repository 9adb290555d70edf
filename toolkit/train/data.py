"""Training data for the speech-text LM: token sequences and length-bucketed batches with a token budget.

A batch holds as many sequences of similar length as fit in `max_tokens` padded tokens, so nothing is padded to a
fixed block. The batch order of an epoch is a pure function of (seed, epoch): a resumed run replays it exactly
and skips the batches it already trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from toolkit.fileio import TableError, iter_table
from toolkit.tokenizers.sequences import build_sequence, prompt
from toolkit.tokenizers.vocab import VocabLayout


@dataclass
class Example:
    uttid: str
    speech: list[int]  # vocabulary ids of the speech tokens
    text: list[int]  # vocabulary ids of the text tokens


def _read_ids(path: Path) -> dict[str, list[int]]:
    table = {}
    for lineno, key, value in iter_table(path, allow_empty_value=True):
        try:
            table[key] = [int(t) for t in value.split()]
        except ValueError:
            raise TableError(path, lineno, "expected integer token ids") from None
    return table


def load_examples(token_dir: str | Path, layout: VocabLayout, max_len: int | None = None) -> list[Example]:
    """Read `<token_dir>/speech` and `<token_dir>/text` (written by make_sequences); ids are checked against the
    layout so a mismatched tokenizer fails here rather than as a silent garbage run."""
    token_dir = Path(token_dir)
    speech, text = _read_ids(token_dir / "speech"), _read_ids(token_dir / "text")
    examples = []
    for uttid, speech_ids in speech.items():
        if uttid not in text:
            continue
        if any(not layout.is_speech(t) for t in speech_ids) or any(not layout.is_text(t) for t in text[uttid]):
            raise ValueError(f"{token_dir}: utterance '{uttid}' has ids outside the layout's speech/text blocks")
        example = Example(uttid, speech_ids, text[uttid])
        if max_len is None or sequence_length(example, True) <= max_len:
            examples.append(example)
    if not examples:
        raise ValueError(f"{token_dir}: no utterance has both speech and text tokens")
    return examples


def sequence_length(example: Example, use_bos: bool) -> int:
    return int(use_bos) + len(example.speech) + 1 + len(example.text) + 1


def example_sequence(example: Example, layout: VocabLayout, use_bos: bool) -> list[int]:
    return build_sequence(example.speech, example.text, layout, use_bos)


def example_prompt(example: Example, layout: VocabLayout, use_bos: bool) -> list[int]:
    return prompt(example.speech, layout, use_bos)


def make_batches(
    lengths: list[int],
    max_tokens: int,
    seed: int,
    epoch: int,
    max_sequences: int | None = None,
    shuffle: bool = True,
    pad_to_multiple: int = 1,
) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded size (longest x count) fits max_tokens, the
    longest rounded up to a multiple of `pad_to_multiple` as `collate` pads it.

    Sorting by length inside shuffled buckets keeps padding low while the batch order stays random.
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    if shuffle:
        rng.shuffle(order)
        # Sort within buckets of ~100 batches' worth of sequences: low padding, still a different mix each epoch.
        mean_length = max(1, sum(lengths) // max(1, len(lengths)))
        bucket = 100 * max(1, max_tokens // mean_length)
        order = [
            i for s in range(0, len(order), bucket) for i in sorted(order[s : s + bucket], key=lengths.__getitem__)
        ]
    else:
        order.sort(key=lengths.__getitem__)
    batches, current, longest = [], [], 0
    for index in order:
        longest_if_added = max(longest, lengths[index])
        too_many = max_sequences is not None and len(current) >= max_sequences
        padded = round_up(longest_if_added, pad_to_multiple)
        if current and (padded * (len(current) + 1) > max_tokens or too_many):
            batches.append(current)
            current, longest_if_added = [], lengths[index]
        current.append(index)
        longest = longest_if_added
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def spread_subset(items: list, count: int | None) -> list:
    """`count` items evenly spread over the list (all of them when count is None or covers the list).

    Data dirs are sorted by utterance id, which starts with the speaker: the first N utterances would be the first
    few speakers only, and a dev WER on them would follow those speakers rather than the whole set.
    """
    if count is None or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def shard_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This rank's batches; every rank gets the same number (the tail that does not divide evenly is dropped)."""
    usable = len(batches) - len(batches) % world_size
    return batches[rank:usable:world_size]


def round_up(length: int, multiple: int) -> int:
    return -(-length // multiple) * multiple


def collate(sequences: list[list[int]], pad_id: int, pad_to_multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids [B, L] and attention mask [B, L], L the longest length rounded up to a multiple of
    `pad_to_multiple`."""
    longest = round_up(max(len(s) for s in sequences), pad_to_multiple)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
