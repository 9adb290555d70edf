from dataclasses import dataclass, field

import pytest

from toolkit.config import ConfigError, apply_overrides, load_config, save_config


@dataclass
class Inner:
    lr: float = 0.1
    name: str = "x"


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    epochs: int = 3
    optional: Inner | None = None


def test_nested_yaml_with_overrides_and_roundtrip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\ninner:\n  lr: 0.5\noptional:\n  name: y\n")
    cfg = load_config(Outer, path, ["inner.name=z", "epochs=7"])
    assert cfg == Outer(inner=Inner(lr=0.5, name="z"), epochs=7, optional=Inner(name="y"))
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Outer, tmp_path / "resolved.yaml") == cfg


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  lrr: 0.5\n")
    with pytest.raises(ConfigError, match=r"c.yaml.inner: unknown key 'lrr' \(known: lr, name\)"):
        load_config(Outer, path)


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\ninner: [1,\n")
    with pytest.raises(ConfigError, match=r"c.yaml:\d+: not valid YAML"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_override_syntax():
    with pytest.raises(ConfigError, match="must look like"):
        apply_overrides({}, ["epochs"])
    assert apply_overrides({}, ["a.b=[1, 2]", "c=true"]) == {"a": {"b": [1, 2]}, "c": True}


def test_float_fields_take_yaml_exponent_strings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  lr: 2e-3\n")
    assert load_config(Outer, path, ["inner.lr=5e-4"]).inner.lr == 5e-4
    assert load_config(Outer, path).inner.lr == 0.002
    with pytest.raises(ConfigError, match="expected a number, got 'fast'"):
        load_config(Outer, path, ["inner.lr=fast"])


def test_override_with_bad_yaml_or_key_is_a_config_error():
    with pytest.raises(ConfigError, match=r"override 'optim.lr=\[1': the value '\[1' is not valid YAML"):
        apply_overrides({}, ["optim.lr=[1"])
    with pytest.raises(ConfigError, match=r"'optim..lr' is not a key"):
        apply_overrides({}, ["optim..lr=1"])
