from toolkit.bin.subset_by_label import main, select
from toolkit.datadir import load_data_dir, write_data_dir
from toolkit.validate import validate_data_dir

from conftest import build_data_dir

LABELS = {"u1": "activate|lights|kitchen", "u2": "set_alarm", "u3": "chat", "u4": "bring|shoes|none", "u5": "get_news"}


def test_select_by_pattern_and_seeded_sample():
    assert select(LABELS, r"\|", None, None, 1) == ["u1", "u4"]
    assert select(LABELS, None, r"\||^chat$", None, 1) == ["u2", "u5"]
    a = select(LABELS, None, None, 3, seed=4)
    assert len(a) == 3 and a == sorted(a) and a == select(LABELS, None, None, 3, seed=4)
    assert len({tuple(select(LABELS, None, None, 2, seed=s)) for s in range(10)}) > 1  # other seeds, other subsets


def test_cli_writes_a_valid_subset(tmp_path, capsys):
    src = build_data_dir(tmp_path, "src", num_utts=4)
    data = load_data_dir(src)
    for utt, label in zip(data.utt_ids, ["a|b|c", "chat", "x|y|z", "play_music"], strict=True):
        data.tables["utt2intent"][utt] = label
    write_data_dir(data, src)
    out = tmp_path / "ic"
    assert main(["--data", str(src), "--out", str(out), "--match", r"\|"]) == 0
    sub = load_data_dir(out)
    assert sorted(sub["utt2intent"].values()) == ["a|b|c", "x|y|z"]
    assert validate_data_dir(out) == []
    assert set(sub["wav.scp"]) == set(sub.utt_ids) and not (tmp_path / "ic.tmp").exists()
    assert "2 of 4 utterances" in capsys.readouterr().out


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    src = build_data_dir(tmp_path, "src", num_utts=2)
    out = tmp_path / "out"
    assert main(["--data", str(src), "--out", str(out), "--match", "("]) == 1
    assert "--match '(' is not a valid regular expression" in capsys.readouterr().err
    assert main(["--data", str(src), "--out", str(out), "--match", "nothing-like-this"]) == 1
    assert "no utterance" in capsys.readouterr().err
    assert main(["--data", str(src), "--out", str(out), "--table", "utt2emotion"]) == 1
    assert "utt2emotion does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_a_speaker_table_selects_the_utterances_of_matching_speakers(tmp_path):
    # The SLU recipe's test conditions: speakers on base voices heard in training, and the unseen accent.
    src = build_data_dir(tmp_path, "src", num_utts=4)  # speakers spk0 and spk1
    (src / "spk2voice").write_text("spk0 base=en-us variant=m1\nspk1 base=en-gb-scotland variant=f2\n")
    out = tmp_path / "accent"
    assert main(["--data", str(src), "--out", str(out), "--table", "spk2voice", "--match", "base=en-gb-scotland"]) == 0
    sub = load_data_dir(out)
    assert set(sub["utt2spk"].values()) == {"spk1"} and len(sub.utt_ids) == 2
    assert validate_data_dir(out) == []
