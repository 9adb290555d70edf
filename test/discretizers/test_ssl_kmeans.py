import os

import numpy as np
import pytest
import torch
import yaml
from test_ssl_features import make_tiny_model

from toolkit.audio import load_audio
from toolkit.bin.dump_units import main as dump_main
from toolkit.config import ConfigError
from toolkit.datadir import load_data_dir
from toolkit.discretizers import Discretizer, fit_discretizer, load_discretizer, ssl_kmeans
from toolkit.discretizers.kmeans import load_centers
from toolkit.fileio import read_table

from conftest import build_data_dir

os.environ["HF_HUB_OFFLINE"] = "1"

KMEANS = {"batch_size": 64, "n_init": 2, "max_iter": 3}
DURATIONS = [0.5, 0.8, 1.1, 1.4, 0.65, 0.95]


def tiny_options(model: str, **extra) -> dict:
    return {"model": model, "layer": 2, "num_units": 6, "fit_fraction": 1.0, "kmeans": KMEANS, **extra}


def waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.normal(size=n)).astype(np.float32) for n in (16000, 8000, 24160, 4000, 325)]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl_kmeans")
    model = make_tiny_model(root / "model", "hubert_stable")
    data = build_data_dir(root, num_utts=6, durations=DURATIONS)
    fit_discretizer("ssl_kmeans", [data], root / "exp", tiny_options(model))
    return root, data, model


def test_fit_saves_state_and_resolved_config(fitted):
    root, data, model = fitted
    exp = root / "exp"
    assert sorted(p.name for p in exp.iterdir()) == ["centers.npy", "config.yaml", "fit_info.yaml"]  # no scratch
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert list(saved)[0] == "type" and saved["type"] == "ssl_kmeans"
    assert saved["model"] == model and saved["layer"] == 2 and saved["num_units"] == 6
    assert saved["normalize"] is None and saved["chunk_seconds"] == 30.0 and saved["kmeans"]["n_init"] == 2
    info = yaml.safe_load((exp / "fit_info.yaml").read_text())
    # 50 frames/s: (samples - 325) // 320 + 1 per utterance
    assert info["utterances"] == 6 and info["frames"] == sum((round(d * 16000) - 325) // 320 + 1 for d in DURATIONS)
    assert info["model_class"] == "HubertModel" and info["normalize"] is True and info["attention_mask"] is True
    assert info["feature_cache"] == "off" and info["dim"] == 32


def test_encode_gives_units_in_range_one_per_frame(fitted):
    disc = load_discretizer(fitted[0] / "exp")
    assert isinstance(disc, Discretizer) and isinstance(disc, ssl_kmeans.SSLKmeans)
    assert disc.num_units == 6 and disc.frame_rate == 50.0 and disc.sample_rate == 16000
    units = [disc.encode(w, 16000) for w in waves()]
    assert [u.shape[0] for u in units] == [49, 24, 75, 12, 1]
    assert all(u.dtype == np.int64 and u.min() >= 0 and u.max() < 6 for u in units)
    assert len(set(np.concatenate(units).tolist())) > 1
    assert disc.encode(np.zeros(300, np.float32), 16000).shape == (0,)  # shorter than one frame
    with pytest.raises(ValueError, match="1-D"):
        disc.encode(np.zeros((2, 800), np.float32), 16000)


def test_encode_batch_equals_encode(fitted):
    disc = load_discretizer(fitted[0] / "exp")
    batch = disc.encode_batch(waves(1), 16000)
    for wave, units in zip(waves(1), batch, strict=True):
        assert np.array_equal(units, disc.encode(wave, 16000))
    assert disc.encode_batch([], 16000) == []
    # other rates are resampled to the model's
    assert disc.encode(waves()[0][::2].copy(), 8000).shape == (49,)


def test_assignment_is_the_nearest_centre(fitted):
    disc = load_discretizer(fitted[0] / "exp")
    centers = load_centers(fitted[0] / "exp" / "centers.npy")
    feats = disc.extractor.extract(waves(2))
    brute = [torch.cdist(f, centers).argmin(dim=1).numpy() for f in feats]
    units = disc.encode_batch(waves(2), 16000)
    assert all(np.array_equal(a, b) for a, b in zip(units, brute, strict=True))


def test_dump_units_encodes_a_data_dir(fitted, tmp_path):
    root, data, _ = fitted
    out = tmp_path / "units.txt"
    argv = ["--discretizer", str(root / "exp"), "--data", str(data), "--out", str(out), "--no-progress"]
    assert dump_main(argv + ["--batch-seconds", "2"]) == 0
    units = read_table(out)
    loaded = load_data_dir(data)
    disc = load_discretizer(root / "exp")
    assert sorted(units) == sorted(loaded.utt_ids)
    for utt in loaded.utt_ids:
        wave, sr = load_audio(loaded["wav.scp"][utt])
        assert units[utt].split() == [str(u) for u in disc.encode(wave, sr)]


def test_feature_cache_is_written_and_reused(fitted, tmp_path):
    root, data, model = fitted
    options = tiny_options(model, feature_cache=True, max_fit_frames=150)
    fit_discretizer("ssl_kmeans", [data], tmp_path / "exp", options)
    features = tmp_path / "exp" / "features"
    assert (features / "feats.scp").is_file() and (features / "feats.ark").is_file()
    first = load_centers(tmp_path / "exp" / "centers.npy")
    info = yaml.safe_load((tmp_path / "exp" / "fit_info.yaml").read_text())
    assert info["feature_cache"] == "written" and info["frames"] == 150
    scp = (features / "feats.scp").read_text()
    fit_discretizer("ssl_kmeans", [data], tmp_path / "exp", options)
    info = yaml.safe_load((tmp_path / "exp" / "fit_info.yaml").read_text())
    assert info["feature_cache"] == "reused" and info["frames"] == 150 and info["utterances"] < 6
    assert torch.equal(first, load_centers(tmp_path / "exp" / "centers.npy"))
    assert (features / "feats.scp").read_text() == scp
    # the same fit without a cache gives the same centres; another layer does not reuse the cache
    fit_discretizer("ssl_kmeans", [data], tmp_path / "nocache", {**options, "feature_cache": False})
    assert torch.equal(first, load_centers(tmp_path / "nocache" / "centers.npy"))
    fit_discretizer("ssl_kmeans", [data], tmp_path / "exp", {**options, "layer": 1})
    assert yaml.safe_load((tmp_path / "exp" / "fit_info.yaml").read_text())["feature_cache"] == "written"


def test_config_errors_are_named(fitted, tmp_path):
    root, data, model = fitted
    with pytest.raises(FileNotFoundError, match=r"model folder \./models/missing does not exist"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "a", tiny_options("./models/missing"))
    with pytest.raises(ConfigError, match="model is required"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "b", {"layer": 3})
    with pytest.raises(ConfigError, match="layer is required"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "c", {"model": model})
    with pytest.raises(ValueError, match=r"layer 9 is out of range for .*model \(HubertModel\), which has 3"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "d", tiny_options(model, layer=9))
    with pytest.raises(ConfigError, match=r"config\.chunk_seconds: expected a number"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "e", tiny_options(model, chunk_seconds="long"))
    with pytest.raises(ValueError, match="fewer than num_units=500"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "f", tiny_options(model, num_units=500))
    assert not (tmp_path / "f" / "config.yaml").exists()


def test_utterance_cmvn_numpy_and_torch():
    rng = np.random.default_rng(0)
    feats = (rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5] + [10, -3, 0, 2, 7]).astype(np.float32)
    feats[:, 4] = 7.0  # a constant column
    out = ssl_kmeans.utterance_cmvn(feats)
    assert np.allclose(out[:, :4].mean(0), 0, atol=1e-5) and np.allclose(out[:, :4].std(0), 1, atol=1e-4)
    assert np.all(out[:, 4] == 0)
    assert np.allclose(ssl_kmeans.utterance_cmvn(torch.from_numpy(feats)).numpy(), out, atol=1e-5)


def test_feature_norm_utterance_is_used_in_fit_and_encoding(fitted, tmp_path):
    root, data, model = fitted
    fit_discretizer("ssl_kmeans", [data], tmp_path / "cmvn", tiny_options(model, feature_norm="utterance"))
    info = yaml.safe_load((tmp_path / "cmvn" / "fit_info.yaml").read_text())
    assert info["feature_norm"] == "utterance"
    centers = load_centers(tmp_path / "cmvn" / "centers.npy")
    # Centres of normalised features: every dimension near zero mean, unlike the raw features' centres.
    assert np.abs(centers.numpy().mean(0)).max() < 1.0
    disc = load_discretizer(tmp_path / "cmvn")
    feats = disc.extractor.extract(waves(2))
    brute = [torch.cdist(ssl_kmeans.utterance_cmvn(f), centers).argmin(dim=1).numpy() for f in feats]
    units = disc.encode_batch(waves(2), 16000)
    assert all(np.array_equal(a, b) for a, b in zip(units, brute, strict=True))
    with pytest.raises(ConfigError, match="feature_norm must be one of none, utterance"):
        fit_discretizer("ssl_kmeans", [data], tmp_path / "bad", tiny_options(model, feature_norm="speaker"))


def test_device_given_at_load_overrides_the_fitted_one(fitted, tmp_path, capsys):
    """Fitted with device: cuda (say, on a GPU box), dumped on a CPU machine with --device cpu; and a CUDA device
    asked for where there is none is a clear error, not a traceback."""
    import shutil

    root, data, _ = fitted
    exp = tmp_path / "exp"
    shutil.copytree(root / "exp", exp)
    config = yaml.safe_load((exp / "config.yaml").read_text())
    (exp / "config.yaml").write_text(yaml.safe_dump({**config, "device": "cuda:7"}, sort_keys=False))
    disc = load_discretizer(exp, device="cpu")
    assert disc.extractor.device.type == "cpu"
    out = tmp_path / "units"
    argv = ["--discretizer", str(exp), "--data", str(data), "--out", str(out), "--no-progress"]
    assert dump_main([*argv, "--device", "cpu"]) == 0
    assert read_table(out) == read_table(dump_once(root / "exp", data, tmp_path / "reference"))
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exit_info:
            dump_main([*argv, "--device", "cuda"])
        assert exit_info.value.code == 2
        assert "CUDA is not available on this machine" in capsys.readouterr().err


def dump_once(exp, data, out):
    assert dump_main(["--discretizer", str(exp), "--data", str(data), "--out", str(out), "--no-progress"]) == 0
    return out
