"""Unit statistics with values worked out by hand: usage, bitrate, runs, purity/PNMI, rate conversion, codebooks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from toolkit.fileio import TableError
from toolkit.scoring.units import (
    bitrate,
    discretizer_info,
    format_report,
    joint_metrics,
    phone_unit_stats,
    read_durations,
    read_phone_ali,
    read_units,
    run_stats,
    split_codebooks,
    unit_phone_index,
    unit_report,
    usage_stats,
)


def _a(*values):
    return np.array(values, dtype=np.int64)


# ---- usage, bitrate, runs ----


def test_perplexity_of_uniform_use_of_k_units_is_k():
    units = {"a": _a(0, 1, 2, 3, 0, 1), "b": _a(2, 3)}  # each of 4 units twice, 6 of K = 10 never used
    stats = usage_stats(units, 10)
    assert stats["utterances"] == 2 and stats["frames"] == 8
    assert (stats["used"], stats["unused"]) == (4, 6)
    assert stats["entropy_bits"] == pytest.approx(2.0)
    assert stats["perplexity"] == pytest.approx(4.0)
    assert stats["normalized_entropy"] == pytest.approx(2.0 / math.log2(10))


def test_usage_of_a_single_unit():
    stats = usage_stats({"a": _a(3, 3, 3)}, 4)
    assert stats["entropy_bits"] == 0.0 and stats["perplexity"] == 1.0 and stats["used"] == 1


def test_bitrate_from_durations_and_from_frames():
    # 50 + 100 frames over 1 + 2 s with K = 256 (8 bits): 150 * 8 / 3 = 400 bit/s naive. Units uniform over
    # 2 ids (H = 1 bit): 150 * 1 / 3 = 50 bit/s entropy-coded.
    units = {"a": np.arange(50) % 2, "b": np.arange(100) % 2}
    b = bitrate(units, 256, seconds=3.0)
    assert b["naive_bps"] == pytest.approx(400.0)
    assert b["entropy_coded_bps"] == pytest.approx(50.0)
    assert b["bits_per_token"] == 8.0 and b["tokens"] == 150

    report = unit_report(units, 256, frame_rate=50.0)  # no durations: 150 frames at 50 Hz = 3 s
    assert report["seconds"] == pytest.approx(3.0) and report["seconds_from"] == "frames / frame rate"
    assert report["bitrate"]["naive_bps"] == pytest.approx(400.0)

    report = unit_report(units, 256, durations={"a": 1.5, "b": 4.5})  # 6 s from utt2dur
    assert report["seconds_from"] == "utt2dur"
    assert report["bitrate"]["naive_bps"] == pytest.approx(200.0)


def test_bitrate_with_a_missing_duration_falls_back_and_warns():
    units = {"a": np.zeros(50, dtype=np.int64), "b": np.zeros(100, dtype=np.int64)}
    report = unit_report(units, 2, frame_rate=50.0, durations={"a": 1.0})
    assert report["seconds"] == pytest.approx(3.0)
    assert "'b'" in report["warnings"][0]
    with pytest.raises(ValueError, match="no duration for 1 utterance"):
        unit_report(units, 2, durations={"a": 1.0})


def test_run_stats():
    # Runs 1 1 1 | 2 2 | 3 and 5 | 5: 4 runs over 8 frames; 4 runs in 2 s.
    stats = run_stats({"a": _a(1, 1, 1, 2, 2, 3), "b": _a(5, 5)}, seconds=2.0)
    assert stats["runs"] == 4
    assert stats["mean_run_length"] == pytest.approx(2.0)
    assert stats["dedup_tokens_per_second"] == pytest.approx(2.0)
    assert stats["frames_per_second"] == pytest.approx(4.0)


# ---- phone metrics ----


def test_one_to_one_mapping_gives_purity_and_pnmi_one():
    phones = {"a": _a(0, 0, 1, 2, 2, 2), "b": _a(1, 1, 0)}
    units = {utt: (p * 7 + 3) % 5 for utt, p in phones.items()}  # a relabelling: 0->3, 1->0, 2->2
    stats = phone_unit_stats(units, phones, unit_rate=100, ali_rate=100, num_units=5)
    assert stats["phone_purity"] == pytest.approx(1.0)
    assert stats["cluster_purity"] == pytest.approx(1.0)
    assert stats["pnmi"] == pytest.approx(1.0)
    assert stats["frames"] == 9 and stats["phones"] == 3


def test_independent_units_give_pnmi_zero():
    # Every (phone, unit) pair once: p(y, z) = p(y) p(z) exactly.
    phones = {"a": _a(0, 0, 1, 1), "b": _a(0, 0, 0, 1, 1, 1)}
    units = {"a": _a(0, 1, 0, 1), "b": _a(0, 1, 2, 0, 1, 2)}
    stats = phone_unit_stats(units, phones, 100, 100)
    assert stats["pnmi"] == 0.0 and stats["mutual_information_bits"] == 0.0
    # Each unit is half phone 0, half phone 1; each phone is spread evenly over 3 units.
    assert stats["phone_purity"] == pytest.approx(0.5)
    # p(y, z) = [[.2, .2, .1], [.2, .2, .1]]: cluster purity = max row entries summed = .2 + .2.
    assert stats["cluster_purity"] == pytest.approx(0.4)


def test_two_by_two_joint_with_known_mutual_information():
    # p = [[.4, .1], [.1, .4]]: I = .8 log2(.4/.25) + .2 log2(.1/.25) = 0.2780719 bits, H(phone) = 1 bit.
    expected_mi = 0.8 * math.log2(1.6) + 0.2 * math.log2(0.4)
    m = joint_metrics(np.array([[4, 1], [1, 4]]))
    assert m["mutual_information_bits"] == pytest.approx(expected_mi)
    assert m["pnmi"] == pytest.approx(expected_mi)
    assert m["phone_entropy_bits"] == pytest.approx(1.0)
    assert m["phone_purity"] == pytest.approx(0.8) and m["cluster_purity"] == pytest.approx(0.8)

    # The same joint from frames through phone_unit_stats.
    phones = {"a": _a(0, 0, 0, 0, 0, 1, 1, 1, 1, 1)}
    units = {"a": _a(0, 0, 0, 0, 1, 1, 1, 1, 1, 0)}
    stats = phone_unit_stats(units, phones, 100, 100)
    assert stats["pnmi"] == pytest.approx(expected_mi)


def test_asymmetric_purities():
    # Unit 0 always phone 0; unit 1 is phone 0 once and phone 1 three times; p = [[.4, .1], [0, .3]] * 1.25.
    m = joint_metrics(np.array([[2, 1], [0, 3]]) * 1.0)
    assert m["phone_purity"] == pytest.approx((2 + 3) / 6)  # max over phones per unit: 2 (unit 0) + 3 (unit 1)
    assert m["cluster_purity"] == pytest.approx((2 + 3) / 6)  # max over units per phone: 2 (phone 0) + 3 (phone 1)
    m = joint_metrics(np.array([[3, 3], [0, 2]]) * 1.0)
    assert m["phone_purity"] == pytest.approx((3 + 3) / 8)
    assert m["cluster_purity"] == pytest.approx((3 + 2) / 8)


def test_single_phone_has_no_pnmi():
    assert joint_metrics(np.array([[3, 1]]))["pnmi"] is None


def test_unit_frame_takes_the_phone_at_its_centre():
    # 50 Hz units on 100 Hz labels: centre 0.02 t + 0.01 s -> index 2t + 1.
    assert unit_phone_index(5, 10, 50, 100).tolist() == [1, 3, 5, 7, 9]
    # An odd alignment length: the last unit frame's centre is past the end and is clipped to the last frame.
    assert unit_phone_index(5, 9, 50, 100).tolist() == [1, 3, 5, 7, 8]
    # Unit frames that start at or after the end of the alignment have no phone.
    assert unit_phone_index(5, 6, 50, 100).tolist() == [1, 3, 5, -1, -1]
    # 25 Hz: centre 0.04 t + 0.02 s -> index 4t + 2. Same rate: index t.
    assert unit_phone_index(3, 12, 25, 100).tolist() == [2, 6, 10]
    assert unit_phone_index(3, 3, 100, 100).tolist() == [0, 1, 2]
    assert unit_phone_index(0, 3, 50, 100).tolist() == []
    assert unit_phone_index(2, 0, 50, 100).tolist() == [-1, -1]


def test_centre_index_is_exact_for_awkward_rates():
    for unit_rate, ali_rate in ((75, 100), (12.5, 100), (50, 16000 / 160), (100, 75)):
        index = unit_phone_index(20000, 10**6, unit_rate, ali_rate)
        ratio = Fraction(ali_rate) / Fraction(unit_rate)
        expected = [math.floor((t + Fraction(1, 2)) * ratio) for t in range(20000)]
        assert index.tolist() == expected, (unit_rate, ali_rate)


def test_rate_conversion_pairs_units_with_odd_alignment_frames():
    # Even alignment frames hold a decoy phone 9; odd ones the phone the unit stands for. The centre rule only
    # sees the odd ones, so the mapping is perfect.
    truth = _a(0, 1, 2, 1, 0)
    ali = np.stack([np.full(5, 9), truth], axis=1).reshape(-1)  # 9 0 9 1 9 2 9 1 9 0
    stats = phone_unit_stats({"a": truth + 10}, {"a": ali}, unit_rate=50, ali_rate=100, num_units=13)
    assert stats["pnmi"] == pytest.approx(1.0) and stats["phone_purity"] == pytest.approx(1.0)
    assert stats["frames"] == 5 and stats["phones"] == 3
    assert stats["unit_frames_without_phone"] == 0 and stats["ali_frames_without_unit"] == 0


def test_missing_alignments_and_length_mismatches_are_counted_not_fatal():
    phones = {"a": _a(0, 0, 1, 1), "b": _a(0, 1, 0, 1, 0, 1, 0, 1)}
    units = {"a": _a(0, 0, 1, 1), "b": _a(0, 1), "c": _a(1, 1)}
    stats = phone_unit_stats(units, phones, 100, 100)
    assert stats["utterances_without_ali"] == 1 and stats["utterances_without_ali_ids"] == ["c"]
    assert stats["length_mismatches"] == 1 and stats["length_mismatch_ids"] == ["b"]
    assert stats["ali_frames_without_unit"] == 6
    assert stats["frames"] == 6 and stats["utterances"] == 2
    assert any("'c'" in w and "no phone alignment" in w for w in stats["warnings"])
    assert any("'b'" in w and "apart" in w for w in stats["warnings"])

    # Units longer than the alignment: the frames past its end are counted, not paired.
    stats = phone_unit_stats({"a": _a(0, 1, 0, 1, 0, 1)}, {"a": _a(0, 1)}, 100, 100)
    assert stats["unit_frames_without_phone"] == 4 and stats["frames"] == 2 and stats["length_mismatches"] == 1

    with pytest.raises(ValueError, match="no unit frame pairs with a phone"):
        phone_unit_stats({"c": _a(1)}, phones, 100, 100)


def test_excluded_phones_leave_the_joint():
    names = ["sil", "a", "b"]
    phones = {"u": _a(0, 0, 1, 2, 0, 0)}
    units = {"u": _a(0, 1, 2, 3, 1, 0)}  # silence is spread over units 0 and 1; a -> 2, b -> 3
    with_sil = phone_unit_stats(units, phones, 100, 100, phone_names=names)
    without = phone_unit_stats(units, phones, 100, 100, exclude=["sil", "zz"], phone_names=names)
    assert with_sil["frames"] == 6 and without["frames"] == 2 and without["excluded_frames"] == 4
    assert without["pnmi"] == pytest.approx(1.0) and with_sil["pnmi"] == pytest.approx(1.0)
    assert without["excluded_phones"] == ["sil", "zz"]
    assert any("zz" in w for w in without["warnings"])


# ---- codebooks ----


def test_codebooks_split_into_relative_ids():
    # K = 8 over C = 2 codebooks of 4: frame tokens (c0, 4 + c1).
    units = {"a": _a(0, 5, 2, 7, 2, 4)}
    c0, c1 = split_codebooks(units, 2, 4)
    assert c0["a"].tolist() == [0, 2, 2] and c1["a"].tolist() == [1, 3, 0]

    phones = {"a": _a(0, 1, 1, 0, 1, 1)}  # 100 Hz labels, frames at 50 Hz -> indices 1, 3, 5 -> 1, 0, 1
    report = unit_report(units, 8, codebooks=2, frame_rate=50.0, phone_ali=phones)
    assert report["codebook_size"] == 4 and report["frames"] == 3
    assert [c["used"] for c in report["codebook"]] == [2, 3]
    assert [c["num_units"] for c in report["codebook"]] == [4, 4]
    # 6 tokens of 2 bits over 3 frames at 50 Hz (0.06 s).
    assert report["bitrate"]["naive_bps"] == pytest.approx(6 * 2 / 0.06)
    h0 = -(1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3))
    assert report["bitrate"]["entropy_coded_bps"] == pytest.approx(3 * (h0 + math.log2(3)) / 0.06)
    # Codebook 0 (units 0 2 2 vs phones 1 0 1) and codebook 1 (1 3 0 vs 1 0 1).
    assert report["phones"][0]["phone_purity"] == pytest.approx(2 / 3)
    assert report["phones"][1]["phone_purity"] == pytest.approx(1.0)
    assert report["phones"][1]["pnmi"] == pytest.approx(1.0)
    text = format_report(report)
    assert "2 codebooks of 4" in text and "per codebook" in text


# ---- reading ----


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_units_ok(tmp_path):
    path = _write(tmp_path, "units", "a 3 1 2\nb 0\n")
    units = read_units(path, 4)
    assert list(units) == ["a", "b"] and units["a"].tolist() == [3, 1, 2] and units["a"].dtype == np.int64


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("a 1 2\nb 1 x2 3\n", {}, "2: 'b': unit 'x2' is not an integer"),
        ("a 1 2\nb 1 2.0\n", {"num_units": 4}, "2: 'b': unit '2.0' is not an integer"),
        ("a 1 2\nb 1 -1\n", {}, "2: 'b': unit '-1' is negative"),
        ("a 1 99999999999999999999\n", {}, "1: 'a': unit '99999999999999999999' is too large"),
        ("a 1 2\nb 3 4 1\n", {"num_units": 4}, "2: 'b': unit '4' (token 2) is outside the range [0, 4)"),
        ("a 0 4 1\n", {"num_units": 8, "codebooks": 2}, "1: 'a': 3 units are not a multiple of 2 codebooks"),
        ("a 0 4 1 3\n", {"num_units": 8, "codebooks": 2}, "1: 'a': unit '3' (token 4) is outside the codebook 1"),
        ("a 0 4\na 1 5\n", {}, "2: duplicate utterance 'a' (first on line 1)"),
        ("a 0 4\nb\n", {}, "2: 'b' has no value"),
    ],
)
def test_read_units_errors_name_file_and_line(tmp_path, text, kwargs, message):
    path = _write(tmp_path, "units", text)
    with pytest.raises(TableError) as e:
        read_units(path, **kwargs)
    assert str(e.value).startswith(f"{path}:{message}")


def test_read_units_empty_file(tmp_path):
    path = _write(tmp_path, "units", "")
    with pytest.raises(ValueError, match=f"^{path}: the units file is empty$"):
        read_units(path)


def test_read_phone_ali_and_durations(tmp_path):
    ali, names = read_phone_ali(_write(tmp_path, "ali", "a sil x y sil\nb\nc y\n"))
    assert names == ["sil", "x", "y"]
    assert ali["a"].tolist() == [0, 1, 2, 0] and ali["b"].tolist() == [] and ali["c"].tolist() == [2]
    assert read_durations(_write(tmp_path, "d", "a 1.5\nb 2\n")) == {"a": 1.5, "b": 2.0}
    path = _write(tmp_path, "bad", "a 1.5\nb two\n")
    with pytest.raises(TableError, match=f"^{path}:2: 'b': duration 'two' is not a number"):
        read_durations(path)
    path = _write(tmp_path, "neg", "a -1\n")
    with pytest.raises(TableError, match=f"^{path}:1: 'a': duration '-1' is not a positive number"):
        read_durations(path)


def test_discretizer_info(tmp_path):
    mfcc = tmp_path / "mfcc"
    mfcc.mkdir()
    (mfcc / "config.yaml").write_text("type: mfcc_kmeans\nnum_units: 500\nstack_frames: 4\n")
    assert discretizer_info(mfcc) == {
        "type": "mfcc_kmeans",
        "num_units": 500,
        "frame_rate": 25.0,
        "num_codebooks": None,
    }
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text("type: encodec\nnum_units: 2048\nnum_codebooks: 2\n")
    assert discretizer_info(other)["frame_rate"] is None
    (other / "fit_info.yaml").write_text("frame_rate: 75\n")
    assert discretizer_info(other) == {"type": "encodec", "num_units": 2048, "frame_rate": 75.0, "num_codebooks": 2}
    # What the encodec discretizer really writes: its K, codebooks and rate live in encodec_info.yaml.
    codec = tmp_path / "codec"
    codec.mkdir()
    (codec / "config.yaml").write_text("type: encodec\nmodel: m\nbandwidth: 1.0\n")
    (codec / "encodec_info.yaml").write_text("num_units: 128\nnum_codebooks: 4\nframe_rate: 50.0\n")
    assert discretizer_info(codec) == {"type": "encodec", "num_units": 128, "frame_rate": 50.0, "num_codebooks": 4}
    with pytest.raises(FileNotFoundError, match="no config.yaml"):
        discretizer_info(tmp_path)


def test_format_report_headline():
    units = {"a": _a(0, 0, 1, 1), "b": _a(1, 0)}
    phones = {"a": _a(0, 0, 1, 1), "b": _a(1, 0)}
    report = unit_report(units, 4, frame_rate=100.0, phone_ali=phones, phone_names=["sil", "a"], exclude=["sil"])
    text = format_report(report)
    assert "2 / 4 units used (2 unused)" in text
    assert "perplexity 2.0" in text
    assert "sil excluded" in text and "PNMI n/a" in text  # one phone left: nothing to explain
    assert "bit/s naive (2.000 bits/token)" in text
