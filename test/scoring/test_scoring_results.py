"""RESULTS.md generation: discovery of score.json files, tables, marker preservation, git hash, seed statistics."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess

import pytest

from toolkit.scoring.results import (
    BEGIN,
    END,
    ScoreEntry,
    aggregate_seeds,
    find_scores,
    git_version,
    split_seed,
    write_results,
)

ENV = {"python": "3.11.0", "torch": "2.0", "transformers": "5.0", "platform": "Linux", "cpu": "cpu", "gpu": "none"}
NOW = datetime.datetime(2025, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)


def _put(exp, rel, data):
    path = exp / rel / "score.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def exp(tmp_path):
    e = tmp_path / "exp"
    _put(e, "asr_b/decode/test", {"task": "asr", "wer": 12.3456, "cer": 5.0, "n_utt": 10, "sent_err": 40.0})
    _put(e, "asr_a/decode/dev", {"task": "asr", "wer": 10.0, "cer": 4.0, "n_utt": 8, "sent_err": 25.0})
    _put(e, "asr_a/decode_beam5/dev", {"task": "asr", "wer": 9.0, "cer": 3.5, "n_utt": 8, "sent_err": 20.0})
    _put(e, "slu/eval/test", {"task": "ic", "accuracy": 97.5, "n_utt": 40, "acc_action": 99.0, "n_correct": 39})
    (e / "kmeans").mkdir()
    (e / "kmeans" / "score.json").write_text("{}")  # not under decode/eval: ignored with a warning
    return e


def _write(exp, out, **kw):
    return write_results(exp, out, env=ENV, git="abc1234-dirty", now=NOW, **kw)


def test_find_scores_sorted_and_classified(exp):
    entries = find_scores(exp)
    assert [(e.kind, e.tag, e.set) for e in entries] == [
        ("asr", "asr_a", "dev"),
        ("asr", "asr_a/decode_beam5", "dev"),
        ("asr", "asr_b", "test"),
        ("ic", "slu", "test"),
    ]


def test_new_file_has_title_header_and_tables(tmp_path, exp):
    out = tmp_path / "RESULTS.md"
    _write(exp, out, title="My recipe")
    text = out.read_text()
    assert text.startswith("# My recipe\n\n" + BEGIN + "\n")
    assert text.endswith(END + "\n")
    assert "- date: 2025-01-02 03:04 UTC" in text and "- git: abc1234-dirty" in text
    assert "- python 3.11.0, torch 2.0, transformers 5.0" in text
    assert "| tag | set | #utt | WER | CER | S.Err |" in text
    assert "| asr_b | test | 10 | 12.35 | 5.00 | 40.00 |" in text
    # SLU columns come from the json: headline rates and per-slot accuracies; integer counts except n_utt stay out.
    assert "| tag | set | #utt | Acc | acc_action |" in text
    assert "| slu | test | 40 | 97.50 | 99.00 |" in text


def test_markers_keep_hand_written_text(tmp_path, exp):
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# Mine\n\nIntro by hand.\n\n{BEGIN}\nstale table\n{END}\n\nNotes by hand.\n")
    _write(exp, out)
    text = out.read_text()
    assert text.startswith("# Mine\n\nIntro by hand.\n\n" + BEGIN)
    assert text.endswith(END + "\n\nNotes by hand.\n")
    assert "stale table" not in text and "| asr_b | test |" in text
    # Regenerating again changes nothing around the block.
    _write(exp, out)
    assert out.read_text() == text


def test_file_without_markers_gets_block_appended(tmp_path, exp):
    out = tmp_path / "RESULTS.md"
    out.write_text("# Old results\n\nkept\n")
    _write(exp, out)
    text = out.read_text()
    assert text.startswith("# Old results\n\nkept\n\n" + BEGIN) and text.count(BEGIN) == 1


def test_broken_markers_are_an_error(tmp_path, exp):
    out = tmp_path / "RESULTS.md"
    out.write_text(f"{END}\n{BEGIN}\n")
    with pytest.raises(ValueError, match="RESULTS.md: expected one"):
        _write(exp, out)


def test_bad_score_json_names_the_file(tmp_path):
    _put(tmp_path / "exp", "t/decode/test", {})
    (tmp_path / "exp" / "t/decode/test/score.json").write_text("{not json")
    with pytest.raises(ValueError, match="t/decode/test/score.json: not a readable score.json"):
        find_scores(tmp_path / "exp")


def test_git_version_outside_and_inside_git(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git_version(tmp_path) == "unknown"
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    ident = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]

    def git(*args):
        return subprocess.run(["git", *ident, "-C", str(repo), *args], check=True, capture_output=True, text=True)

    git("init", "-q")
    (repo / "f.txt").write_text("1\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    short = git("rev-parse", "--short", "HEAD").stdout.strip()
    (repo / "untracked.txt").write_text("x\n")  # untracked outputs do not make the tree dirty
    assert git_version(repo) == short
    (repo / "f.txt").write_text("2\n")
    assert git_version(repo) == short + "-dirty"


def test_split_seed():
    assert split_seed("conf_a_seed12") == ("conf_a", 12)
    assert split_seed("conf_a") == ("conf_a", None)
    assert split_seed("conf_seedless") == ("conf_seedless", None)


def test_aggregate_seeds():
    def asr(tag, wer, cer):
        return ScoreEntry("asr", tag, "test", {"wer": wer, "cer": cer, "note": "x"})

    entries = [
        asr("m_seed2", 12.0, 6.0),
        asr("m_seed1", 10.0, 4.0),
        asr("m_seed3", 14.0, 5.0),
        asr("other", 1.0, 1.0),  # no seed suffix: not aggregated
        ScoreEntry("asr", "m_seed1", "dev", {"wer": 7.0}),
    ]
    dev, test = aggregate_seeds(entries)
    assert (dev.set, dev.seeds, dev.mean, dev.std) == ("dev", [1], {"wer": 7.0}, {"wer": 0.0})
    # WER 10, 12, 14: mean 12; sample variance ((-2)^2 + 0 + 2^2) / (3 - 1) = 4 -> std 2.
    # CER 4, 6, 5: mean 5; sample variance (1 + 1 + 0) / 2 = 1 -> std 1. Non-numeric "note" is skipped.
    assert (test.tag, test.seeds) == ("m", [1, 2, 3])
    assert test.mean == {"wer": 12.0, "cer": 5.0}
    assert test.std == {"wer": pytest.approx(2.0), "cer": pytest.approx(1.0)}


def test_seed_table_in_results_block(tmp_path):
    import json

    from toolkit.scoring.results import write_results

    for seed, wer in ((1, 10.0), (2, 12.0), (3, 14.0)):
        d = tmp_path / "exp" / f"sld_mfcc_seed{seed}" / "decode" / "test"
        d.mkdir(parents=True)
        (d / "score.json").write_text(json.dumps({"task": "asr", "wer": wer, "cer": wer / 2, "n_utt": 5}))
    out = tmp_path / "RESULTS.md"
    write_results(
        tmp_path / "exp",
        out,
        env={k: "x" for k in ("python", "torch", "transformers", "platform", "cpu", "gpu")},
        git="abc",
    )
    text = out.read_text()
    assert "| sld_mfcc | test | 1,2,3 | 12.00 ± 2.00 | 6.00 ± 1.00 |" in text


def test_seed_table_has_one_table_per_kind_with_its_metrics():
    from toolkit.scoring.results import seed_table

    entries = [
        ScoreEntry("ic", "ic_glob_seed1", "test", {"accuracy": 30.0, "n_utt": 10}),
        ScoreEntry("ic", "ic_glob_seed2", "test", {"accuracy": 40.0, "n_utt": 10}),
        ScoreEntry("sf", "sf_glob_seed1", "test", {"slot_type_f1": 20.0, "slot_value_cer": 90.0, "wer": 50.0}),
    ]
    text = seed_table(entries)
    ic, sf = text.split("SLU: slot filling:")
    assert "| ic_glob | test | 1,2 | 35.00 ± 7.07 |" in ic and "Acc |" in ic and "Slot type F1" not in ic
    # one seed: the value alone, not a spread of zero; each kind's own metrics
    assert "| sf_glob | test | 1 | 50.00 | 20.00 | 90.00 |" in sf and "±" not in sf
