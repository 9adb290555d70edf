"""Dry runs of the LibriSpeech recipe's configs (egs/librispeech/asr1/conf: the SLD paper's setup).

Every conf/*.yaml and conf/discretizer/*.yaml is loaded into its dataclass and does one unit of its stage's work
through the entry point asr.sh calls, on tiny data, with the hub models it names replaced by tiny random models of the
same families built here (STAND_INS): HuBERT-Large and WavLM-Large (24 layers, stable layer norm, layer-normalised
CNN, as the Large models; 16 dims), EnCodec 24 kHz (hop 320, 1024 codes per codebook, the real model's bandwidths;
8 dims) and GPT-2 (1024 positions; 16 dims). Every other value is kept, except these overrides (and why):

    discretizers  device=cpu, kmeans.device=cpu      the configs ask for cuda; tests run on a CPU
                  num_units=8                        k-means of 2000 clusters needs more frames than tiny data has
    tokenizers    text.vocab_size, units.vocab_size  SentencePiece cannot learn 5000/6000/16000 pieces from a few
                  (units.num_units for encodec)      sentences; 8192 encodec units need a vocabulary above 8192
    training      max_steps=1                        one optimizer step (the batch sizes fit the tiny set as they are)

Configs are found by glob, so a new one is covered without editing this file. No downloads (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.bin.decode import main as decode_main
from toolkit.bin.fit_discretizer import main as fit_main
from toolkit.bin.make_sequences import main as make_sequences_main
from toolkit.bin.train import main as train_main
from toolkit.bin.train_tokenizers import TokenizersConfig
from toolkit.bin.train_tokenizers import main as train_tokenizers_main
from toolkit.config import load_config, load_yaml
from toolkit.decode.search import DecodeConfig
from toolkit.discretizers.registry import load_discretizer
from toolkit.fileio import read_table, write_table
from toolkit.train.checkpoint import list_checkpoints
from toolkit.train.config import TrainConfig

from conftest import build_data_dir

os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "egs/librispeech/asr1/conf"
DISCRETIZERS = sorted(CONF.glob("discretizer/*.yaml"))
TRAIN_CONFIGS = sorted(CONF.glob("train*.yaml"))
TOKENIZER_CONFIGS = sorted(CONF.glob("tokenizer*.yaml"))
DECODE_CONFIGS = sorted(CONF.glob("decode*.yaml"))
# The hub models the configs name, and the builder of the tiny stand-in of each.
STAND_INS = {
    "facebook/hubert-large-ll60k": "hubert_large",
    "microsoft/wavlm-large": "wavlm_large",
    "facebook/encodec_24khz": "encodec_24khz",
    "gpt2-medium": "gpt2",
}
DISCRETIZER_OVERRIDES = {"ssl_kmeans": ["device=cpu", "kmeans.device=cpu", "num_units=8"], "encodec": ["device=cpu"]}
TOKENIZER_OVERRIDES = ["text.vocab_size=30", "units.vocab_size=45"]
WORDS = "HE SAID IT IS THE LIGHT OF A NEW DAY AND THEY WENT HOME TOGETHER".split()
NUM_UNITS = 30  # the tiny corpus's unit inventory (k-means units, as conf/tokenizer.yaml expects)


def ids(path: Path) -> str:
    return str(path.relative_to(CONF))


# ---- tiny stand-ins for the hub models ----


def make_ssl_large(folder: Path, family: str) -> Path:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    config_cls, model_cls = (HubertConfig, HubertModel) if family == "hubert" else (WavLMConfig, WavLMModel)
    config = config_cls(
        hidden_size=16,
        num_hidden_layers=24,  # the configs read layer 23
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(0)
    model_cls(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


def make_encodec(folder: Path) -> Path:
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(
        sampling_rate=24000,
        upsampling_ratios=[8, 5, 4, 2],  # hop 320: 75 frames/s, as facebook/encodec_24khz
        codebook_size=1024,
        target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
        num_filters=4,
        hidden_size=8,
        num_lstm_layers=1,
    )
    torch.manual_seed(0)
    model = EncodecModel(config)
    with torch.no_grad():  # a fresh model's codebooks are all zero: every code would be 0
        scale = model.encoder(torch.randn(1, 1, 3200) * 0.1).std()
        for layer in model.quantizer.layers:
            layer.codebook.embed.copy_(torch.randn_like(layer.codebook.embed) * scale)
    model.save_pretrained(folder)
    return folder


def make_gpt2(folder: Path) -> Path:
    """A GPT-2 with its own byte-level BPE tokenizer (the text tokenizer of conf/tokenizer*.yaml is the LM's own)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 3, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    end = "<|endoftext|>"
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=end, eos_token=end, unk_token=end)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=16, n_layer=2, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("librispeech_models")
    return {
        "hubert_large": make_ssl_large(root / "hubert", "hubert"),
        "wavlm_large": make_ssl_large(root / "wavlm", "wavlm"),
        "encodec_24khz": make_encodec(root / "encodec"),
        "gpt2": make_gpt2(root / "gpt2"),
    }


def stand_in(models, name: str) -> str:
    if name not in STAND_INS:
        pytest.fail(f"no tiny stand-in for the hub model '{name}': add one to STAND_INS")
    return str(models[STAND_INS[name]])


# ---- stages 4-5: discretizers ----


@pytest.mark.parametrize("path", DISCRETIZERS, ids=ids)
def test_discretizer_config_fits_and_encodes(models, tmp_path, path):
    values = load_yaml(path)
    data = build_data_dir(tmp_path, "train", num_utts=6, durations=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    out = tmp_path / "discretizer"
    argv = ["--config", str(path), "--data", str(data), "--out", str(out), "--no-progress", "--threads", "1"]
    argv += ["--set", f"model={stand_in(models, values['model'])}"]
    for override in DISCRETIZER_OVERRIDES[values["type"]]:
        argv += ["--set", override]
    assert fit_main(argv) == 0
    saved = load_yaml(out / "config.yaml")
    overridden = {o.split("=")[0] for o in DISCRETIZER_OVERRIDES[values["type"]]} | {"model"}
    for key, value in values.items():  # every other value as the recipe has it
        if key == "kmeans":
            assert {k: saved[key][k] for k in value if f"kmeans.{k}" not in overridden} == {
                k: v for k, v in value.items() if f"kmeans.{k}" not in overridden
            }
        elif key not in overridden:
            assert saved[key] == value, key
    discretizer = load_discretizer(out)
    wave = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    units = discretizer.encode(wave, 16000)
    assert len(units) > 0 and 0 <= units.min() and units.max() < discretizer.num_units
    if values["type"] == "encodec":
        assert discretizer.num_units == 8 * 1024  # 6 kbps: 8 codebooks of 1024, as conf/tokenizer_encodec.yaml says


# ---- stages 6-8: tokenizers, the speech-text LM, decoding ----


def write_split(root: Path, name: str, count: int, seed: int) -> None:
    """Kaldi text (upper case, as LibriSpeech) and units (`uttid u1 u2 ...`, ids < NUM_UNITS) of a tiny split."""
    rng = random.Random(seed)
    texts, units = {}, {}
    for i in range(count):
        utt = f"{19 + i % 3}-198-{name}{i:04d}"
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        texts[utt] = " ".join(words)
        units[utt] = " ".join(str(rng.randrange(NUM_UNITS)) for _ in range(4 * len(words)))
    folder = root / name
    write_table(folder / "text", texts)
    write_table(folder / "units", units)


def train_tokenizers(root: Path, config: Path, out: Path, models, extra: tuple[str, ...] = ()) -> int:
    argv = ["--config", str(config), "--text", str(root / "train/text"), "--units", str(root / "train/units")]
    argv += ["--out", str(out)]
    pretrained = load_config(TokenizersConfig, config).text.pretrained
    if pretrained:
        extra = (*extra, f"text.pretrained={stand_in(models, pretrained)}")
    for override in [*TOKENIZER_OVERRIDES, *extra]:
        argv += ["--set", override]
    return train_tokenizers_main(argv)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, models):
    """Token dirs of a tiny train/dev pair, tokenized with the recipe's own conf/tokenizer.yaml (sizes lowered)."""
    root = tmp_path_factory.mktemp("librispeech_tokens")
    write_split(root, "train", 40, seed=1)
    write_split(root, "dev", 4, seed=2)
    assert train_tokenizers(root, CONF / "tokenizer.yaml", root / "tokenizers", models) == 0
    for name in ("train", "dev"):
        argv = ["--tokenizers", str(root / "tokenizers"), "--units", str(root / name / "units")]
        argv += ["--text", str(root / name / "text"), "--out", str(root / "tokens" / name)]
        assert make_sequences_main(argv) == 0
    return {"root": root, "tokenizers": root / "tokenizers", "train": root / "tokens/train", "dev": root / "tokens/dev"}


@pytest.mark.parametrize("path", TOKENIZER_CONFIGS, ids=ids)
def test_tokenizer_config_trains(models, corpus, tmp_path, path):
    cfg = load_config(TokenizersConfig, path)
    extra = ()
    if cfg.units.num_units is not None and cfg.units.num_units > NUM_UNITS:
        extra = (f"units.num_units={NUM_UNITS}",)  # EnCodec's 8192 ids (see the module docstring)
    assert train_tokenizers(corpus["root"], path, tmp_path / "tokenizers", models, extra) == 0
    saved = load_yaml(tmp_path / "tokenizers/config.yaml")
    assert saved["text"]["kind"] == cfg.text.kind and saved["units"]["subwords"] == cfg.units.subwords
    assert saved["units"]["dedup"] == cfg.units.dedup
    assert json.loads((tmp_path / "tokenizers/vocab.json").read_text())


def train_argv(corpus, config: Path, out: Path, models) -> list[str]:
    cfg = load_config(TrainConfig, config)
    argv = ["--config", str(config), "--train", str(corpus["train"]), "--valid", str(corpus["dev"])]
    argv += ["--tokenizers", str(corpus["tokenizers"]), "--out", str(out), "--device", "cpu", "--threads", "1"]
    argv += ["--set", "max_steps=1"]
    if cfg.model.init_from:
        argv += ["--set", f"model.init_from={stand_in(models, cfg.model.init_from)}"]
    return argv


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=ids)
def test_train_config_trains_one_step(models, corpus, tmp_path, path):
    out = tmp_path / "run"
    assert train_main(train_argv(corpus, path, out, models)) == 0
    saved = load_yaml(out / "config.yaml")
    values = load_yaml(path)
    assert saved["loss"] == {**saved["loss"], **values["loss"]} and saved["optim"] == {
        **saved["optim"],
        **values["optim"],
    }
    assert saved["max_steps"] == 1 and (out / "best").is_dir()
    _, last = list_checkpoints(out / "checkpoints")[-1]
    assert torch.load(last, weights_only=False)["progress"]["step"] == 1


@pytest.fixture(scope="module")
def trained(models, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("librispeech_run") / "run"
    assert train_main(train_argv(corpus, TRAIN_CONFIGS[0], out, models)) == 0
    return out


@pytest.mark.parametrize("path", DECODE_CONFIGS, ids=ids)
def test_decode_config_decodes(corpus, trained, tmp_path, path):
    load_config(DecodeConfig, path)
    out = tmp_path / "decode"
    argv = ["--exp", str(trained), "--tokens", str(corpus["dev"]), "--config", str(path), "--out", str(out)]
    assert decode_main([*argv, "--device", "cpu"]) == 0
    hyps = read_table(out / "text", allow_empty_value=True)
    assert sorted(hyps) == sorted(read_table(corpus["root"] / "dev/text"))
