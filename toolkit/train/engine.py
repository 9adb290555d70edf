"""What every trainer shares (the speech LM, HuBERT pretraining, distillation, the downstream heads, the codec):
the progress-bar interval, the log file, the per-step seed and the AdamW optimizer with its weight-decay groups.

A trainer imports these from here, never from another trainer.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch

# A person watching (a terminal, or a recipe that says one is watching): redraw twice a second; a log file: a line
# every 30 s. Recipes pipe stage output through `tee`, so they export TOOLKIT_INTERACTIVE=1 when a terminal is there.
PROGRESS_INTERVAL_S = 0.5 if sys.stderr.isatty() or os.environ.get("TOOLKIT_INTERACTIVE") == "1" else 30.0


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
