"""Which module implements each discretizer type, and the two calls that dispatch on the type: fit and load.

The modules are named, not imported, here: one is imported when its type is used (MFCC users never import
transformers), and no module of this package imports back into this file, so the package has no import circle.
A new type: its module (see base.py for the contract) and one line in TYPES.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolkit.config import ConfigError, load_yaml
from toolkit.config import from_dict as config_from_dict
from toolkit.discretizers.base import CONFIG_NAME, Discretizer

TYPES = {
    "mfcc_kmeans": "toolkit.discretizers.mfcc_kmeans",
    "ssl_kmeans": "toolkit.discretizers.ssl_kmeans",
    "encodec": "toolkit.discretizers.encodec",
}


def module_for(kind: Any, where: str):
    """The module of discretizer type `kind`; a ConfigError naming `where` for an unknown one."""
    if kind not in TYPES:
        raise ConfigError(f"{where}: unknown discretizer type {kind!r} (known: {', '.join(TYPES)})")
    return importlib.import_module(TYPES[kind])


def fit_discretizer(
    kind: str,
    data_dirs: Sequence[str | Path],
    out_dir: str | Path,
    values: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> None:
    """Fit a discretizer of type `kind` configured by the mapping `values` (YAML options, without `type`)."""
    module = module_for(kind, "type")
    config = config_from_dict(module.Config, values, "config")
    module.fit(data_dirs, out_dir, config, progress=progress)


def load_discretizer(out_dir: str | Path, device: str | None = None) -> Discretizer:
    """Load the discretizer saved in out_dir, whatever its type (read from config.yaml). `device` (cpu, cuda, auto)
    overrides the saved config's for the models that have one (ssl_kmeans, encodec): fit on one machine, dump on
    another. MFCC features are computed on the CPU whatever it says."""
    path = Path(out_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir}: no {CONFIG_NAME}; is this a discretizer made by fit_discretizer?")
    module = module_for(load_yaml(path).get("type"), str(path))
    return module.load(out_dir) if device is None else module.load(out_dir, device=device)
