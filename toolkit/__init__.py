"""Discrete-token decoder-only ASR (SLD) and text-to-speech knowledge distillation (PAD) recipes."""

__version__ = "0.1.0"
