"""Tiny random speech LMs shared by the decoding tests."""

import torch

from toolkit.models.speech_lm import SpeechLMConfig, build_speech_lm
from toolkit.tokenizers.vocab import VocabLayout

LAYOUT = VocabLayout(text_size=6, speech_size=20)


def rough_model(arch: str, seed: int = 0):
    """A tiny random model with large weights: its argmax varies with the input (the default 0.02 init repeats
    one token forever, which would hide padding and position bugs) and it sometimes emits <text_end>."""
    torch.manual_seed(seed)
    cfg = SpeechLMConfig(arch=arch, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_positions=64)
    model = build_speech_lm(cfg, LAYOUT).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
    return model
