"""python -m toolkit.bin.synth_corpus: argument checking and one tiny run."""

import pytest

from toolkit.bin.synth_corpus import main
from toolkit.fileio import read_table


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
