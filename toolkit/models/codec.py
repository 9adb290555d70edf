"""The codec model: a small EnCodec architecture (transformers `EncodecModel`: SEANet encoder/decoder + residual
vector quantiser) built from `CodecModelConfig`. Trained by toolkit/train/codec.py (codebook learning in
toolkit/models/codec_quantizer.py) and saved with `save_pretrained`, so the `encodec` discretizer loads it exactly
like `facebook/encodec_24khz`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class CodecModelConfig:
    """The EncodecConfig options we set (the rest keep transformers' defaults)."""

    sampling_rate: int = 16000
    num_filters: int = 16
    num_residual_layers: int = 1
    upsampling_ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])  # hop 320: 50 Hz at 16 kHz
    hidden_size: int = 64  # dimension of the codes' vectors
    codebook_size: int = 1024
    # kbps; each gives floor(kbps * 1000 / (frame_rate * log2(codebook_size))) codebooks: 0.5 -> 1 ... 4 -> 8
    target_bandwidths: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0])
    num_lstm_layers: int = 1
    use_causal_conv: bool = True  # causal: batched encoding is exactly equal to one-at-a-time (see the discretizer)
    # Divide each input by its RMS before encoding (transformers' `normalize`; decoding multiplies it back). Speech
    # at a quiet level (RMS ~0.05 on the embedded corpus) is swamped by the convolutions' biases at initialisation,
    # and the encoder never learns to pass it on; at unit RMS it does.
    normalize: bool = True
    compress: int = 2
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_growth_rate: int = 2

    def __post_init__(self):
        for name in ("sampling_rate", "num_filters", "hidden_size", "num_lstm_layers", "compress"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if not self.upsampling_ratios or any(not isinstance(r, int) or r < 1 for r in self.upsampling_ratios):
            raise ValueError(
                f"model.upsampling_ratios must be a list of positive integers, got {self.upsampling_ratios}"
            )
        if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"model.codebook_size must be a power of 2, got {self.codebook_size}")
        if not self.target_bandwidths or sorted(self.target_bandwidths) != list(self.target_bandwidths):
            raise ValueError(f"model.target_bandwidths must be an increasing list, got {self.target_bandwidths}")
        self.target_bandwidths = [float(b) for b in self.target_bandwidths]
        per_codebook = self.frame_rate * math.log2(self.codebook_size) / 1000
        if self.target_bandwidths[0] < per_codebook * (1 - 1e-9):
            raise ValueError(
                f"model.target_bandwidths: {self.target_bandwidths[0]:g} kbps is below one codebook "
                f"({per_codebook:g} kbps at {self.frame_rate} frames/s and {self.codebook_size} codes)"
            )

    @property
    def hop_length(self) -> int:
        return int(np.prod(self.upsampling_ratios))

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)  # transformers' rule


def build_codec(cfg: CodecModelConfig):
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(
        sampling_rate=cfg.sampling_rate,
        num_filters=cfg.num_filters,
        num_residual_layers=cfg.num_residual_layers,
        upsampling_ratios=list(cfg.upsampling_ratios),
        hidden_size=cfg.hidden_size,
        codebook_size=cfg.codebook_size,
        target_bandwidths=[float(b) for b in cfg.target_bandwidths],  # strict config: floats only
        num_lstm_layers=cfg.num_lstm_layers,
        use_causal_conv=cfg.use_causal_conv,
        compress=cfg.compress,
        kernel_size=cfg.kernel_size,
        last_kernel_size=cfg.last_kernel_size,
        residual_kernel_size=cfg.residual_kernel_size,
        dilation_growth_rate=cfg.dilation_growth_rate,
        chunk_length_s=None,
        normalize=cfg.normalize,
    )
    return EncodecModel(config)


def init_for_training(model) -> None:
    """Re-initialise every convolution of a fresh codec so that a signal keeps its scale through the network.

    PyTorch's default initialisation (uniform, variance 1 / (3 fan_in)) shrinks a signal at every convolution: at
    initialisation the encoder output varied over time 0.004 against a bias-driven 0.03, i.e. it said nothing about
    its input, and training from there stalled at an input-independent output. Here: normal weights with variance
    1 / fan_in (fan_in of a transposed convolution: in_channels * kernel / stride), zero biases. Measured on a unit-RMS
    utterance: the time variation stays 0.6-1.0 from the first layer to the encoder output, and the decoder output
    has RMS 0.5. Weights are set through the weight-norm parametrisation, so its magnitude and direction agree.
    """
    for module in model.modules():
        if not isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            continue
        weight = module.weight.detach()
        if isinstance(module, torch.nn.ConvTranspose1d):
            fan_in = weight.shape[0] * weight.shape[2] / module.stride[0]
        else:
            fan_in = weight.shape[1] * weight.shape[2]
        with torch.no_grad():
            module.weight = torch.randn_like(weight) / math.sqrt(fan_in)
            if module.bias is not None:
                module.bias.zero_()


def codebook_counts(model) -> list[int]:
    """Codebooks used at each target bandwidth (the model's own rule)."""
    return [int(model.quantizer.get_num_quantizers_for_bandwidth(b)) for b in model.config.target_bandwidths]
