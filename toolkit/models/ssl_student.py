"""A speech SSL model (HuBERT, wav2vec 2.0, WavLM) as a trainable student: loading it with config overrides that
are undone before saving, its padding-exact batched forward, and saving it with `save_pretrained`.

Used by PAD distillation (toolkit/train/distill.py). Group-norm students (HuBERT-Base, wav2vec2-base) are not exact
under zero padding (the first conv normalises over the whole time axis), so for them each waveform goes through the
CNN alone (`_per_utterance_cnn`); the rest of the model runs batched with a frame attention mask. Layer-norm students
get a sample attention mask.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.models.loading import named_load_errors
from toolkit.models.ssl_features import SAMPLE_RATE, frame_counts, normalize_waveform, wants_normalized_audio
from toolkit.models.teacher_cache import check_model_source, model_folder

MISSING = object()  # a student config option that did not exist before an override


@dataclass
class Student:
    model: torch.nn.Module
    sample_rate: int
    normalize: bool
    group_norm: bool  # CNN with group norm: each waveform through the CNN alone (exact under padding)
    attention: bool  # return attention maps (P_S)
    preprocessor: Path | None  # the source's preprocessor_config.json
    restore: dict[str, Any]  # config values to put back before saving (MISSING: the key was absent)


def _preprocessor_file(name: str) -> Path | None:
    folder = model_folder(name)
    path = folder / "preprocessor_config.json" if folder is not None else None
    if path is None and not os.path.isdir(name):
        from transformers.utils import cached_file

        found = cached_file(
            name,
            "preprocessor_config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        path = Path(found) if found else None
    return path if path is not None and path.is_file() else None


def load_student(
    name: str,
    device: torch.device,
    *,
    attention: bool = False,
    layer: int | None = None,
    config_overrides: dict[str, Any] | None = None,
    spec_augment: bool = False,
    freeze_feature_encoder: bool = True,
    attention_layers: Sequence[int] = (),
) -> Student:
    """The student `name` (hub name or folder), in training mode, with `config_overrides` applied to its config
    (recorded, to be undone before saving). `attention`: it must return attention maps (eager attention); `layer`:
    the hidden_states index read (None: last_hidden_state); `attention_layers`: the map indices read, checked."""
    from transformers import AutoConfig, AutoModel

    check_model_source(name, "student")
    requested = dict(config_overrides or {})
    try:
        config = AutoConfig.from_pretrained(name)
    except OSError as e:
        raise FileNotFoundError(f"student {name}: not a local folder and cannot be loaded from the hub ({e})") from None
    overrides = dict(requested)
    if not spec_augment:
        overrides["apply_spec_augment"] = False
    # LayerDrop skips whole layers at random, and the outputs of a skipped layer are missing from hidden_states and
    # attentions: P_S and `student_layer` need every layer, so it is off while distilling unless asked for.
    if (attention or layer is not None) and getattr(config, "layerdrop", 0.0):
        if overrides.get("layerdrop", 0.0):
            raise ValueError(
                "student_config.layerdrop > 0 skips layers whose attention maps (P_S) or hidden states "
                "(student_layer) the loss reads; set it to 0"
            )
        overrides.setdefault("layerdrop", 0.0)
    restore: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in requested or hasattr(config, key):
            restore[key] = getattr(config, key, MISSING)
            setattr(config, key, value)
        else:
            raise ValueError(f"student_config: {type(config).__name__} of {name} has no option {key!r}")
    kwargs = {"attn_implementation": "eager"} if attention else {}
    with named_load_errors(name, "speech model"):
        model = AutoModel.from_pretrained(name, config=config, **kwargs)
    for attr in ("feature_extractor", "_get_feat_extract_output_lengths"):
        if not hasattr(model, attr):
            raise ValueError(f"student {name}: {type(model).__name__} is not a wav2vec2-style speech model")
    layers = int(config.num_hidden_layers)
    if layer is not None and layer > layers:
        raise ValueError(
            f"student_layer {layer} is out of range for {name}, which has {layers} layers "
            f"(0..{layers}, or null for the last)"
        )
    for index in attention_layers:
        if not -layers <= index < layers:
            raise ValueError(f"loss.speech_asp_layers: {index} is out of range for {name}, which has {layers} layers")
    if freeze_feature_encoder:
        extractor = model.feature_extractor
        if hasattr(extractor, "_freeze_parameters"):
            extractor._freeze_parameters()
        else:
            for p in extractor.parameters():
                p.requires_grad_(False)
    preprocessor = _preprocessor_file(name)
    settings = json.loads(preprocessor.read_text()) if preprocessor is not None else {}
    layer_norm = getattr(config, "feat_extract_norm", "group") == "layer"
    model.to(device).train()
    return Student(
        model=model,
        sample_rate=int(settings.get("sampling_rate", SAMPLE_RATE)),
        normalize=wants_normalized_audio(model, settings),
        group_norm=not layer_norm,
        attention=attention,
        preprocessor=preprocessor,
        restore=restore,
    )


def num_frames(student: Student, num_samples: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Frames the student gives for waveforms of these lengths (0 when shorter than the CNN's window)."""
    return frame_counts(student.model, num_samples)


def prepare_wave(student: Student, wave: np.ndarray) -> torch.Tensor:
    """A float32 tensor, normalised over the utterance (zero mean, unit variance) when the student wants it."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return normalize_waveform(x) if student.normalize else x


@contextmanager
def _per_utterance_cnn(model: torch.nn.Module, lengths: torch.Tensor):
    """While active, the CNN feature encoder runs on every waveform alone (its real samples only) and pads the
    results with zeros to the batch's frame count: with a group-norm CNN each utterance then gets exactly the
    features it gets alone. The padding frames are masked out by the model's frame attention mask."""
    extractor = model.feature_extractor
    original = type(extractor).forward

    def forward(values: torch.Tensor) -> torch.Tensor:
        width = int(model._get_feat_extract_output_lengths(torch.tensor(values.shape[1])))
        rows = []
        for row, n in enumerate(lengths.tolist()):
            features = original(extractor, values[row : row + 1, :n].contiguous())  # [1, C, T]
            rows.append(torch.nn.functional.pad(features, (0, width - features.shape[-1])))
        return torch.cat(rows)

    extractor.forward = forward
    try:
        yield
    finally:
        del extractor.forward


def student_forward(
    student: Student, waves: Sequence[torch.Tensor], layer: int | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """(frames [B, M, D], frame mask [B, M] bool, attention maps per layer or None) of prepared waveforms."""
    model = student.model
    lengths = torch.tensor([w.shape[0] for w in waves])
    values = torch.nn.utils.rnn.pad_sequence(list(waves), batch_first=True).to(device)
    sample_mask = (torch.arange(values.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).long().to(device)
    frames = num_frames(student, lengths)
    context = _per_utterance_cnn(model, lengths) if student.group_norm else nullcontext()
    with context:
        out = model(
            values,
            attention_mask=sample_mask,
            output_attentions=student.attention,
            output_hidden_states=layer is not None,
        )
    hidden = out.last_hidden_state if layer is None else out.hidden_states[layer]
    mask = torch.arange(hidden.shape[1], device=device).unsqueeze(0) < frames.to(device).unsqueeze(1)
    attentions = None
    if student.attention:
        attentions = out.attentions
        expected = int(model.config.num_hidden_layers)
        if not attentions or len(attentions) != expected or any(a is None for a in attentions):
            raise ValueError(
                f"student {type(model).__name__} returned {len(attentions or ())} attention maps for {expected} "
                "layers with output_attentions=True; it needs an attention implementation that returns them (eager)"
            )
    return hidden, mask, attentions


class StudentWithProjection(torch.nn.Module):
    """Student and projection as one module, so that one forward call makes a training step's speech units: DDP
    wraps this module and all-reduces the gradients of both."""

    def __init__(self, student: Student, projection: torch.nn.Module, layer: int | None, device: torch.device):
        super().__init__()
        self.model = student.model  # registered here too: DDP finds parameters through the module it wraps
        self.projection = projection
        self.student = student
        self.layer = layer
        self.device = device

    def forward(self, waves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        hidden, mask, attentions = student_forward(self.student, waves, self.layer, self.device)
        return self.projection(hidden), mask, attentions


def save_student(student: Student, folder: Path) -> None:
    """The student with its original config (overrides undone) and preprocessor config, written to <folder>.tmp and
    renamed: never half-written."""
    config = student.model.config
    for key, value in student.restore.items():
        if value is not MISSING:
            setattr(config, key, value)
        elif hasattr(config, key):
            delattr(config, key)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    student.model.save_pretrained(tmp)
    if student.preprocessor is not None:
        shutil.copyfile(student.preprocessor, tmp / "preprocessor_config.json")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
