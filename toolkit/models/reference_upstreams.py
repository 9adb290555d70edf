"""Upstreams that bound what a distilled speech model can reach, for the SLU diagnosis (docs/pad.md).

The downstream heads read any of these exactly as they read a speech SSL model (hidden states [L, B, T, D] and a
frame mask), so floor and ceiling are measured with the same heads, data and scoring:

    mfcc               Kaldi-style MFCC + deltas + CMVN at 100 frames/s, the features of the MFCC k-means units
    random:<model>     the architecture of <model> with fresh random weights (seed 0): what pretraining adds
    text:<encoder>     a text encoder (e.g. the distillation teacher) run on the gold transcript instead of the
                       audio: the ceiling, what the heads get from perfect text. Each token's vectors are repeated
                       `TEXT_REPEAT` times so that CTC (slot filling) has frames enough for characters and tags.
    anything else      a speech SSL model (hub name or folder): toolkit.models.downstream.Upstream

`load_upstream(spec)` builds the one a spec names; the spec is what head.pt records, so inference rebuilds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from toolkit.discretizers.features import FeatureSpec, compute_features
from toolkit.models.downstream import Upstream, pad_hidden_states

TEXT_REPEAT = 8
# Speech of the embedded corpus carries about 3 text tokens a second; the heads batch by seconds x frame rate.
TEXT_TOKENS_PER_SECOND = 3.0
RANDOM_SEED = 0


class MfccUpstream(nn.Module):
    """One "hidden state": 39-dim MFCC features with deltas and per-utterance CMVN, 100 frames/s."""

    reads_text = False

    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.name = "mfcc"
        self.spec = FeatureSpec()
        self.sample_rate = self.spec.sample_rate
        self.frame_rate = self.spec.frame_rate
        self.dim = self.spec.dim
        self.num_layers = 1
        self._device = torch.device(device)

    @property
    def device(self) -> torch.device:
        return self._device

    def output_lengths(self, num_samples: Sequence[int] | torch.Tensor) -> torch.Tensor:
        hop = self.sample_rate // int(self.frame_rate)
        return torch.as_tensor([int(round(int(n) / hop)) for n in num_samples])

    @torch.no_grad()
    def forward(self, waves: Sequence[np.ndarray | torch.Tensor], ids: Sequence[str] | None = None):
        feats = [compute_features(np.asarray(w, dtype=np.float32), self.spec) for w in waves]
        for i, f in enumerate(feats):
            if f.shape[0] == 0:
                name = ids[i] if ids is not None else f"waveform {i} of the batch"
                raise ValueError(f"{name}: shorter than one MFCC frame (25 ms)")
        return pad_hidden_states([f.unsqueeze(0) for f in feats], self._device)


class TextUpstream(nn.Module):
    """Every hidden state of a text encoder on the transcript, special tokens left out, each token repeated."""

    reads_text = True

    def __init__(self, name: str, device: str = "cpu", repeat: int = TEXT_REPEAT):
        super().__init__()
        from toolkit.models.teacher_cache import load_text_teacher, resolve_packaged_model

        self.name = f"text:{name}"
        self.model, self.tokenizer = load_text_teacher(resolve_packaged_model(name), device)
        self.repeat = repeat
        self.sample_rate = 16000  # unused: no audio is read
        self.frame_rate = TEXT_TOKENS_PER_SECOND * repeat
        self.dim = int(self.model.config.hidden_size)
        self.num_layers = int(self.model.config.num_hidden_layers) + 1

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def forward(self, texts: Sequence[str], ids: Sequence[str] | None = None):
        encoded = self.tokenizer(
            list(texts), return_tensors="pt", padding=True, truncation=True, return_special_tokens_mask=True
        )
        special = encoded.pop("special_tokens_mask").bool()
        out = self.model(**{k: v.to(self.device) for k, v in encoded.items()}, output_hidden_states=True)
        hidden = torch.stack(out.hidden_states)  # [L, B, N, D]
        keep = encoded["attention_mask"].bool() & ~special
        parts = []
        for i in range(hidden.shape[1]):
            tokens = hidden[:, i, keep[i].to(hidden.device)]
            if tokens.shape[1] == 0:
                name = ids[i] if ids is not None else f"text {i} of the batch"
                raise ValueError(f"{name}: the transcript has no tokens")
            parts.append(tokens.repeat_interleave(self.repeat, dim=1))
        return pad_hidden_states(parts, self.device)


def random_upstream(model: str, device: str = "cpu") -> Upstream:
    """The SSL model `model` with its weights replaced by the architecture's own random initialisation (seed 0)."""
    upstream = Upstream(model, device=device)
    torch.manual_seed(RANDOM_SEED)
    fresh = type(upstream.model)(upstream.model.config)
    upstream.model.load_state_dict(fresh.state_dict())
    upstream.name = f"random:{model}"
    return upstream


def load_upstream(spec: str, device: str = "cpu"):
    """The upstream a spec names (see the module docstring)."""
    if spec == "mfcc":
        return MfccUpstream(device)
    if spec.startswith("random:"):
        return random_upstream(spec.split(":", 1)[1], device)
    if spec.startswith("text:"):
        return TextUpstream(spec.split(":", 1)[1], device)
    return Upstream(spec, device=device)
