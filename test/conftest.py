"""Shared fixtures: tiny Kaldi data dirs with real (synthetic tone) audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from toolkit.datadir import DataDir, write_data_dir

REPO = Path(__file__).resolve().parents[1]

# Tiny models run several times faster on one thread than on two competing ones, and results stay comparable.
torch.set_num_threads(1)


def tone(seconds: float, sr: int, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def build_data_dir(
    root: Path,
    name: str = "data",
    num_utts: int = 4,
    sr: int = 16000,
    durations: list[float] | None = None,
    subtype: str = "PCM_16",
    ext: str = "wav",
) -> Path:
    """A valid data dir of `num_utts` utterances from two speakers, audio written under root/audio/<name>."""
    audio = root / "audio" / name
    audio.mkdir(parents=True, exist_ok=True)
    durations = durations or [0.5 + 0.25 * i for i in range(num_utts)]
    data = DataDir(tables={n: {} for n in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent", "text.slots")})
    for i, dur in enumerate(durations):
        spk = f"spk{i % 2}"
        utt = f"{spk}-utt{i:03d}"
        path = audio / f"{utt}.{ext}"
        sf.write(path, tone(dur, sr, 200 + 40 * i), sr, subtype=subtype)
        data.tables["wav.scp"][utt] = str(path)
        data.tables["text"][utt] = f"turn on the light number {i}"
        data.tables["utt2spk"][utt] = spk
        data.tables["utt2dur"][utt] = f"{dur:.3f}"
        data.tables["utt2intent"][utt] = "activate|lights|kitchen"
        data.tables["text.slots"][utt] = f"turn on the B-object light E-object number {i}"
    write_data_dir(data, root / name)
    return root / name


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return build_data_dir(tmp_path)


def tiny_bert(folder: Path, words: list[str], hidden: int = 16, positions: int = 32) -> Path:
    """A 2-layer BertModel with an uncased WordPiece tokenizer over `words`, saved with save_pretrained: the
    stand-in for a text teacher or encoder (bert-base-uncased's family, MiniLM's architecture)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(vocab_file=str(vocab), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(
        vocab_size=5 + len(words),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=positions,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder
