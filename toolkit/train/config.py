"""The training configuration (conf/train_*.yaml), as dataclasses; the resolved copy is saved with every run."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.hardware import check_precision
from toolkit.losses.sld import SLDLossConfig
from toolkit.models.speech_lm import SpeechLMConfig
from toolkit.train.engine import OptimConfig


@dataclass
class BatchConfig:
    max_tokens: int = 4000  # padded tokens per batch (longest sequence x number of sequences)
    max_sequences: int | None = None  # optional cap on sequences per batch
    max_len: int = 1024  # training sequences longer than this are skipped
    # Pad every batch to a length that is a multiple of this. On CPU, oneDNN builds and caches its kernels per batch
    # shape; rounding lengths leaves a few dozen shapes instead of hundreds, at the cost of some padding.
    pad_to_multiple: int = 1

    def __post_init__(self):
        if self.pad_to_multiple < 1:
            raise ValueError(f"batching.pad_to_multiple must be >= 1, got {self.pad_to_multiple}")


@dataclass
class DevConfig:
    decode_wer: bool = True  # greedy dev WER after every epoch (the best checkpoint is chosen by it)
    max_utts: int | None = 300  # dev WER on the first N dev utterances, to bound its cost
    max_tokens: int = 8000  # decoding batch budget


@dataclass
class TrainConfig:
    model: SpeechLMConfig = field(default_factory=SpeechLMConfig)
    loss: SLDLossConfig = field(default_factory=SLDLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batching: BatchConfig = field(default_factory=BatchConfig)
    dev: DevConfig = field(default_factory=DevConfig)
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule ends there)
    use_bos: bool = True  # a <bos> gives the first speech token a predictor
    time_mask_p: float = 0.0  # probability of replacing an input token by <mask> during training
    time_mask_scope: str = "all"  # all | speech | release (toolkit/train/augment.py)
    seed: int = 1
    # auto | fp32 | bf16 | fp16 (GPU only). auto: bf16 (fp16 on GPUs without bf16) only where this host runs it
    # natively and faster, else fp32; chosen at start-up by toolkit.hardware and logged with its measured figures.
    precision: str = "auto"
    # torch.compile each training step's forward and loss (not dev decoding): fuses the many small elementwise ops of
    # a small model's step. Needs a C++ compiler on CPU (triton on GPU); without one, training runs uncompiled.
    # auto: compile only where it pays off on this host, decided after timing the first steps (toolkit.train.compiling).
    compile: bool | str = "auto"
    checkpoint_every_steps: int = 200  # plus one at the end of every epoch
    keep_last: int = 2  # checkpoints kept besides the best model
    log_every_steps: int = 50

    def __post_init__(self):
        check_precision(self.precision)
        if self.compile not in (True, False, "auto"):
            raise ValueError(f"compile must be true, false or auto, got {self.compile!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.optim.grad_accum < 1:
            raise ValueError(f"optim.grad_accum must be >= 1, got {self.optim.grad_accum}")
