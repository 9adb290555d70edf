"""The losses x discretizers table: tags parsed by their format, seeds summarised, unit figures beside each row, and
its own block in RESULTS.md next to make_results'."""

from __future__ import annotations

import json
import math

import pytest

from toolkit.bin.make_grid import main as grid_main
from toolkit.scoring.grid import collect, summarise, tag_pattern, unit_columns
from toolkit.scoring.results import ScoreEntry, write_results


def entry(tag: str, wer: float, set_name: str = "test", kind: str = "asr") -> ScoreEntry:
    return ScoreEntry(kind, tag, set_name, {"wer": wer, "cer": 1.0})


def test_tag_format_becomes_a_pattern_and_must_name_every_field():
    m = tag_pattern("x_{loss}_{discretizer}_3ep_seed{seed}").match("x_sld_mfcc_kmeans_3ep_seed12")
    assert m and (m["loss"], m["discretizer"], m["seed"]) == ("sld", "mfcc_kmeans", "12")
    assert tag_pattern("{loss}_{discretizer}_seed{seed}").match("sld_mfcc_kmeans_seedx") is None
    with pytest.raises(ValueError, match="must use each of"):
        tag_pattern("{loss}_seed{seed}")


def test_collect_keeps_asr_runs_of_the_format_only():
    entries = [
        entry("sld_encodec_seed1", 10.0),
        entry("sld_encodec_seed2", 14.0),
        entry("sld_encodec_seed2", 30.0, set_name="dev"),
        entry("probe_sld", 5.0),  # not of the format
        entry("ce_encodec_seed1", 50.0, kind="ic"),  # not ASR
    ]
    table = collect(entries, "{loss}_{discretizer}_seed{seed}")
    assert table == {("encodec", "sld", "test"): {1: 10.0, 2: 14.0}, ("encodec", "sld", "dev"): {2: 30.0}}


def test_summary_is_mean_and_sample_std():
    cell = summarise({3: 12.0, 1: 10.0, 2: 14.0})
    assert cell.seeds == [1, 2, 3] and cell.mean == 12.0 and math.isclose(cell.std, 2.0)
    assert str(cell) == "12.00 ± 2.00"
    assert str(summarise({2: 7.0})) == "7.00 (seed 2 only)"  # a spread of one sample would read as zero


def test_unit_columns_from_a_report_and_without_one():
    report = {
        "phones": [{"pnmi": 0.61623}],
        "codebook": [{"perplexity": 378.9, "num_units": 500}],
        "bitrate": {"naive_bps": 449.2},
    }
    assert unit_columns(report) == ["0.616", "379 / 500", "449"]
    assert unit_columns({"codebook": [{"perplexity": 10.0, "num_units": 20}]}) == ["-", "10 / 20", "-"]
    assert unit_columns(None) == ["-", "-", "-"]


def write_score(exp, tag, set_name, wer):
    folder = exp / tag / "decode" / set_name
    folder.mkdir(parents=True)
    (folder / "score.json").write_text(json.dumps({"wer": wer, "cer": 1.0, "n_utt": 5}))


def test_the_block_sits_beside_make_results_and_is_regenerated(tmp_path, capsys):
    exp, out = tmp_path / "exp", tmp_path / "RESULTS.md"
    for seed, wer in ((1, 20.0), (2, 22.0)):
        write_score(exp, f"sld_mfcc_kmeans_seed{seed}", "test", wer)
    units = tmp_path / "units/mfcc_kmeans/test"
    units.mkdir(parents=True)
    (units / "unit_report.json").write_text(json.dumps({"phones": [{"pnmi": 0.6}], "bitrate": {"naive_bps": 450}}))
    out.write_text("# Results\n\nHand-written notes.\n")
    write_results(exp, out, env={k: "x" for k in ("python", "torch", "transformers", "platform", "cpu", "gpu")})
    argv = ["--losses", "lm sld", "--discretizers", "mfcc_kmeans", "--sets", "test", "--exp", str(exp)]
    argv += ["--units-dir", str(tmp_path / "units"), "--out", str(out)]
    assert grid_main(argv) == 0
    assert "no scores yet for 1 cell(s): mfcc_kmeans lm test" in capsys.readouterr().err
    text = out.read_text()
    assert "| mfcc_kmeans | 0.600 | - | 450 | - | 21.00 ± 1.41 | 1,2 |" in text
    write_score(exp, "sld_mfcc_kmeans_seed3", "test", 24.0)
    assert grid_main(argv) == 0
    again = out.read_text()
    assert again.count("<!-- grid:begin -->") == 1 and "| 22.00 ± 2.00 | 1,2,3 |" in again
    assert "Hand-written notes." in again and again.count("<!-- results:begin -->") == 1


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    exp = tmp_path / "exp"
    write_score(exp, "sld_mfcc_kmeans_seed1", "test", 20.0)
    units = tmp_path / "units/mfcc_kmeans/test"
    units.mkdir(parents=True)
    (units / "unit_report.json").write_text("{not json")
    argv = ["--losses", "sld", "--discretizers", "mfcc_kmeans", "--exp", str(exp), "--out", str(tmp_path / "R.md")]
    assert grid_main([*argv, "--units-dir", str(tmp_path / "units")]) == 1
    assert "unit_report.json: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()
    assert grid_main([*argv, "--tag-format", "{loss}_seed{seed}"]) == 1
    assert "must use each of" in capsys.readouterr().err
    assert grid_main([*argv, "--exp", str(tmp_path / "nothing")]) == 1
    assert "no such directory" in capsys.readouterr().err
