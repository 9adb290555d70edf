"""The speech-text decoder-only LM: a plain transformers causal LM over the shared vocabulary (VocabLayout).

Two ways to get one:
- from a small config (`arch` llama | gpt2), trained from scratch; this is what runs on a CPU;
- from a pretrained causal LM (`init_from`: a local folder or a hub name, e.g. GPT-2 medium as in the SLD release),
  whose token embeddings are resized to the layout's size.

The model is an ordinary `PreTrainedModel`, saved with save_pretrained and loaded with from_pretrained, so any
transformers tool can read it. For the loss, call `model(input_ids=..., attention_mask=...).logits`: position t
predicts token t+1.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PretrainedConfig, PreTrainedModel

from toolkit.config import from_dict as config_from_dict
from toolkit.models import attention  # noqa: F401 (registers the eager_fast_dropout attention with transformers)
from toolkit.models.loading import named_load_errors
from toolkit.tokenizers.vocab import VocabLayout

ARCHS = ("llama", "gpt2")


@dataclass
class SpeechLMConfig:
    arch: str = "llama"  # llama | gpt2 (ignored with init_from: the pretrained model decides)
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024  # feed-forward width
    max_positions: int = 1024  # longest sequence (GPT-2 learns one embedding per position; Llama uses RoPE)
    dropout: float = 0.0  # llama: attention dropout only (it has no other dropout); gpt2: embedding/residual/attn
    tie_embeddings: bool = True  # share the input embedding and the output projection
    init_from: str | None = None  # a pretrained causal LM (local folder or hub name); the fields above are ignored
    # With init_from and the same model's tokenizer as the text tokenizer (tokenizer config `text: {kind: pretrained,
    # pretrained: <init_from>}`): text token t keeps the pretrained embedding row t, so the model starts out knowing
    # its text vocabulary. Otherwise the old rows sit at the first ids, whatever tokens those are.
    init_text_rows: bool = False
    # sdpa | eager | eager_fast_dropout (toolkit/models/attention.py: eager with a 5x cheaper dropout mask, the
    # fastest with dropout on CPU, compiled or not) | any other attention transformers knows
    attn_implementation: str = "sdpa"

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"model.arch must be one of {', '.join(ARCHS)}, got '{self.arch}'")
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.init_text_rows and not self.init_from:
            raise ValueError("model.init_text_rows needs model.init_from (the pretrained LM whose rows it keeps)")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SpeechLMConfig:
        """Unknown keys are errors (a typo must not silently fall back to a default)."""
        return config_from_dict(cls, data, where="model")


def _special_ids(layout: VocabLayout) -> dict[str, int]:
    # eos is <text_end>: the model's "end of generation" is the end of the transcript.
    return {"pad_token_id": layout.pad_id, "bos_token_id": layout.bos_id, "eos_token_id": layout.text_end_id}


def _hf_config(cfg: SpeechLMConfig, layout: VocabLayout) -> PretrainedConfig:
    if cfg.arch == "llama":
        return LlamaConfig(
            vocab_size=layout.size,
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_heads,
            max_position_embeddings=cfg.max_positions,
            attention_dropout=cfg.dropout,
            tie_word_embeddings=cfg.tie_embeddings,
            **_special_ids(layout),
        )
    return GPT2Config(
        vocab_size=layout.size,
        n_positions=cfg.max_positions,
        n_embd=cfg.hidden_size,
        n_layer=cfg.num_layers,
        n_head=cfg.num_heads,
        n_inner=cfg.intermediate_size,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        tie_word_embeddings=cfg.tie_embeddings,
        **_special_ids(layout),
    )


def _set_special_ids(model: PreTrainedModel, layout: VocabLayout) -> None:
    for key, value in _special_ids(layout).items():
        setattr(model.config, key, value)
        if model.generation_config is not None:
            setattr(model.generation_config, key, value)


@torch.no_grad()
def _init_new_rows(weight: torch.Tensor, old_rows: int, generator: torch.Generator | None = None) -> None:
    """Rows old_rows.. of an embedding matrix start at the mean of the old rows, plus a little noise.

    Why the mean: a new output row equal to the mean gives the new tokens an "average" logit, so the pretrained LM's
    distribution over its old tokens is barely disturbed at the start, unlike random rows that can dominate it.
    The noise (0.1 x the old rows' per-dimension std) makes the new tokens distinguishable from each other.
    """
    if weight.shape[0] <= old_rows:
        return
    old = weight[:old_rows].float()
    new = old.mean(0) + 0.1 * old.std(0) * torch.randn(
        weight.shape[0] - old_rows, weight.shape[1], generator=generator, device=weight.device
    )
    weight[old_rows:] = new.to(weight.dtype)


@torch.no_grad()
def _align_text_rows(weight: torch.Tensor, old: torch.Tensor, layout: VocabLayout) -> None:
    """Layout ids text_offset + t take the pretrained row t; every other row (specials, speech) the old rows' mean
    plus a little noise, as `_init_new_rows` gives new tokens."""
    if layout.text_size > old.shape[0]:
        raise ValueError(
            f"init_text_rows: the text vocabulary ({layout.text_size}) is larger than the pretrained model's "
            f"({old.shape[0]}): is the text tokenizer that model's own?"
        )
    fresh = old.float().mean(0) + 0.1 * old.float().std(0) * torch.randn(weight.shape[0], weight.shape[1])
    weight.copy_(fresh.to(weight.dtype))
    start = layout.text_offset
    weight[start : start + layout.text_size] = old[: layout.text_size]


def _from_pretrained(cfg: SpeechLMConfig, layout: VocabLayout) -> PreTrainedModel:
    model = AutoModelForCausalLM.from_pretrained(cfg.init_from, attn_implementation=cfg.attn_implementation)
    old_rows = model.get_input_embeddings().weight.shape[0]
    output = model.get_output_embeddings()
    tied = output is None or output.weight is model.get_input_embeddings().weight
    old_input = model.get_input_embeddings().weight.detach().clone()
    old_output = None if tied else output.weight.detach().clone()
    # mean_resizing=False: we initialise the new rows ourselves (above), deterministically under torch's seed.
    model.resize_token_embeddings(layout.size, mean_resizing=False)
    if cfg.init_text_rows:
        _align_text_rows(model.get_input_embeddings().weight, old_input, layout)
        if old_output is not None:
            _align_text_rows(model.get_output_embeddings().weight, old_output, layout)
    else:
        _init_new_rows(model.get_input_embeddings().weight, old_rows)
        if old_output is not None:
            _init_new_rows(model.get_output_embeddings().weight, old_rows)
    _set_special_ids(model, layout)
    return model


def build_speech_lm(cfg: SpeechLMConfig, layout: VocabLayout) -> PreTrainedModel:
    """A LlamaForCausalLM / GPT2LMHeadModel of vocabulary `layout.size` (random init under torch's seed), or the
    `init_from` model with its embeddings resized to `layout.size` (old rows kept, new rows at their mean)."""
    if cfg.init_from:
        return _from_pretrained(cfg, layout)
    return AutoModelForCausalLM.from_config(_hf_config(cfg, layout), attn_implementation=cfg.attn_implementation)


def save_speech_lm(model: PreTrainedModel, out_dir: str | Path) -> None:
    """save_pretrained into a temporary folder, then swap it in: a crash never leaves a half-written model."""
    out_dir = Path(out_dir)
    tmp, old = out_dir.with_name(out_dir.name + ".tmp"), out_dir.with_name(out_dir.name + ".old")
    for path in (tmp, old):
        shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(tmp)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_speech_lm(
    model_dir: str | Path, attn_implementation: str = "sdpa", dtype: torch.dtype = torch.float32
) -> PreTrainedModel:
    """A model saved by save_speech_lm (or any causal LM folder), in eval mode."""
    with named_load_errors(model_dir, "speech LM"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attn_implementation, dtype=dtype)
    return model.eval()


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Parameters counted once each (tied embeddings are one tensor)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
