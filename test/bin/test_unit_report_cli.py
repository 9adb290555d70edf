"""python -m toolkit.bin.unit_report: report files on good input, `error: file:line: ...` and exit 1 on bad input."""

from __future__ import annotations

import json
import logging

import pytest

from toolkit.bin import unit_report


def _files(tmp_path, **contents):
    paths = {}
    for name, text in contents.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths[name] = str(path)
    return paths


def _discretizer(tmp_path, num_units=4, stack_frames=2):
    folder = tmp_path / "discretizer"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"type: mfcc_kmeans\nnum_units: {num_units}\nstack_frames: {stack_frames}\n")
    return str(folder)


# Two utterances of 50 Hz units over 100 Hz labels: unit t reads label 2t + 1, and unit 3 always means phone y.
UNITS = "u1 0 3 3 1\nu2 3 2\n"
ALI = "u1 sil sil y y y y x x\nu2 x y sil sil\n"


def test_report_with_discretizer_durations_and_alignment(tmp_path, capsys):
    f = _files(tmp_path, units=UNITS, ali=ALI, utt2dur="u1 0.08\nu2 0.04\n")
    out = tmp_path / "report"
    rc = unit_report.main(
        ["--units", f["units"], "--discretizer", _discretizer(tmp_path), "--utt2dur", f["utt2dur"]]
        + ["--phone-ali", f["ali"], "--out", str(out)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed == (out / "unit_report.txt").read_text()
    report = json.loads((out / "unit_report.json").read_text())
    assert report["units_file"] == f["units"] and report["num_units"] == 4 and report["frame_rate"] == 50.0
    assert report["utterances"] == 2 and report["frames"] == 6 and report["seconds"] == pytest.approx(0.12)
    assert report["codebook"][0]["used"] == 4
    assert report["bitrate"]["naive_bps"] == pytest.approx(6 * 2 / 0.12)
    # Paired labels: u1 -> sil y y x, u2 -> y sil; units 0 3 3 1 and 3 2: unit 3 is always y.
    phones = report["phones"][0]
    assert phones["frames"] == 6 and phones["phone_purity"] == pytest.approx(1.0)
    assert phones["cluster_purity"] == pytest.approx((1 + 3 + 1) / 6)
    assert "phone purity 1.000" in printed and "all phones included" in printed

    rc = unit_report.main(
        ["--units", f["units"], "--discretizer", _discretizer(tmp_path / "d2"), "--phone-ali", f["ali"]]
        + ["--exclude-phones", "sil", "--exclude-phones", "x"]
    )
    assert rc == 0
    assert "sil, x excluded" in capsys.readouterr().out


def test_explicit_options_and_codebooks(tmp_path, capsys):
    f = _files(tmp_path, units="u1 0 5 2 7\nu2 1 4\n")
    rc = unit_report.main(["--units", f["units"], "--num-units", "8", "--codebooks", "2", "--frame-rate", "75"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "3 frames (75 Hz, 2 codebooks of 4)" in printed and "per codebook" in printed


def test_num_units_defaults_to_largest_plus_one(tmp_path, capsys, caplog):
    f = _files(tmp_path, units=UNITS)
    with caplog.at_level(logging.WARNING):
        assert unit_report.main(["--units", f["units"], "--frame-rate", "50"]) == 0
    assert "K = largest unit + 1 = 4" in caplog.text
    assert "4 / 4 units used" in capsys.readouterr().out


def test_missing_alignment_warns_but_reports(tmp_path, capsys, caplog):
    f = _files(tmp_path, units=UNITS + "u3 1 1\n", ali=ALI)
    with caplog.at_level(logging.WARNING):
        rc = unit_report.main(["--units", f["units"], "--discretizer", _discretizer(tmp_path), "--phone-ali", f["ali"]])
    assert rc == 0
    assert "1 of 3 utterance(s) have no phone alignment: 'u3'" in caplog.text
    assert "warning      1 of 3 utterance(s) have no phone alignment" in capsys.readouterr().out


@pytest.mark.parametrize(
    "units, message",
    [
        ("u1 0 1\nu2 1 one\n", ":2: 'u2': unit 'one' is not an integer"),
        ("u1 0 1\nu2 1 2\nu3 4\n", ":3: 'u3': unit '4' (token 1) is outside the range [0, 4)"),
    ],
)
def test_bad_units_name_file_and_line(tmp_path, capsys, units, message):
    f = _files(tmp_path, units=units)
    out = tmp_path / "report"
    rc = unit_report.main(["--units", f["units"], "--discretizer", _discretizer(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f"error: {f['units']}{message}") and "Traceback" not in err
    assert not out.exists()


def test_empty_units_file(tmp_path, capsys):
    f = _files(tmp_path, units="")
    assert unit_report.main(["--units", f["units"], "--num-units", "4", "--frame-rate", "50"]) == 1
    assert capsys.readouterr().err == f"error: {f['units']}: the units file is empty\n"


def test_missing_inputs(tmp_path, capsys):
    f = _files(tmp_path, units=UNITS)
    missing = str(tmp_path / "nope")
    assert unit_report.main(["--units", missing, "--num-units", "4", "--frame-rate", "50"]) == 1
    assert capsys.readouterr().err == f"error: {missing}: No such file or directory\n"
    assert unit_report.main(["--units", f["units"], "--num-units", "4"]) == 1
    assert capsys.readouterr().err == "error: no frame rate: pass --frame-rate or --discretizer\n"
    assert unit_report.main(["--units", f["units"], "--discretizer", str(tmp_path)]) == 1
    assert "no config.yaml" in capsys.readouterr().err
    f2 = _files(tmp_path, utt2dur="u1 0.08\nu2 zero\n")
    assert unit_report.main(["--units", f["units"], "--frame-rate", "50", "--utt2dur", f2["utt2dur"]]) == 1
    # `in`, not startswith: a logging handler left by an earlier test in this process may write to stderr first.
    assert f"error: {f2['utt2dur']}:2: 'u2': duration 'zero' is not a number" in capsys.readouterr().err
