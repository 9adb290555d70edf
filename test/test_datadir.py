import re

import pytest

from toolkit.datadir import (
    DataDir,
    combine_data_dirs,
    load_data_dir,
    spk2utt_from_utt2spk,
    split_data_dir,
    subset_data_dir,
    write_data_dir,
)
from toolkit.fileio import read_table


def test_load_write_roundtrip_derives_spk2utt(data_dir, tmp_path):
    data = load_data_dir(data_dir)
    assert data.utt_ids == ["spk0-utt000", "spk0-utt002", "spk1-utt001", "spk1-utt003"]
    write_data_dir(data, tmp_path / "copy")
    assert read_table(tmp_path / "copy" / "spk2utt") == {
        "spk0": "spk0-utt000 spk0-utt002",
        "spk1": "spk1-utt001 spk1-utt003",
    }
    assert load_data_dir(tmp_path / "copy").tables == data.tables


def test_load_missing_dir_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_data_dir(tmp_path / "nope")


def test_subset_keeps_only_listed_utterances_and_their_recordings():
    data = DataDir(
        tables={
            "wav.scp": {"rec1": "a.wav", "rec2": "b.wav"},
            "segments": {"s-1": "rec1 0 1", "s-2": "rec2 0 1", "s-3": "rec1 1 2"},
            "utt2spk": {"s-1": "s", "s-2": "s", "s-3": "s"},
            "text": {"s-1": "a", "s-2": "b", "s-3": "c"},
        }
    )
    sub = subset_data_dir(data, ["s-1", "s-3"])
    assert sub.tables["wav.scp"] == {"rec1": "a.wav"}
    assert list(sub.tables["text"]) == ["s-1", "s-3"]
    assert data.segment_of("s-3") == (1.0, 2.0)
    assert data.recording_of("s-2") == "rec2"


def test_combine_rejects_duplicates_and_drops_partial_tables(capsys):
    a = DataDir(tables={"utt2spk": {"a-1": "a"}, "text": {"a-1": "x"}, "utt2dur": {"a-1": "1.0"}})
    b = DataDir(tables={"utt2spk": {"b-1": "b"}, "text": {"b-1": "y"}})
    combined = combine_data_dirs([a, b])
    assert combined.tables["text"] == {"a-1": "x", "b-1": "y"}
    assert "utt2dur" not in combined.tables
    assert "'utt2dur' is missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="'a-1' appears in 'text' of more than one data dir"):
        combine_data_dirs([a, a])


def test_split_partitions_and_is_reused(data_dir):
    shards = split_data_dir(data_dir, 3)
    ids = [load_data_dir(s).utt_ids for s in shards]
    assert sorted(sum(ids, [])) == load_data_dir(data_dir).utt_ids
    assert all(ids)
    stamp = data_dir / "split3" / ".complete"
    before = stamp.stat().st_mtime_ns
    split_data_dir(data_dir, 3)
    assert stamp.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="cannot split 4 utterances into 5"):
        split_data_dir(data_dir, 5)


def test_spk2utt_sorted():
    assert spk2utt_from_utt2spk({"b-2": "b", "a-1": "a", "b-1": "b"}) == {"a": "a-1", "b": "b-1 b-2"}


@pytest.mark.parametrize("bad_id", ["spk-../../x", "/abs/path", "..", "a\\b"])
def test_ids_that_would_leave_a_folder_are_refused_on_load(data_dir, bad_id):
    from toolkit.fileio import TableError

    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[1] = f"{bad_id} {lines[1].split(maxsplit=1)[1]}"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(TableError, match=rf"wav.scp:2: id '{re.escape(bad_id)}' "):
        load_data_dir(data_dir)


def test_wave_and_durations_of_a_data_dir(tmp_path):
    from conftest import build_data_dir

    data = load_data_dir(build_data_dir(tmp_path, num_utts=2, durations=[0.5, 1.0]))
    assert {u: round(d, 3) for u, d in data.durations().items()} == {"spk0-utt000": 0.5, "spk1-utt001": 1.0}
    del data.tables["utt2dur"]  # from the audio headers instead
    assert round(data.durations()["spk1-utt001"], 3) == 1.0
    assert data.wave("spk1-utt001").shape == (16000,) and data.wave("spk1-utt001", 8000).shape == (8000,)
