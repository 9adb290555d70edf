"""Corpus building: planning, sharding, real synthesis of a few utterances, table formats and determinism."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from toolkit.bin.synth_corpus import main as synth_corpus_main
from toolkit.fileio import read_table
from toolkit.synth.corpus import num_frames, plan_split, shard_plan, synthesize_split
from toolkit.synth.speakers import split_speakers

TABLES = ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent", "text.slots", "phone_ali")


def test_plan_ids_speakers_and_prefix_stability():
    plan = plan_split("dev", 40, seed=3)
    ids = [p.utt_id for p in plan]
    assert len(set(ids)) == 40
    dev_ids = {s.id for s in split_speakers("dev")}
    for p in plan:
        assert p.speaker.id in dev_ids
        assert p.utt_id.startswith(p.speaker.id + "-")
    assert plan_split("dev", 10, seed=3) == plan[:10]
    assert plan_split("dev", 10, seed=4) != plan[:10]


def test_shards_partition_the_plan():
    plan = plan_split("train", 101, seed=1)
    shards = [shard_plan(plan, k, 3) for k in (1, 2, 3)]
    ids = [p.utt_id for shard in shards for p in shard]
    assert sorted(ids) == sorted(p.utt_id for p in plan)
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError, match="shard"):
        shard_plan(plan, 4, 3)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    synthesize_split(out, "test", 6, seed=2, progress=False)
    return out


def test_data_dir_is_complete_and_consistent(full):
    tables = {name: read_table(full / name) for name in TABLES}
    ids = set(tables["text"])
    assert len(ids) == 6
    assert all(set(t) == ids for t in tables.values())
    spk2utt = read_table(full / "spk2utt")
    assert {u for v in spk2utt.values() for u in v.split()} == ids
    assert set(read_table(full / "spk2voice")) == set(spk2utt)
    assert all(v.startswith("base=") for v in read_table(full / "spk2voice").values())
    for utt in ids:
        assert utt.startswith(tables["utt2spk"][utt] + "-")
        path = Path(tables["wav.scp"][utt])
        assert path.is_absolute() and path.is_file()
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert tables["utt2dur"][utt] == f"{info.frames / 16000:.3f}"
        phones = tables["phone_ali"][utt].split()
        assert len(phones) == num_frames(info.frames, 16000) == round(info.frames / 160)
        assert phones[0] == "sil" and phones[-1] == "sil"
        assert len(set(phones)) > 5
    assert not list(full.rglob("*.tmp"))


def test_same_seed_gives_identical_tables_and_audio(full, tmp_path):
    synthesize_split(tmp_path, "test", 6, seed=2, progress=False)
    for name in ("text", "utt2spk", "spk2utt", "utt2dur", "utt2intent", "text.slots", "spk2voice", "phone_ali"):
        assert (tmp_path / name).read_bytes() == (full / name).read_bytes(), name
    assert (tmp_path / "wav.scp").read_text() == (full / "wav.scp").read_text().replace(str(full), str(tmp_path))
    for wav in (full / "wav").rglob("*.wav"):
        assert (tmp_path / wav.relative_to(full)).read_bytes() == wav.read_bytes()


def test_shards_reproduce_the_unsharded_split(full, tmp_path):
    parts = []
    for shard in (1, 2):
        out = tmp_path / f"shard{shard}"
        synthesize_split(out, "test", 6, seed=2, shard=shard, num_shards=2, progress=False)
        parts.append(read_table(out / "text"))
    assert not set(parts[0]) & set(parts[1])
    assert {**parts[0], **parts[1]} == read_table(full / "text")
    # Audio depends only on the utterance, not on what the process synthesised before it.
    for wav in (tmp_path / "shard2" / "wav").rglob("*.wav"):
        reference = full / wav.relative_to(tmp_path / "shard2")
        np.testing.assert_array_equal(soundfile.read(wav)[0], soundfile.read(reference)[0])


def test_num_speakers_keeps_the_first_speakers():
    first = {s.id for s in split_speakers("train", limit=48)}
    plan = plan_split("train", 200, seed=1, num_speakers=48)
    assert {p.speaker.id for p in plan} == first
    assert len({p.speaker.id for p in plan_split("train", 200, seed=1)}) == 96


def test_cli_rejects_a_speaker_count_out_of_range(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        synth_corpus_main(
            ["--out", str(tmp_path / "d"), "--split", "test", "--num-utts", "3", "--seed", "1", "--num-speakers", "11"]
        )
    assert exc.value.code == 2
    assert "--num-speakers must be in 1..10" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        plan_split("valid", 3, 0)
    with pytest.raises(ValueError, match="num_utts"):
        plan_split("train", 0, 0)
    with pytest.raises(ValueError, match="max_repeats"):
        plan_split("train", 3, 0, max_repeats=-1)


def _sentence_counts(plan) -> Counter:
    return Counter(p.sentence.text for p in plan)


def test_max_repeats_limits_copies_of_a_sentence():
    # 3,000 draws of the grammar repeat its short commands: the limit has something to remove.
    free = plan_split("train", 3000, seed=1)
    assert max(_sentence_counts(free).values()) > 2
    assert plan_split("train", 3000, seed=1, max_repeats=0) == free
    distinct = plan_split("train", 3000, seed=1, max_repeats=1)
    assert len(_sentence_counts(distinct)) == 3000
    twice = _sentence_counts(plan_split("train", 3000, seed=1, max_repeats=2))
    assert max(twice.values()) == 2
    # Only the sentences change: speakers and ids are those of the unlimited plan.
    assert [p.utt_id for p in distinct] == [p.utt_id for p in free]


def test_max_repeats_keeps_prefix_stability_and_shards():
    plan = plan_split("train", 400, seed=2, max_repeats=1)
    assert plan_split("train", 150, seed=2, max_repeats=1) == plan[:150]
    shards = [shard_plan(plan, k, 3) for k in (1, 2, 3)]
    assert sorted((p for shard in shards for p in shard), key=lambda p: p.index) == plan
