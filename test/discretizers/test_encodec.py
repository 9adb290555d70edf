import math
import os

import numpy as np
import pytest
import torch

from toolkit.audio import load_audio
from toolkit.bin.dump_units import main as dump_main
from toolkit.config import ConfigError
from toolkit.datadir import load_data_dir
from toolkit.discretizers import encodec
from toolkit.discretizers.registry import fit_discretizer, load_discretizer
from toolkit.fileio import read_table

from conftest import build_data_dir

os.environ["HF_HUB_OFFLINE"] = "1"

HOP = 16  # upsampling_ratios [4, 4]
CODEBOOK = 64  # 6 bits at 1000 frames/s: 6 kbps per codebook, so 12 -> 2 codebooks and 24 -> 4


def make_tiny_model(folder, causal: bool = True, seed: int = 0):
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(
        sampling_rate=16000,
        num_filters=4,
        hidden_size=8,
        upsampling_ratios=[4, 4],
        codebook_size=CODEBOOK,
        target_bandwidths=[12.0, 24.0],
        num_lstm_layers=1,
        use_causal_conv=causal,
    )
    torch.manual_seed(seed)
    model = EncodecModel(config)
    # A fresh EncodecModel has all-zero codebooks (every code would be 0): give them random vectors on the scale of
    # the encoder's output, so that many codes are used.
    with torch.no_grad():
        scale = model.encoder(torch.randn(1, 1, 1600) * 0.1).std()
        for layer in model.quantizer.layers:
            layer.codebook.embed.copy_(torch.randn_like(layer.codebook.embed) * scale)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("encodec") / "model")


def noise(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))).astype(np.float32)


def test_serialize_round_trip_and_offsets():
    codes = np.random.default_rng(0).integers(0, 8, size=(3, 5))
    units = encodec.serialize_codes(codes, 8)
    assert units.dtype == np.int64 and units.shape == (15,)
    # frame by frame, codebook c in block [8c, 8c + 8)
    assert units[:3].tolist() == [codes[0, 0], 8 + codes[1, 0], 16 + codes[2, 0]]
    assert all(8 * c <= u < 8 * (c + 1) for i, u in enumerate(units) for c in [i % 3])
    np.testing.assert_array_equal(encodec.deserialize_units(units, 3, 8), codes)


def test_deserialize_rejects_bad_length_and_out_of_block_units():
    with pytest.raises(ValueError, match="not a whole number of frames of 2 codebooks"):
        encodec.deserialize_units([0, 9, 1], 2, 8)
    with pytest.raises(ValueError, match="unit 3 at frame 1 is outside codebook 1's block \\[8, 16\\)"):
        encodec.deserialize_units([0, 9, 1, 3], 2, 8)
    with pytest.raises(ValueError, match="codes must lie in"):
        encodec.serialize_codes(np.array([[8]]), 8)


def test_bandwidth_picks_codebooks_and_keep_codebooks(tiny):
    model = encodec.load_model(str(tiny), torch.device("cpu"))
    assert encodec.codebooks_for_bandwidth(model, 12) == 2
    assert encodec.codebooks_for_bandwidth(model, 24.0) == 4
    full = encodec.Encodec(encodec.Config(model=str(tiny), bandwidth=24), model)
    assert (full.num_codebooks, full.num_units, full.frame_rate, full.sample_rate) == (4, 256, 1000.0, 16000)
    kept = encodec.Encodec(encodec.Config(model=str(tiny), bandwidth=24, keep_codebooks=2), model)
    assert kept.num_units == 128
    wave = noise(0.1)
    units_full, units_kept = full.encode(wave, 16000), kept.encode(wave, 16000)
    assert units_full.size == 4 * 100 and units_kept.size == 2 * 100
    codes = encodec.deserialize_units(units_full, 4, CODEBOOK)
    np.testing.assert_array_equal(encodec.deserialize_units(units_kept, 2, CODEBOOK), codes[:2])
    assert len(set(codes[0].tolist())) > 1  # random codebooks: not all the same code
    with pytest.raises(ValueError, match="keep_codebooks=3 but bandwidth 12 kbps gives only 2"):
        encodec.Encodec(encodec.Config(model=str(tiny), bandwidth=12, keep_codebooks=3), model)


def test_unknown_bandwidth_lists_the_allowed_ones(tiny, tmp_path):
    with pytest.raises(ValueError, match="6 kbps is not a bandwidth of this model; allowed: 12, 24"):
        fit_discretizer("encodec", [], tmp_path / "d", {"model": str(tiny), "bandwidth": 6})
    assert not (tmp_path / "d" / "config.yaml").exists()


def test_bad_config_and_missing_model(tmp_path):
    with pytest.raises(ConfigError, match="keep_codebooks must be >= 1"):
        fit_discretizer("encodec", [], tmp_path / "d", {"model": "x", "keep_codebooks": 0})
    with pytest.raises(FileNotFoundError, match="no EnCodec model folder here"):
        fit_discretizer("encodec", [], tmp_path / "d", {"model": str(tmp_path / "nothing")})


@pytest.mark.parametrize("causal", [True, False])
def test_encode_batch_equals_encode(tmp_path, causal):
    folder = make_tiny_model(tmp_path / "model", causal=causal, seed=1)
    disc = encodec.Encodec(encodec.Config(model=str(folder), bandwidth=24), encodec.load_model(str(folder), "cpu"))
    assert disc.batch_exact == causal
    waves = [noise(s, seed=i) for i, s in enumerate([0.1, 0.1003, 0.125, 0.0598, 0.2, 0.1])]
    batch = disc.encode_batch(waves, 16000)
    for wave, units in zip(waves, batch, strict=True):
        assert units.size == 4 * math.ceil(len(wave) / HOP)
        np.testing.assert_array_equal(units, disc.encode(wave, 16000))
    # resampling: 8 kHz input is brought to the model's 16 kHz
    assert disc.encode(noise(0.1, sr=8000), 8000).size == 4 * 100


def test_fit_load_encode_and_dump_units(tiny, tmp_path, monkeypatch):
    data = build_data_dir(tmp_path, num_utts=3, sr=8000, durations=[0.2, 0.25, 0.3])
    out = tmp_path / "exp"
    monkeypatch.chdir(tiny.parent)  # a relative model folder is saved as an absolute path
    fit_discretizer("encodec", [data], out, {"model": tiny.name, "bandwidth": 12.0})
    monkeypatch.chdir(tmp_path)
    disc = load_discretizer(out)
    assert disc.config.model == str(tiny) and disc.num_units == 128 and disc.frame_rate == 1000.0
    info = (out / "encodec_info.yaml").read_text()
    assert "codebook_size: 64" in info and "num_codebooks: 2" in info and "sample_rate: 16000" in info
    argv = ["--discretizer", str(out), "--data", str(data), "--out", str(tmp_path / "units"), "--no-progress"]
    assert dump_main(argv + ["--batch-seconds", "0.5"]) == 0
    units = read_table(tmp_path / "units")
    loaded = load_data_dir(data)
    assert list(units) == sorted(loaded.utt_ids)
    for utt, line in units.items():
        wave, sr = load_audio(loaded["wav.scp"][utt])
        expected = disc.encode(wave, sr)
        assert line == " ".join(map(str, expected.tolist()))
        assert expected.size == 2 * math.ceil(len(wave) * 2 / HOP)
        assert expected.max() < 128
