import math

import numpy as np
import pytest

from toolkit.audio import load_audio
from toolkit.bin.dump_units import main as dump_main
from toolkit.bin.fit_discretizer import main as fit_main
from toolkit.datadir import load_data_dir
from toolkit.discretizers import load_discretizer
from toolkit.discretizers.base import length_batches
from toolkit.fileio import read_table

from conftest import build_data_dir

TINY_SETS = ["num_units=5", "fit_fraction=1.0", "kmeans.batch_size=64", "kmeans.n_init=2", "kmeans.max_iter=3"]


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = build_data_dir(root, num_utts=5)
    config = root / "mfcc.yaml"
    config.write_text("type: mfcc_kmeans\nnum_units: 9\nstack_frames: 2\nkmeans:\n  max_no_improvement: 50\n")
    argv = ["--config", str(config), "--data", str(data), "--out", str(root / "exp"), "--no-progress"]
    assert fit_main(argv + sets(TINY_SETS)) == 0
    return root, data


def test_fit_cli_merges_config_file_and_overrides(fitted):
    root, _ = fitted
    disc = load_discretizer(root / "exp")
    assert disc.num_units == 5  # --set wins over the file
    assert disc.frame_rate == 50.0  # from the file
    assert disc.config.kmeans.max_no_improvement == 50 and disc.config.kmeans.n_init == 2


def test_dump_units_writes_one_line_per_utterance(fitted, tmp_path, capsys):
    root, data = fitted
    out = tmp_path / "units" / "units.1"
    argv = ["--discretizer", str(root / "exp"), "--data", str(data), "--out", str(out), "--no-progress"]
    assert dump_main(argv + ["--batch-seconds", "1.5"]) == 0
    units = read_table(out)
    loaded = load_data_dir(data)
    assert list(units) == sorted(loaded.utt_ids)
    disc = load_discretizer(root / "exp")
    for utt, line in units.items():
        wave, sr = load_audio(loaded["wav.scp"][utt])
        expected = disc.encode(wave, sr)
        assert line == " ".join(map(str, expected.tolist()))
        assert len(line.split()) == math.ceil(round(float(loaded["utt2dur"][utt]) * 100) / 2)  # 50 Hz, end covered
    assert "5 utterances" in capsys.readouterr().out
    # without utt2dur the lengths come from the audio headers; the units are the same
    (data / "utt2dur").rename(tmp_path / "utt2dur.saved")
    try:
        assert dump_main(argv[:4] + ["--out", str(tmp_path / "units.2"), "--no-progress"]) == 0
    finally:
        (tmp_path / "utt2dur.saved").rename(data / "utt2dur")
    assert read_table(tmp_path / "units.2") == units


def test_dump_units_missing_audio_is_a_clean_error_without_output(fitted, tmp_path, capsys):
    root, _ = fitted
    data = build_data_dir(tmp_path, num_utts=3)
    missing = tmp_path / "audio" / "data" / "spk1-utt001.wav"
    missing.unlink()
    out = tmp_path / "units.txt"
    argv = ["--discretizer", str(root / "exp"), "--data", str(data), "--out", str(out), "--no-progress"]
    assert dump_main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "spk1-utt001" in err and str(missing) in err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".units*")) == []


def test_dump_units_without_a_discretizer(tmp_path, capsys):
    data = build_data_dir(tmp_path, num_utts=2)
    assert dump_main(["--discretizer", str(tmp_path / "nope"), "--data", str(data), "--out", str(tmp_path / "u")]) == 1
    assert "error: " in capsys.readouterr().err and not (tmp_path / "u").exists()


def test_fit_cli_errors_name_the_problem(tmp_path, capsys):
    data = build_data_dir(tmp_path, num_utts=2)
    out = tmp_path / "exp"
    base = ["--data", str(data), "--out", str(out), "--no-progress"]
    assert fit_main(base + ["--type", "mfcc_kmeans", "--set", "num_unitz=5"]) == 1
    assert "unknown key 'num_unitz'" in capsys.readouterr().err
    assert fit_main(base) == 1
    assert "no discretizer type" in capsys.readouterr().err
    (tmp_path / "audio" / "data" / "spk0-utt000.wav").unlink()
    assert fit_main(base + ["--type", "mfcc_kmeans"] + sets(TINY_SETS)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: utterance 'spk0-utt000'") and "does not exist" in err
    assert not out.exists() or list(out.iterdir()) == []  # no state, no scratch features left behind


def test_length_batches_group_similar_lengths_within_the_budget():
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 2.5, "e": 9.0}
    assert length_batches(durations, 6.0) == [["e"], ["b"], ["d", "c", "a"]]
    assert sorted(np.concatenate(length_batches(durations, 100.0)).tolist()) == sorted(durations)
