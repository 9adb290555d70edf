"""Loading a saved model folder with an error that names it: a truncated `model.safetensors` or a broken
`config.json` otherwise surfaces as a bare library exception ("incomplete metadata, file not fully covered")."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def named_load_errors(path: str | Path, what: str) -> Iterator[None]:
    """Turn the errors of reading a damaged model folder into a ValueError naming the folder and what to do."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as e:
        raise ValueError(
            f"{path}: the {what}'s weights cannot be read ({e}); the file is damaged or was cut short: copy it "
            "again, or retrain it"
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the {what}'s config.json is not valid JSON ({e})") from None
