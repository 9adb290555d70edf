"""The decoding options (conf/decode.yaml) and the one function that turns prompts into text-token hypotheses.

Stage 8 (`toolkit.bin.decode`, prompts from token dirs) and inference from audio (`toolkit.inference.speech2text`)
both call `decode_prompts`, so the same model, prompts and config give the same hypotheses on either path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.decode.beam import beam_search
from toolkit.decode.greedy import greedy_decode, model_max_positions
from toolkit.hardware import autocast, check_precision
from toolkit.tokenizers.vocab import VocabLayout


@dataclass
class DecodeConfig:
    method: str = "greedy"  # greedy | beam
    beam_size: int = 5
    length_penalty: float = 1.0
    max_tokens: int = 8000  # prompt tokens per decoding batch
    text_only: bool = True  # restrict outputs to text tokens and <text_end> (our choice; false = plain argmax)
    # auto | fp32 | bf16 | fp16 (GPU). auto: bf16 (fp16) on GPUs that run it natively; fp32 on CPUs, where decoding
    # the small models in bf16 is not faster (toolkit.hardware.choose_precision)
    precision: str = "auto"

    def __post_init__(self):
        if self.method not in ("greedy", "beam"):
            raise ValueError(f"method must be greedy or beam, got '{self.method}'")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {self.beam_size}")
        check_precision(self.precision)


def too_long(model, prompts: Sequence[Sequence[int]]) -> set[int]:
    """Indices of the prompts that fill the model's positions (GPT-2: 1024) and so leave no room for a transcript."""
    limit = model_max_positions(model)
    return {i for i, p in enumerate(prompts) if limit is not None and len(p) >= limit}


def decode_prompts(
    model, prompts: Sequence[Sequence[int]], layout: VocabLayout, cfg: DecodeConfig, precision: str, device
) -> list[list[int]]:
    """Hypotheses (vocabulary ids of the text block, without <text_end>) in the order of `prompts`.

    A prompt too long for the model (`too_long`) gets an empty hypothesis instead of stopping the whole batch;
    callers warn about those. `precision` is a resolved one (fp32, bf16, fp16; toolkit.hardware.choose_precision).
    """
    skip = too_long(model, prompts)
    keep = [i for i in range(len(prompts)) if i not in skip]
    kept = [prompts[i] for i in keep]
    with autocast(precision, device):
        if cfg.method == "greedy":
            decoded = greedy_decode(model, kept, layout, max_tokens=cfg.max_tokens, text_only=cfg.text_only)
        else:
            decoded = beam_search(
                model, kept, layout, beam_size=cfg.beam_size, length_penalty=cfg.length_penalty, text_only=cfg.text_only
            )
    hyps: list[list[int]] = [[] for _ in prompts]
    for i, h in zip(keep, decoded, strict=True):
        hyps[i] = h
    return hyps
