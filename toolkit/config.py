"""YAML configs mapped onto (nested) dataclasses, with `key.sub=value` overrides from the command line.

Unknown keys are errors that name the key and the file: a typo in a config must never be silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from toolkit.fileio import atomic_write

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a field's type hint (the simple types configs use) and return it, converted if needed."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    # bool is an int subclass in Python; `num_units: true` is a mistake, not 1.
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        # YAML 1.1 reads `2e-3` (no dot) as a string; a float field takes it as the number it means.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is list and not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    return value


def from_dict(cls: type[T], values: Mapping[str, Any] | None, where: str = "config") -> T:
    """Build dataclass `cls` from a (YAML) mapping; missing keys take the defaults, unknown keys are an error.

    Nested dataclass fields take nested mappings. A dataclass's own __post_init__ checks value ranges; a ValueError
    it raises is re-raised as a ConfigError naming `where`.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of options, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(fields))})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def to_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, value = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override '{text}': '{key}' is not a key like optim.lr")
    try:
        return keys, yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"override '{text}': the value '{value}' is not valid YAML ({getattr(e, 'problem', e)}); "
            "quote text and close brackets, e.g. --set optim.betas='[0.9, 0.98]'"
        ) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set nested keys from `a.b=value` strings (values parsed as YAML: 3, 0.1, true, [1, 2], text)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{text}': '{key}' is not a section")
        node[keys[-1]] = value
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    data = load_yaml(path) if path else {}
    apply_overrides(data, overrides or [])
    return from_dict(cls, data, str(path) if path else "config")


def save_config(obj, path: str | Path) -> None:
    """The fully resolved config, saved next to what it produced."""
    with atomic_write(path) as f:
        yaml.safe_dump(to_dict(obj), f, sort_keys=False)
