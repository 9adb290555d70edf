"""What every trainer shares (the speech LM, HuBERT pretraining, distillation, the downstream heads, the codec):
the progress-bar interval, the log file, the per-step seed, and the optimizer: its config (`OptimConfig`, one
validation; a trainer subclasses it only to change defaults) and AdamW with its weight-decay groups.

A trainer imports these from here, never from another trainer.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

# A person watching (a terminal, or a recipe that says one is watching): redraw twice a second; a log file: a line
# every 30 s. Recipes pipe stage output through `tee`, so they export TOOLKIT_INTERACTIVE=1 when a terminal is there.
PROGRESS_INTERVAL_S = 0.5 if sys.stderr.isatty() or os.environ.get("TOOLKIT_INTERACTIVE") == "1" else 30.0


SCHEDULES = ("constant", "linear", "cosine")  # after warmup (toolkit.train.schedule)


@dataclass
class OptimConfig:
    """AdamW, warmup then a schedule, clipping and accumulation: the `optim:` section of every trainer's config."""

    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # not applied to 1-d parameters (norms, biases)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    warmup_steps: int = 100
    schedule: str = "cosine"  # constant | linear | cosine (after warmup)
    final_lr_ratio: float = 0.0  # the schedule decays to lr * final_lr_ratio
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    grad_accum: int = 1  # batches per optimizer step (e.g. to keep the step's batch on fewer GPUs)

    def __post_init__(self):
        if not (self.lr > 0 and self.weight_decay >= 0 and self.warmup_steps >= 0 and self.grad_clip >= 0):
            raise ValueError("optim.lr must be > 0 and optim.weight_decay, warmup_steps, grad_clip >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be constant, linear or cosine, got {self.schedule!r}")
        if not 0 <= self.final_lr_ratio <= 1 or self.grad_accum < 1:
            raise ValueError("optim.final_lr_ratio must be in [0, 1] and optim.grad_accum >= 1")


def setup_logging(out: Path, is_main: bool = True) -> None:
    """Log lines with a time stamp to <out>/train.log and stderr (only the main process of a DDP run writes)."""
    handlers: list[logging.Handler] = []
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(out / "train.log"), logging.StreamHandler()]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers, force=True)


def step_seed(seed: int, step: int) -> int:
    """The seed of one optimizer step's randomness: a resumed run draws what the uninterrupted run drew."""
    return (seed * 1_000_003 + step) % (2**63 - 1)


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters of `model`, from `cfg.optim` (lr, betas, weight_decay). No weight decay on
    norms, biases and (tied) embeddings' 1-d parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
