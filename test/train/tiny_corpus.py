"""A tiny learnable speech-text corpus for training tests: each word is spoken as a fixed unit pattern with noise."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from toolkit.bin.make_sequences import main as make_sequences_main
from toolkit.bin.train_tokenizers import main as train_tokenizers_main
from toolkit.fileio import write_table

WORDS = ["turn", "on", "off", "the", "light", "music", "in", "kitchen", "bedroom", "please"]
TINY_MODEL = {"arch": "llama", "hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}


def write_split(root: Path, name: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    patterns = {w: [rng.randrange(20) for _ in range(3)] for w in WORDS}  # the same "pronunciation" in every split
    rng = random.Random(seed + (0 if name == "train" else 1))
    texts, units = {}, {}
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
        utt = f"spk{i % 3}-{name}{i:04d}"
        texts[utt] = " ".join(words)
        units[utt] = " ".join(str(u) for w in words for u in patterns[w] + [rng.randrange(20)])
    write_table(root / name / "text", texts)
    write_table(root / name / "units", units)


def build(root: Path, train_utts: int = 300, dev_utts: int = 20) -> dict[str, Path]:
    write_split(root, "train", train_utts, seed=3)
    write_split(root, "dev", dev_utts, seed=3)
    config = root / "tokenizer.yaml"
    config.write_text(yaml.safe_dump({"text": {"kind": "char"}, "units": {"num_units": 20}}))
    tokenizers = root / "tokenizers"
    assert (
        train_tokenizers_main(
            [
                "--config",
                str(config),
                "--text",
                str(root / "train/text"),
                "--units",
                str(root / "train/units"),
                "--out",
                str(tokenizers),
            ]
        )
        == 0
    )
    for name in ("train", "dev"):
        assert (
            make_sequences_main(
                [
                    "--tokenizers",
                    str(tokenizers),
                    "--units",
                    str(root / name / "units"),
                    "--text",
                    str(root / name / "text"),
                    "--out",
                    str(root / "tokens" / name),
                ]
            )
            == 0
        )
    return {"train": root / "tokens/train", "dev": root / "tokens/dev", "tokenizers": tokenizers}


def train_config(path: Path, **overrides) -> Path:
    config = {
        "model": TINY_MODEL,
        "loss": {"kind": "sld"},
        "optim": {"lr": 1e-2, "warmup_steps": 10},
        "batching": {"max_tokens": 600},
        "dev": {"max_utts": 10},
        "epochs": 3,
        "checkpoint_every_steps": 4,
        "log_every_steps": 5,
        "time_mask_p": 0.1,
        # Tests compare losses and weights between runs: fp32 keeps them the same on every host (auto would pick
        # bf16 where it is native). test_train_loop tests `auto` itself.
        "precision": "fp32",
    }
    for key, value in overrides.items():
        config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path
