"""SUPERB downstream models on a frozen speech SSL upstream: intent classification (IC), emotion recognition (ER) and
slot filling (SF).

The upstream (`Upstream`) is a transformers wav2vec2-style model (HuBERT, WavLM, wav2vec 2.0), frozen: no gradient,
always in eval mode, its forward under `torch.no_grad`. It returns every hidden state, stacked as [L+1, B, T, D]:

    0        the input of the first transformer layer (as `hidden_states[0]` of transformers)
    i, 1..L  the output of transformer layer i (for Large models before the encoder's final layer norm; see
             toolkit/models/ssl_features.py, whose layer numbering this follows)

plus a frame mask [B, T] from the model's `_get_feat_extract_output_lengths`. Padded batches give every utterance the
hidden states it gives alone (to float rounding): models with layer-normalised CNN features (feat_extract_norm ==
"layer") get an attention mask; group-norm CNNs (the Base models) must not get one and are not exact under plain zero
padding either, so each waveform goes through the CNN alone and the padded CNN features through the projection and
the encoder with a frame mask (as ssl_features does). Hidden states are read with forward hooks on the encoder layers,
which works the same on transformers 4.x and 5.x and on the encoder called alone. Padded frames are zeroed.

Every head reads a learnable softmax-weighted sum of all L+1 layers (`WeightedLayerSum`, SUPERB's featurizer):
weights start at zero (uniform after the softmax); `layer_norm` normalises each layer over its feature dimension,
without learnable parameters, before the sum (s3prl's `--upstream_feature_normalize`, off by default there and here).

- `UtteranceClassifier` (IC, ER; SUPERB's UtteranceLevel): weighted sum -> linear projection (projector_dim 256) ->
  mean pooling over the valid frames -> one linear layer per head. Fluent Speech Commands has three heads (action,
  object, location); ER one (4 emotions). Loss: the sum of the heads' cross entropies; an utterance is right only if
  every head is right. The labels' classes: `IntentLabels` (toolkit/models/labels.py).
- `SlotFillingCTC` (SF; SUPERB's Audio-SNIPS CTC model): weighted sum -> linear projection (1024) -> 2 BiLSTM layers
  (1024 per direction, dropout 0.2 after each) -> linear to a vocabulary of characters and slot tags -> CTC (blank 0),
  greedy decoding over the characters and slot tags of `SlotVocab` (toolkit/models/labels.py).

Not carried over from SUPERB: s3prl's `<eos>` token at the end of SF targets (CTC needs none), SpecAugment on the SF
features, and s3prl's own HuBERT/wav2vec 2.0 wrappers, whose layer 0 is taken before the positional convolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.config import from_dict as config_from_dict
from toolkit.models.ssl_features import (
    SAMPLE_RATE,
    encode_group_norm,
    frame_counts,
    load_ssl_model,
    normalize_waveform,
    preprocessor_config,
    receptive_field,
    wants_normalized_audio,
)

# ---------------------------------------------------------------------------------------------------------------
# Upstream


class Upstream(nn.Module):
    """A frozen speech SSL model; `forward(waves)` gives (hidden states [L+1, B, T, D], frame mask [B, T]).

    `normalize` (zero mean, unit variance per waveform): None follows the model's preprocessor config, else
    normalises exactly when the CNN is layer-normalised (as toolkit.models.ssl_features decides).
    """

    def __init__(self, model: str, normalize: bool | None = None, device: str = "cpu"):
        super().__init__()
        self.name = model
        self.model = load_ssl_model(model, device)
        self.model.requires_grad_(False)
        config = self.model.config
        preprocessor = preprocessor_config(model)
        self.sample_rate = int(preprocessor.get("sampling_rate", SAMPLE_RATE))
        self.use_attention_mask = getattr(config, "feat_extract_norm", "group") == "layer"
        self.normalize = wants_normalized_audio(self.model, preprocessor, normalize)
        self.field, self.hop = receptive_field(config.conv_kernel, config.conv_stride)
        self.frame_rate = self.sample_rate / self.hop
        self.dim = int(config.hidden_size)
        self.num_layers = int(config.num_hidden_layers) + 1  # hidden states, layer 0 included
        self._captured: list[torch.Tensor] | None = None  # a list only during forward
        layers = self.model.encoder.layers
        layers[0].register_forward_pre_hook(self._capture_input, with_kwargs=True)
        for layer in layers:
            layer.register_forward_hook(self._capture_output)

    def _capture_input(self, module, args, kwargs):
        if self._captured is not None:
            self._captured.append(args[0] if args else kwargs["hidden_states"])

    def _capture_output(self, module, args, output):
        if self._captured is not None:
            self._captured.append(output[0] if isinstance(output, tuple) else output)

    def train(self, mode: bool = True) -> Upstream:
        """The model stays in eval mode (no dropout, no layer drop, no masking) whatever the heads around it do."""
        super().train(mode)
        self.model.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def output_lengths(self, num_samples: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Frames for waveforms of these lengths (0 for those shorter than one frame)."""
        return frame_counts(self.model, num_samples)

    def prepare(self, wave: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A 1-D float32 tensor on the model's device, normalised if the model wants it."""
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32) if isinstance(wave, np.ndarray) else wave)
        if wave.dim() != 1:
            raise ValueError(f"expected a 1-D (mono) waveform, got shape {tuple(wave.shape)}")
        wave = wave.float().to(self.device)
        return normalize_waveform(wave) if self.normalize else wave

    @torch.no_grad()
    def forward(
        self, waves: Sequence[np.ndarray | torch.Tensor], ids: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states [L+1, B, T, D] (padded frames zero) and the frame mask [B, T] of 1-D waveforms.

        `ids` (utterance ids) only name the utterance in errors: each waveform must be at least one frame long.
        """
        prepared = [self.prepare(w) for w in waves]
        if not prepared:
            raise ValueError("empty batch")
        lengths = torch.tensor([w.shape[0] for w in prepared])
        frames = self.output_lengths(lengths)
        for i, n in enumerate(frames.tolist()):
            if n == 0:
                name = ids[i] if ids is not None else f"waveform {i} of the batch"
                raise ValueError(
                    f"{name}: {int(lengths[i])} samples is shorter than one frame of {self.name} ({self.field})"
                )
        device = self.device
        mask = torch.arange(int(frames.max()), device=device).unsqueeze(0) < frames.to(device).unsqueeze(1)
        self._captured = []
        try:
            if self.use_attention_mask:
                batch = nn.utils.rnn.pad_sequence(prepared, batch_first=True)
                samples = torch.arange(batch.shape[1], device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)
                self.model(batch, attention_mask=samples.long())
            else:
                encode_group_norm(self.model, prepared, frames)
            captured = self._captured
        finally:
            self._captured = None
        if len(captured) != self.num_layers:
            raise RuntimeError(f"{self.name}: got {len(captured)} hidden states, expected {self.num_layers}")
        hidden = torch.stack([h[:, : mask.shape[1]] for h in captured])
        return hidden * mask[None, :, :, None].to(hidden.dtype), mask


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces


def pad_hidden_states(parts: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[L, T_i, D] per utterance -> hidden states [L, B, T, D] (float32, zero padding) and the frame mask [B, T]."""
    longest = max(p.shape[1] for p in parts)
    layers, dim = parts[0].shape[0], parts[0].shape[2]
    hidden = torch.zeros(layers, len(parts), longest, dim, device=device)
    mask = torch.zeros(len(parts), longest, dtype=torch.bool, device=device)
    for i, p in enumerate(parts):
        hidden[:, i, : p.shape[1]] = p.to(device).float()
        mask[i, : p.shape[1]] = True
    return hidden, mask


class WeightedLayerSum(nn.Module):
    """sum_l softmax(w)_l * h_l over hidden states [L, B, T, D] -> [B, T, D]; w starts at zero (uniform)."""

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layer_norm = layer_norm
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def layer_weights(self) -> torch.Tensor:
        return F.softmax(self.weights, dim=-1)

    def forward(self, hidden: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if not isinstance(hidden, torch.Tensor):
            hidden = torch.stack(list(hidden))
        if hidden.shape[0] != self.weights.shape[0]:
            raise ValueError(f"expected {self.weights.shape[0]} layers of hidden states, got {hidden.shape[0]}")
        if self.layer_norm:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        weights = self.layer_weights().to(hidden.dtype)
        return torch.einsum("l,l...->...", weights, hidden)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames: x [B, T, D], mask [B, T] -> [B, D] (an all-padding row gives zeros)."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def _check_dropout(value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value}")


# ---------------------------------------------------------------------------------------------------------------
# Utterance classification (IC, ER)


@dataclass
class UtteranceClassifierConfig:
    projection_dim: int | None = 256  # SUPERB's projector_dim for IC and ER; None: heads read the upstream's dim
    layer_norm: bool = False  # layer-normalise each upstream layer before the weighted sum (s3prl: off)
    dropout: float = 0.0  # on the pooled vector (SUPERB: none)

    def __post_init__(self):
        if self.projection_dim is not None and self.projection_dim < 1:
            raise ValueError(f"projection_dim must be >= 1 or null, got {self.projection_dim}")
        _check_dropout(self.dropout)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "downstream") -> UtteranceClassifierConfig:
        return config_from_dict(cls, data, where=where)


class UtteranceClassifier(nn.Module):
    """Weighted layer sum -> projection -> masked mean pooling -> one linear head per entry of `heads`."""

    def __init__(
        self, num_layers: int, input_dim: int, heads: Mapping[str, int], cfg: UtteranceClassifierConfig | None = None
    ):
        super().__init__()
        cfg = cfg or UtteranceClassifierConfig()
        if not heads:
            raise ValueError("at least one head is needed")
        for name, n in heads.items():
            if n < 1:
                raise ValueError(f"head {name!r} needs at least one class, got {n}")
        self.cfg = cfg
        self.head_names = list(heads)
        self.featurizer = WeightedLayerSum(num_layers, cfg.layer_norm)
        self.projection = nn.Linear(input_dim, cfg.projection_dim) if cfg.projection_dim else nn.Identity()
        dim = cfg.projection_dim or input_dim
        self.dropout = nn.Dropout(cfg.dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(dim, n) for name, n in heads.items()})

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits [B, classes] per head from hidden states [L, B, T, D] and the frame mask [B, T]."""
        pooled = self.dropout(masked_mean(self.projection(self.featurizer(hidden)), mask))
        return {name: head(pooled) for name, head in self.heads.items()}


def classification_loss(logits: Mapping[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Sum over heads of the batch-mean cross entropy; targets [B, heads] in the order of `logits`."""
    if targets.dim() != 2 or targets.shape[1] != len(logits):
        raise ValueError(f"targets must be [batch, {len(logits)}], got {tuple(targets.shape)}")
    return sum(F.cross_entropy(x, targets[:, i]) for i, x in enumerate(logits.values()))


def predict_heads(logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The argmax class of every head: [B, heads]."""
    return torch.stack([x.argmax(-1) for x in logits.values()], dim=1)


def all_heads_correct(predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] booleans: an utterance is right only if every head is right."""
    return (predicted == targets).all(dim=1)


def utterance_accuracy(predicted: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of utterances with every head right (0..1)."""
    return all_heads_correct(predicted, targets).float().mean().item()


@dataclass
class SlotFillingConfig:
    projection_dim: int | None = 1024  # SUPERB's project_dim; None: the LSTM reads the upstream's dim
    hidden_size: int = 1024  # LSTM units per direction (SUPERB: 1024)
    num_layers: int = 2  # BiLSTM layers
    dropout: float = 0.2  # after every BiLSTM layer (SUPERB: 0.2)
    layer_norm: bool = False  # layer-normalise each upstream layer before the weighted sum (s3prl: off)
    zero_infinity: bool = True  # an impossible alignment (target longer than the frames) costs 0, not inf

    def __post_init__(self):
        if self.projection_dim is not None and self.projection_dim < 1:
            raise ValueError(f"projection_dim must be >= 1 or null, got {self.projection_dim}")
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        _check_dropout(self.dropout)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "downstream") -> SlotFillingConfig:
        return config_from_dict(cls, data, where=where)


class SlotFillingCTC(nn.Module):
    """Weighted layer sum -> projection -> BiLSTM layers (dropout after each) -> linear -> log-probabilities."""

    def __init__(self, num_layers: int, input_dim: int, vocab_size: int, cfg: SlotFillingConfig | None = None):
        super().__init__()
        cfg = cfg or SlotFillingConfig()
        self.cfg = cfg
        self.featurizer = WeightedLayerSum(num_layers, cfg.layer_norm)
        self.projection = nn.Linear(input_dim, cfg.projection_dim) if cfg.projection_dim else nn.Identity()
        dim = cfg.projection_dim or input_dim
        # One forward and one backward LSTM per layer (a BiLSTM): see `forward` for why not bidirectional=True.
        self.forward_lstms = nn.ModuleList()
        self.backward_lstms = nn.ModuleList()
        for _ in range(cfg.num_layers):
            self.forward_lstms.append(nn.LSTM(dim, cfg.hidden_size, batch_first=True))
            self.backward_lstms.append(nn.LSTM(dim, cfg.hidden_size, batch_first=True))
            dim = 2 * cfg.hidden_size
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(dim, vocab_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [B, T, V] from hidden states [L, B, T, D] and the frame mask [B, T]."""
        x = self.projection(self.featurizer(hidden))
        # The backward direction of a shorter utterance must start at its own last frame, not in the padding. Packed
        # sequences do that but make the CPU backward pass ~3x slower on batches of mixed lengths; instead each
        # utterance is reversed within its own length (padding stays in place), run forward, and reversed back.
        # The forward direction needs nothing: its outputs at valid frames never see the padding after them.
        reverse = reversal_index(mask).unsqueeze(-1)
        for forward_lstm, backward_lstm in zip(self.forward_lstms, self.backward_lstms, strict=True):
            ahead = forward_lstm(x)[0]
            behind = backward_lstm(x.gather(1, reverse.expand(-1, -1, x.shape[-1])))[0]
            behind = behind.gather(1, reverse.expand(-1, -1, behind.shape[-1]))
            x = self.dropout(torch.cat([ahead, behind], dim=-1))
        return F.log_softmax(self.output(x), dim=-1)


def reversal_index(mask: torch.Tensor) -> torch.Tensor:
    """[B, T] time indices that reverse each row's valid frames and leave its padding in place (an involution)."""
    steps = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    lengths = mask.sum(1, keepdim=True)
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


def ctc_loss(
    log_probs: torch.Tensor, mask: torch.Tensor, targets: Sequence[Sequence[int]], zero_infinity: bool = True
) -> torch.Tensor:
    """CTC loss (blank 0), mean over the batch of each utterance's loss divided by its target length (torch's
    reduction="mean", as s3prl)."""
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=log_probs.device)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    input_lengths = mask.sum(1).long().cpu()
    return F.ctc_loss(
        log_probs.transpose(0, 1).float(),
        flat,
        input_lengths,
        target_lengths,
        blank=0,
        reduction="mean",
        zero_infinity=zero_infinity,
    )


def greedy_decode(log_probs: torch.Tensor, mask: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path per utterance: the argmax of each valid frame, repeats collapsed, blanks dropped."""
    best = log_probs.argmax(-1).cpu()
    lengths = mask.sum(1).cpu().tolist()
    out = []
    for row, n in zip(best, lengths, strict=True):
        collapsed = torch.unique_consecutive(row[: int(n)])
        out.append([int(i) for i in collapsed if i != blank])
    return out
