"""python -m toolkit.bin.synth_corpus: argument checking and one tiny run."""

import pytest

from toolkit.bin.synth_corpus import main
from toolkit.fileio import read_table
from toolkit.synth.corpus import plan_split


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shard", "3", "--num-shards", "2"], "--shard must be in 1..2"),
        (["--shard", "0"], "--shard"),
        (["--num-shards", "0"], "--num-shards"),
        (["--num-utts", "0"], "--num-utts"),
        (["--split", "valid"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    base = {"--out": str(tmp_path), "--split": "dev", "--num-utts": "4", "--seed": "1"}
    args = [x for k, v in base.items() if k not in extra for x in (k, v)] + extra
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_tiny_run(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--split", "dev", "--num-utts", "4", "--seed", "1"]
    assert main([*args, "--shard", "2", "--num-shards", "2", "--no-progress"]) == 0
    assert len(read_table(tmp_path / "text")) == 2
    assert capsys.readouterr().err == ""


def test_negative_max_repeats_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(out), "--split", "train", "--num-utts", "4", "--seed", "1", "--max-repeats", "-1"])
    assert exc.value.code == 2
    assert "--max-repeats must be 0 (no limit) or more" in capsys.readouterr().err
    assert not out.exists()


def test_max_repeats_reaches_the_plan(tmp_path):
    # The first training sentence that the limit redraws, synthesised alone: one utterance per shard.
    num_utts = 400
    free = plan_split("train", num_utts, seed=1)
    distinct = plan_split("train", num_utts, seed=1, max_repeats=1)
    index = next(i for i in range(num_utts) if free[i].sentence != distinct[i].sentence)
    args = ["--split", "train", "--num-utts", str(num_utts), "--seed", "1", "--no-progress"]
    args += ["--shard", str(index + 1), "--num-shards", str(num_utts)]
    assert main([*args, "--out", str(tmp_path / "free")]) == 0
    assert main([*args, "--out", str(tmp_path / "distinct"), "--max-repeats", "1"]) == 0
    assert list(read_table(tmp_path / "free" / "text").values()) == [free[index].sentence.text]
    assert list(read_table(tmp_path / "distinct" / "text").values()) == [distinct[index].sentence.text]
