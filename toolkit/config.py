"""YAML configs mapped onto (nested) dataclasses, with `key.sub=value` overrides from the command line.

Unknown keys are errors that name the key and the file: a typo in a config must never be silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from toolkit.fileio import atomic_write

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _dataclass_type(annotation) -> type | None:
    """The dataclass inside an annotation such as `Foo` or `Foo | None`, if any."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass `cls` from a dict, recursing into dataclass-typed fields."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        inner = _dataclass_type(hints[name])
        kwargs[name] = from_dict(inner, value, f"{where}.{name}") if inner and isinstance(value, dict) else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def to_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


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
