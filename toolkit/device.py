"""Which torch device a command runs on: the `--device` option of every entry point, and `device:` in configs.

`auto` means cuda when this machine has one, else cpu. A CUDA device on a machine without CUDA is refused up front
with a clear message, not by torch halfway through loading a model.
"""

from __future__ import annotations

import argparse


def resolve_device(name: str) -> str:
    """cpu, cuda, cuda:N (or any other device torch knows), or auto. Raises ValueError for a device that torch does
    not know or that this machine lacks."""
    import torch  # not at the top: importing the MFCC discretizer must stay light

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device '{name}': use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}': CUDA is not available on this machine (use cpu or auto)")
    return name


def device_option(parser: argparse.ArgumentParser, name: str) -> str:
    """resolve_device for a command-line option: a bad value exits through parser.error (usage line, status 2)."""
    try:
        return resolve_device(name)
    except ValueError as err:
        parser.error(f"--device: {err}")


def add_device_option(parser: argparse.ArgumentParser, what: str = "") -> None:
    """The `--device` option every entry point takes, with the one default: auto."""
    parser.add_argument(
        "--device", default="auto", help=f"cpu, cuda, cuda:N or auto{what} (default: auto, cuda when available)"
    )
