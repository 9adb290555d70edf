"""One SUPERB downstream task on a frozen upstream: its labels, its head, its loss and its predictions as strings.

Tasks and the data-dir table each one reads (one line per utterance, `uttid label`):

    ic   utt2intent   an intent; with `label_fields` (FSC: action, object, location) one head per '|' field, and an
                      utterance is right only when every field is; without, one head over whole labels
    er   utt2emotion  one emotion class per utterance (IEMOCAP: neu, hap, ang, sad)
    sf   text.slots   the transcript with `B-<type> value E-<type>` tags; CTC over characters and tags

The training loop (toolkit/train/downstream.py) and inference (toolkit/bin/infer_downstream.py) both go through
`DownstreamTask`, so a prediction is decoded the same way in the dev metric and in the scored output. A trained task
is saved as one file, head.pt: the task kind, its labels (class names or the CTC vocabulary), the head's config and
weights, and the upstream it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toolkit.fileio import atomic_write, load_tensors
from toolkit.models.downstream import (
    SlotFillingConfig,
    SlotFillingCTC,
    UtteranceClassifier,
    UtteranceClassifierConfig,
    classification_loss,
    ctc_loss,
    greedy_decode,
    predict_heads,
)
from toolkit.models.labels import IntentLabels, SlotVocab

LABEL_TABLES = {"ic": "utt2intent", "er": "utt2emotion", "sf": "text.slots"}


def default_label_table(task: str) -> str:
    if task not in LABEL_TABLES:
        raise ValueError(f"task must be one of {', '.join(LABEL_TABLES)}, got '{task}'")
    return LABEL_TABLES[task]


@dataclass
class DownstreamTask:
    """Labels + head of one task; `loss` for training, `predict` for dev metrics and inference."""

    kind: str  # ic | er | sf
    head: nn.Module
    labels: IntentLabels | None = None  # ic, er
    vocab: SlotVocab | None = None  # sf
    zero_infinity: bool = True

    @classmethod
    def build(
        cls,
        kind: str,
        train_labels: Sequence[str],
        num_layers: int,
        input_dim: int,
        label_fields: Sequence[str] | None,
        classifier: UtteranceClassifierConfig,
        slot_filling: SlotFillingConfig,
    ) -> DownstreamTask:
        """A new head for `kind` whose classes (or CTC vocabulary) are those of the training labels."""
        default_label_table(kind)
        if kind == "sf":
            vocab = SlotVocab.from_lines(train_labels)
            head = SlotFillingCTC(num_layers, input_dim, vocab.size, slot_filling)
            return cls(kind, head, vocab=vocab, zero_infinity=slot_filling.zero_infinity)
        fields = list(label_fields) if label_fields else (["emotion"] if kind == "er" else None)
        labels = IntentLabels.from_labels(train_labels, fields)
        return cls(kind, UtteranceClassifier(num_layers, input_dim, labels.num_classes, classifier), labels=labels)

    def unknown_labels(self, labels: Mapping[str, str]) -> list[str]:
        """Utterances whose label has a class the head does not know (it can never predict them right)."""
        if self.kind == "sf":
            return []  # every line is a CTC target; unseen characters become <unk>
        unknown = []
        for uttid, label in labels.items():
            try:
                self.labels.encode(label, uttid)
            except ValueError:
                unknown.append(uttid)
        return unknown

    def loss(self, hidden: torch.Tensor, mask: torch.Tensor, labels: Sequence[str], ids: Sequence[str]) -> torch.Tensor:
        """Mean loss of a batch: hidden states [L, B, T, D], frame mask [B, T], one label string per utterance."""
        if self.kind == "sf":
            log_probs = self.head(hidden, mask)
            targets = [self.vocab.encode(x) for x in labels]
            return ctc_loss(log_probs, mask, targets, self.zero_infinity)
        targets = self.labels.encode_batch(labels, ids).to(hidden.device)
        return classification_loss(self.head(hidden, mask), targets)

    @torch.no_grad()
    def predict(self, hidden: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """The label string of every utterance of the batch (the same format as the task's table)."""
        if self.kind == "sf":
            return [self.vocab.decode(ids) for ids in greedy_decode(self.head(hidden, mask), mask)]
        predicted = predict_heads(self.head(hidden, mask))
        return [self.labels.decode(row.tolist()) for row in predicted]

    def state(self, head_config: dict[str, Any], upstream: str, extra: dict[str, Any] | None = None) -> dict:
        state = {
            "kind": self.kind,
            "upstream": upstream,
            "head_config": head_config,
            "head": self.head.state_dict(),
            **(extra or {}),
        }
        if self.labels is not None:
            state["classes"] = {k: list(v) for k, v in self.labels.classes.items()}
            state["split_fields"] = self.labels.split_fields
        if self.vocab is not None:
            state["vocab"] = list(self.vocab.tokens)
            state["zero_infinity"] = self.zero_infinity
        return state


def save_task(state: dict, path: str | Path) -> None:
    """Write a `DownstreamTask.state` atomically (a crash leaves the old file or the new one, never half of one)."""
    with atomic_write(path, mode="wb") as f:
        torch.save(state, f)


def read_task(path: str | Path) -> dict:
    """The saved state of a trained task (head.pt), read once: its kind, upstream, labels and head weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: train the head first (toolkit.bin.train_downstream)")
    return load_tensors(path)


def load_task(
    path: str | Path, num_layers: int, input_dim: int, state: dict | None = None
) -> tuple[DownstreamTask, dict]:
    """The task saved in `path` (head.pt), rebuilt for an upstream of `num_layers` hidden states of `input_dim`;
    `state` is its content when the caller has read it already (read_task)."""
    path = Path(path)
    if state is None:
        state = read_task(path)
    kind = state["kind"]
    if kind == "sf":
        cfg = SlotFillingConfig.from_dict(state["head_config"], where=f"{path}: head_config")
        vocab = SlotVocab(tuple(state["vocab"]))
        task = DownstreamTask(kind, SlotFillingCTC(num_layers, input_dim, vocab.size, cfg), vocab=vocab)
        task.zero_infinity = state.get("zero_infinity", True)
    else:
        cfg = UtteranceClassifierConfig.from_dict(state["head_config"], where=f"{path}: head_config")
        labels = IntentLabels({k: tuple(v) for k, v in state["classes"].items()}, bool(state["split_fields"]))
        task = DownstreamTask(kind, UtteranceClassifier(num_layers, input_dim, labels.num_classes, cfg), labels=labels)
    try:
        task.head.load_state_dict(state["head"])
    except RuntimeError as e:
        raise ValueError(
            f"{path}: the head does not fit this upstream ({num_layers} layers of {input_dim} dims): {e}"
        ) from None
    task.head.eval()
    return task, state
