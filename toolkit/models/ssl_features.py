"""Frame features from one layer of a self-supervised speech model (HuBERT, WavLM, wav2vec 2.0) via transformers.

The model is loaded with `transformers.AutoModel.from_pretrained` from a hub name or a local folder (one written by
`save_pretrained`), in eval mode on the requested device. A relative folder is resolved against the working
directory (recipes run from their own folder).

Layer numbering follows `outputs.hidden_states` of the full model (transformers 4.x and 5.x agree on it):

    layer 0          the input of the first transformer layer: CNN features -> feature projection -> + positional
                     convolution (-> encoder layer norm for models with do_stable_layer_norm=False)
    layer i, 1..N    the output of transformer layer i, N = config.num_hidden_layers

so `layer: 23` of HuBERT-Large (N = 24), the release's setting, is hidden_states[23], the output of the 23rd of its 24
layers. For the Large models (do_stable_layer_norm=True) the encoder's final layer norm is applied after the last
layer only; it is not part of any `layer` here (in transformers 5.x hidden_states[N] is also taken before it, while
4.x returned it after the norm). Only the layers up to `layer` are kept (the rest are dropped from the model at load
time) and the forward pass stops at the selected layer.

Waveform normalisation (zero mean, unit variance per utterance, as Wav2Vec2FeatureExtractor does): `normalize=None`
follows `do_normalize` of the model's preprocessor_config.json when it has one, else normalises exactly when the
model has layer-normalised CNN features (feat_extract_norm == "layer": the Large models, trained on normalised audio;
the Base ones were trained on raw audio); True or False force it.

Batches are zero-padded, and every utterance's features equal those it gives alone (to float rounding). Models with
layer-normalised CNN features (feat_extract_norm == "layer", the Large ones) get an attention mask. Those with a
group-norm CNN (HuBERT-Base, wav2vec2-base, WavLM-Base) must not get one from the model's forward (their feature
extractors set return_attention_mask=False), but plain zero padding without a mask is not exact either: the group
norm takes its statistics over the padding and every frame attends to it (a 10% shorter utterance moves by 10-20% in
a random tiny model). For them each waveform goes through the CNN alone and the padded CNN features through the
projection and the encoder with a frame mask (see `_forward_group_norm`). Padding frames are cut off using the
model's `_get_feat_extract_output_lengths`.

Utterances longer than `chunk_seconds` are cut into pieces of that many frames, each with `chunk_context_seconds`
of audio on both sides that is computed and thrown away; the pieces start on the frame grid, so the stitched frames
are as many as the whole utterance gives and each is computed from the same samples (the attention span is what
differs; with a second of context the difference is small).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from toolkit.models.loading import named_load_errors

SAMPLE_RATE = 16000  # every HuBERT / WavLM / wav2vec 2.0 checkpoint works at 16 kHz
NORMALIZE_EPS = 1e-7  # Wav2Vec2FeatureExtractor's variance floor


class _Captured(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the layer hook to end the forward pass once the selected layer's output exists."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden


@dataclass(frozen=True)
class SSLFeatureSpec:
    """Which features: the model, its layer, and how waveforms are fed to it."""

    model: str  # hub name (e.g. facebook/hubert-large-ll60k) or local folder
    layer: int  # index into hidden_states (see the module docstring)
    normalize: bool | None = None  # None: the model's preprocessor config, else feat_extract_norm == "layer"
    batch_seconds: float = 60.0  # padded audio per forward pass
    chunk_seconds: float | None = 30.0  # longer utterances are computed in pieces; None: never
    chunk_context_seconds: float = 1.0  # audio on each side of a piece computed for context and dropped
    device: str = "cpu"

    def __post_init__(self):
        if not self.model:
            raise ValueError("model must name a hub model or a local folder")
        if self.batch_seconds <= 0:
            raise ValueError(f"batch_seconds must be positive, got {self.batch_seconds}")
        if self.chunk_seconds is not None and self.chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be positive or null, got {self.chunk_seconds}")
        if self.chunk_context_seconds < 0:
            raise ValueError(f"chunk_context_seconds must be >= 0, got {self.chunk_context_seconds}")


# ---- loading ----


def _looks_like_path(model: str) -> bool:
    """A hub name is `name` or `owner/name`; anything else (absolute, ./, ~, deeper) can only be a folder."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def load_ssl_model(model: str, device: str = "cpu") -> torch.nn.Module:
    """The full model from a hub name or a local folder, in eval mode on `device`. Errors name the model."""
    from transformers import AutoModel

    if not os.path.isdir(model):
        if _looks_like_path(model) or os.path.exists(model):
            raise FileNotFoundError(f"model folder {model} does not exist (relative to {os.getcwd()})")
    elif not os.path.isfile(os.path.join(model, "config.json")):
        raise FileNotFoundError(f"model folder {model} has no config.json; save it with save_pretrained")
    try:
        with named_load_errors(model, "speech model"):
            loaded = AutoModel.from_pretrained(model)
    except OSError as e:  # not cached while offline, no such repo, no network
        raise FileNotFoundError(f"model {model}: not a local folder and cannot be loaded from the hub ({e})") from None
    for name in ("encoder", "_get_feat_extract_output_lengths"):
        if not hasattr(loaded, name):
            raise ValueError(f"model {model}: {type(loaded).__name__} is not a wav2vec2-style speech model")
    return loaded.eval().to(device)


def preprocessor_config(model: str) -> dict:
    """The model's preprocessor_config.json as a dict, {} when it has none."""
    if os.path.isdir(model):
        path = os.path.join(model, "preprocessor_config.json")
    else:
        from transformers.utils import cached_file

        path = cached_file(
            model,
            "preprocessor_config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    if not path or not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_layer(model: torch.nn.Module, layer: int, name: str) -> None:
    num_layers = model.config.num_hidden_layers
    if not 0 <= layer <= num_layers:
        raise ValueError(
            f"layer {layer} is out of range for {name} ({type(model).__name__}), which has {num_layers} transformer "
            f"layers: use 0..{num_layers} (0: the input of the first layer, i: the output of layer i)"
        )


def receptive_field(conv_kernel: Sequence[int], conv_stride: Sequence[int]) -> tuple[int, int]:
    """(samples seen by one frame, samples between frames) of the CNN feature encoder."""
    field, hop = 1, 1
    for kernel, stride in zip(conv_kernel, conv_stride, strict=True):
        field += (kernel - 1) * hop
        hop *= stride
    return field, hop


def wants_normalized_audio(model: torch.nn.Module, preprocessor: dict, override: bool | None = None) -> bool:
    """Whether waveforms are normalised (zero mean, unit variance) before the model: `override` when given, else
    the preprocessor config's do_normalize, else exactly when the CNN is layer-normalised (the Large models)."""
    if override is not None:
        return override
    if "do_normalize" in preprocessor:
        return bool(preprocessor["do_normalize"])
    return getattr(model.config, "feat_extract_norm", "group") == "layer"


def normalize_waveform(wave: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over the whole utterance (as Wav2Vec2FeatureExtractor with do_normalize)."""
    if not wave.numel():
        return wave
    return (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + NORMALIZE_EPS)


def frame_counts(model: torch.nn.Module, num_samples: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Frames the model's CNN gives for waveforms of these lengths (0 for one shorter than a frame's window)."""
    field, _ = receptive_field(model.config.conv_kernel, model.config.conv_stride)
    lengths = torch.as_tensor(num_samples, dtype=torch.long)
    frames = model._get_feat_extract_output_lengths(lengths)
    return torch.where(lengths >= field, frames, torch.zeros_like(frames)).long()


def encode_group_norm(model: torch.nn.Module, waves: Sequence[torch.Tensor], frames: torch.Tensor) -> None:
    """The model's forward for group-norm CNNs (the Base models), exact under padding; outputs go to hooks.

    Their first conv layer normalises each channel over the whole time axis, so zero padding (what the feature
    extractor does, without an attention mask) changes every frame of a shorter utterance. Here each waveform goes
    through the CNN alone, and the padded CNN features through the projection and the encoder with a frame mask,
    which makes the valid frames exactly what the waveform gives alone (padded frames are zeroed before the
    positional convolution, as its own zero padding would be, and never attended to).
    """
    device = next(model.parameters()).device
    features = [model.feature_extractor(w.to(device).unsqueeze(0))[0].transpose(0, 1) for w in waves]
    padded = torch.nn.utils.rnn.pad_sequence(features, batch_first=True)
    mask = torch.arange(padded.shape[1], device=device).unsqueeze(0) < frames.to(device).unsqueeze(1)
    projected = model.feature_projection(padded)
    hidden = projected[0] if isinstance(projected, tuple) else projected  # wav2vec2/WavLM also return the norm
    model.encoder(hidden, attention_mask=mask)


class SSLFeatureExtractor:
    """A loaded model cut after the selected layer; `extract(waves)` gives one (frames, dim) tensor per waveform."""

    def __init__(self, spec: SSLFeatureSpec):
        self.spec = spec
        model = load_ssl_model(spec.model, spec.device)
        check_layer(model, spec.layer, spec.model)
        config = model.config
        preprocessor = preprocessor_config(spec.model)
        self.sample_rate = int(preprocessor.get("sampling_rate", SAMPLE_RATE))
        self.use_attention_mask = getattr(config, "feat_extract_norm", "group") == "layer"
        self.normalize = wants_normalized_audio(model, preprocessor, spec.normalize)
        self.field, self.hop = receptive_field(config.conv_kernel, config.conv_stride)
        self.frame_rate = self.sample_rate / self.hop
        self.dim = int(config.hidden_size)
        self.num_layers = int(config.num_hidden_layers)
        self.device = torch.device(spec.device)
        # Keep the layers up to the selected one (one for layer 0, whose input is wanted) and stop there.
        layers = model.encoder.layers
        model.encoder.layers = torch.nn.ModuleList(list(layers)[: max(1, spec.layer)])
        if spec.layer == 0:
            model.encoder.layers[0].register_forward_pre_hook(_capture_input, with_kwargs=True)
        else:
            model.encoder.layers[spec.layer - 1].register_forward_hook(_capture_output)
        self.model = model

    def output_lengths(self, num_samples: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Frames the model gives for waveforms of these lengths (0 for those shorter than one frame)."""
        return frame_counts(self.model, num_samples)

    def prepare(self, wave: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A 1-D float32 tensor, normalised if the model wants it (always over the whole utterance)."""
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32) if isinstance(wave, np.ndarray) else wave)
        if wave.dim() != 1:
            raise ValueError(f"expected a 1-D (mono) waveform, got shape {tuple(wave.shape)}")
        wave = wave.float()
        return normalize_waveform(wave) if self.normalize else wave

    def pieces(self, num_samples: int) -> list[tuple[int, int, int, int]]:
        """(first sample, end sample, first kept frame, end kept frame) of the pieces an utterance is computed in.

        One piece unless it is longer than chunk_seconds. Piece frames are frames of the whole utterance (pieces start
        on a multiple of the hop), and the kept frames of consecutive pieces tile 0..output_length exactly.
        """
        total = int(self.output_lengths([num_samples])[0])
        spec = self.spec
        if spec.chunk_seconds is None or num_samples <= spec.chunk_seconds * self.sample_rate or total == 0:
            return [(0, num_samples, 0, total)]
        core = max(1, round(spec.chunk_seconds * self.frame_rate))
        context = math.ceil(spec.chunk_context_seconds * self.frame_rate)
        pieces = []
        for first in range(0, total, core):
            end = min(total, first + core)
            start_frame = max(0, first - context)
            # the last kept frame needs samples up to (end - 1) * hop + field; context frames beyond it on the right
            stop = min(num_samples, (end - 1 + context) * self.hop + self.field)
            pieces.append((start_frame * self.hop, stop, first - start_frame, end - start_frame))
        return pieces

    @torch.inference_mode()
    def forward_batch(self, waves: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """One padded forward pass; waveforms already prepared and each at least one frame long."""
        lengths = torch.tensor([w.shape[0] for w in waves])
        frames = self.output_lengths(lengths)
        try:
            if self.use_attention_mask:
                batch = torch.nn.utils.rnn.pad_sequence(list(waves), batch_first=True).to(self.device)
                mask = torch.arange(batch.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
                self.model(batch, attention_mask=mask.long().to(self.device))
            else:
                encode_group_norm(self.model, waves, frames)
        except _Captured as captured:
            hidden = captured.hidden
        else:
            raise RuntimeError(f"{self.spec.model}: the layer hook did not run; unsupported model structure")
        return [hidden[i, :n] for i, n in enumerate(frames.tolist())]

    @torch.inference_mode()
    def extract(self, waves: Sequence[np.ndarray | torch.Tensor]) -> list[torch.Tensor]:
        """(frames, dim) float32 features of each waveform (1-D, at self.sample_rate), on self.device.

        All pieces of all waveforms are sorted by length and run in padded batches of at most batch_seconds of
        audio (padding included); waveforms shorter than one frame give (0, dim).
        """
        prepared = [self.prepare(w) for w in waves]
        jobs = []  # (length, waveform index, piece index, piece)
        plans = []
        for index, wave in enumerate(prepared):
            plan = self.pieces(wave.shape[0])
            plans.append(plan)
            for p, (start, stop, keep_from, keep_to) in enumerate(plan):
                if keep_to > keep_from:
                    jobs.append((stop - start, index, p))
        jobs.sort(key=lambda job: (-job[0], job[1], job[2]))
        budget = self.spec.batch_seconds * self.sample_rate
        outputs: dict[tuple[int, int], torch.Tensor] = {}
        begin = 0
        while begin < len(jobs):
            # sorted longest first: the first job sets the padded width of the batch
            size = max(1, min(len(jobs) - begin, int(budget // jobs[begin][0])))
            batch = jobs[begin : begin + size]
            segments = []
            for _, index, p in batch:
                start, stop, _, _ = plans[index][p]
                segments.append(prepared[index][start:stop])
            for (_, index, p), hidden in zip(batch, self.forward_batch(segments), strict=True):
                _, _, keep_from, keep_to = plans[index][p]
                outputs[index, p] = hidden[keep_from:keep_to]
            begin += size
        empty = torch.zeros(0, self.dim, device=self.device)
        results = []
        for index, plan in enumerate(plans):
            parts = [outputs.get((index, p), empty) for p in range(len(plan))]
            results.append(parts[0] if len(parts) == 1 else torch.cat(parts))
        return [r.float() for r in results]


def _capture_output(module, args, output):
    raise _Captured(output[0] if isinstance(output, tuple) else output)


def _capture_input(module, args, kwargs):
    raise _Captured(args[0] if args else kwargs["hidden_states"])


def load_feature_extractor(spec: SSLFeatureSpec) -> SSLFeatureExtractor:
    return SSLFeatureExtractor(spec)
