import numpy as np
import pytest
import yaml

from toolkit.audio import resample
from toolkit.config import ConfigError, apply_overrides
from toolkit.config import from_dict as config_from_dict
from toolkit.datadir import load_data_dir
from toolkit.discretizers import Discretizer, fit_discretizer, load_discretizer, mfcc_kmeans
from toolkit.discretizers.kmeans import KMeansConfig
from toolkit.discretizers.mfcc_kmeans import Config, select_utterances

from conftest import build_data_dir

TINY = {"num_units": 6, "fit_fraction": 1.0, "kmeans": {"batch_size": 64, "n_init": 2, "max_iter": 3}}


def waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.normal(size=n)).astype(np.float32) for n in (16000, 8000, 24160, 4000)]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("mfcc_kmeans")
    data = build_data_dir(root, num_utts=6)
    fit_discretizer("mfcc_kmeans", [data], root / "exp", TINY)
    return root, data


def test_fit_saves_state_and_resolved_config(fitted):
    root, data = fitted
    exp = root / "exp"
    assert sorted(p.name for p in exp.iterdir()) == ["centers.npy", "config.yaml", "fit_info.yaml"]  # no scratch
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert list(saved)[0] == "type" and saved["type"] == "mfcc_kmeans"
    assert saved["num_units"] == 6 and saved["kmeans"]["batch_size"] == 64 and saved["kmeans"]["n_init"] == 2
    assert saved["kmeans"]["reassignment_ratio"] == 0.01  # defaults are written out too
    info = yaml.safe_load((exp / "fit_info.yaml").read_text())
    assert info["utterances"] == 6 and info["frames"] == sum(round((0.5 + 0.25 * i) * 100) for i in range(6))


def test_round_trip_gives_identical_units(fitted):
    root, data = fitted
    disc = load_discretizer(root / "exp")
    assert isinstance(disc, Discretizer) and isinstance(disc, mfcc_kmeans.MfccKmeans)
    assert disc.num_units == 6 and disc.frame_rate == 100.0 and disc.sample_rate == 16000
    units = [disc.encode(w, 16000) for w in waves()]
    assert [u.shape[0] for u in units] == [100, 50, 151, 25]
    assert all(u.dtype == np.int64 and u.min() >= 0 and u.max() < 6 for u in units)
    again = load_discretizer(root / "exp")
    assert all(np.array_equal(a, again.encode(w, 16000)) for a, w in zip(units, waves(), strict=True))
    # fitting again with the same seed gives the same discretizer
    fit_discretizer("mfcc_kmeans", [data], root / "exp2", TINY)
    refit = load_discretizer(root / "exp2")
    assert all(np.array_equal(a, refit.encode(w, 16000)) for a, w in zip(units, waves(), strict=True))


def test_encode_batch_equals_encode(fitted):
    disc = load_discretizer(fitted[0] / "exp")
    batch = disc.encode_batch(waves(1), 16000)
    assert len(batch) == 4
    for wave, units in zip(waves(1), batch, strict=True):
        assert np.array_equal(units, disc.encode(wave, 16000))
    assert disc.encode_batch([], 16000) == []
    # shorter than one 25 ms window: no frames, not an error (dump_units reports it per utterance)
    assert disc.encode(np.zeros(100, np.float32), 16000).shape == (0,)
    with pytest.raises(ValueError, match="1-D"):
        disc.encode(np.zeros((2, 100), np.float32), 16000)


def test_other_sample_rates_are_resampled(fitted):
    disc = load_discretizer(fitted[0] / "exp")
    wave = waves()[0]
    low = resample(wave, 16000, 8000)
    assert np.array_equal(disc.encode(low, 8000), disc.encode(resample(low, 8000, 16000), 16000))
    assert disc.encode(low, 8000).shape == (100,)


def test_unknown_and_mistyped_config_keys_are_named():
    with pytest.raises(ConfigError, match="unknown key 'num_unit'"):
        config_from_dict(Config, {"num_unit": 5})
    with pytest.raises(ConfigError, match=r"config\.kmeans: unknown key 'batchsize'"):
        config_from_dict(Config, {"kmeans": {"batchsize": 5}})
    with pytest.raises(ConfigError, match=r"config\.num_units: expected an integer, got 'many'"):
        config_from_dict(Config, {"num_units": "many"})
    with pytest.raises(ConfigError, match=r"config\.deltas: expected true or false"):
        config_from_dict(Config, {"deltas": 1})
    with pytest.raises(ConfigError, match="fit_fraction must be in"):
        config_from_dict(Config, {"fit_fraction": 0})
    config = config_from_dict(Config, {"fit_fraction": 1, "max_fit_frames": None, "kmeans": {"n_init": 3}})
    assert config.fit_fraction == 1.0 and config.kmeans == KMeansConfig(n_init=3)


def test_overrides_reach_nested_keys_and_parse_yaml_scalars():
    values = apply_overrides({"kmeans": {"n_init": 20}}, ["num_units=200", "kmeans.batch_size=5000", "cmvn=false"])
    assert values == {"kmeans": {"n_init": 20, "batch_size": 5000}, "num_units": 200, "cmvn": False}
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        apply_overrides({}, ["num_units"])


def test_load_rejects_unknown_types_and_missing_state(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.yaml"):
        load_discretizer(tmp_path)
    (tmp_path / "config.yaml").write_text("type: wavelets\n")
    with pytest.raises(ConfigError, match="unknown discretizer type 'wavelets'"):
        load_discretizer(tmp_path)
    with pytest.raises(ConfigError, match="unknown discretizer type 'wavelets'"):
        fit_discretizer("wavelets", [tmp_path], tmp_path / "out")


def test_utterance_selection_is_seeded_and_frame_budget_caps_the_fit(tmp_path):
    data = build_data_dir(tmp_path, num_utts=10, durations=[0.3] * 10)
    loaded = load_data_dir(data)
    first = select_utterances([loaded], 0.3, seed=1)
    assert len(first) == 3 and first == select_utterances([loaded], 0.3, seed=1)
    assert first != select_utterances([loaded], 0.3, seed=2)
    budget = {**TINY, "max_fit_frames": 70}
    fit_discretizer("mfcc_kmeans", [data], tmp_path / "exp", budget)
    info = yaml.safe_load((tmp_path / "exp" / "fit_info.yaml").read_text())
    assert info["frames"] == 70 and info["utterances"] == 3
