import soundfile as sf

from toolkit.bin.combine_data_dir import main as combine_main
from toolkit.bin.format_data_dir import main as format_main
from toolkit.bin.speed_perturb import main as perturb_main
from toolkit.bin.speed_perturb import stretch_alignment
from toolkit.datadir import load_data_dir
from toolkit.fileio import read_table
from toolkit.validate import validate_data_dir

from conftest import build_data_dir, tone


def test_format_references_good_audio_converts_the_rest_and_drops_by_duration(tmp_path):
    src = build_data_dir(tmp_path, durations=[0.2, 1.0, 1.5, 4.0])
    # one utterance at another rate and in flac: must be converted
    flac = tmp_path / "audio" / "other.flac"
    sf.write(flac, tone(1.0, 22050), 22050)
    wav_scp = (src / "wav.scp").read_text().replace(str(tmp_path / "audio" / "data" / "spk1-utt001.wav"), str(flac))
    (src / "wav.scp").write_text(wav_scp)
    dst = tmp_path / "out"
    assert (
        format_main(["--data", str(src), "--out", str(dst), "--min-dur", "0.3", "--max-dur", "3", "--no-progress"]) == 0
    )
    out = load_data_dir(dst)
    assert out.utt_ids == ["spk0-utt002", "spk1-utt001"]
    assert out["wav.scp"]["spk0-utt002"] == str(
        tmp_path / "audio" / "data" / "spk0-utt002.wav"
    )  # referenced, not copied
    assert out["wav.scp"]["spk1-utt001"] == str(dst / "wav" / "spk1-utt001.wav")
    assert out["utt2num_samples"]["spk1-utt001"] == "16000"
    assert read_table(dst / "dropped_utts") == {
        "spk0-utt000": "too_short 0.200s < 0.3s",
        "spk1-utt003": "too_long 4.000s > 3.0s",
    }
    assert out["text.slots"]["spk1-utt001"].startswith("turn on the B-object")
    assert validate_data_dir(dst, sample_rate=16000) == []


def test_format_references_16bit_mono_flac_at_the_target_rate(tmp_path):
    src = build_data_dir(tmp_path, durations=[1.0, 1.0])
    good = tmp_path / "audio" / "good.flac"
    sf.write(good, tone(1.0, 16000), 16000, subtype="PCM_16", format="FLAC")
    deep = tmp_path / "audio" / "deep.flac"
    sf.write(deep, tone(1.0, 16000), 16000, subtype="PCM_24", format="FLAC")
    spec = {utt: str(tmp_path / "audio" / "data" / f"{utt}.wav") for utt in ("spk0-utt000", "spk1-utt001")}
    text = (src / "wav.scp").read_text()
    text = text.replace(spec["spk0-utt000"], str(good)).replace(spec["spk1-utt001"], str(deep))
    (src / "wav.scp").write_text(text)
    dst = tmp_path / "out"
    assert format_main(["--data", str(src), "--out", str(dst), "--no-progress"]) == 0
    out = load_data_dir(dst)
    assert out["wav.scp"]["spk0-utt000"] == str(good)  # referenced as it is
    assert out["wav.scp"]["spk1-utt001"] == str(dst / "wav" / "spk1-utt001.wav")  # 24-bit: converted to 16-bit wav
    assert validate_data_dir(dst, sample_rate=16000) == []


def test_format_segments_and_stereo(tmp_path, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "rec.wav", tone(3.0, 8000, channels=2), 8000)
    src = tmp_path / "src"
    src.mkdir()
    (src / "wav.scp").write_text(f"rec {audio / 'rec.wav'}\n")
    (src / "segments").write_text("s-a rec 0.0 1.0\ns-b rec 1.5 3.0\n")
    (src / "utt2spk").write_text("s-a s\ns-b s\n")
    (src / "text").write_text("s-a one\ns-b two\n")
    dst = tmp_path / "dst"
    assert format_main(["--data", str(src), "--out", str(dst), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "utterance 's-a'" in err and "pick one with --channel" in err
    assert format_main(["--data", str(src), "--out", str(dst), "--channel", "1", "--no-progress"]) == 0
    out = load_data_dir(dst)
    assert out["utt2num_samples"] == {"s-a": "16000", "s-b": "24000"}
    assert not out.has("segments")
    assert validate_data_dir(dst, sample_rate=16000) == []


def test_format_missing_audio_fails_naming_the_utterance(tmp_path, capsys):
    src = build_data_dir(tmp_path)
    (tmp_path / "audio" / "data" / "spk1-utt003.wav").unlink()
    assert format_main(["--data", str(src), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "utterance 'spk1-utt003'" in err and "does not exist" in err
    assert not (tmp_path / "out" / "wav.scp").exists()


def test_speed_perturb_ids_durations_and_alignment(tmp_path):
    src = build_data_dir(tmp_path, durations=[1.0, 2.0])
    (src / "phone_ali").write_text(
        "spk0-utt000 " + " ".join(["a"] * 50 + ["b"] * 50) + "\nspk1-utt001 " + " ".join(["c"] * 200) + "\n"
    )
    dst = tmp_path / "sp"
    assert perturb_main(["--data", str(src), "--out", str(dst), "--factors", "0.9", "1.0", "1.1", "--no-progress"]) == 0
    out = load_data_dir(dst)
    assert len(out.utt_ids) == 6
    assert out["utt2spk"]["sp0.9-spk0-utt000"] == "sp0.9-spk0"
    assert out["wav.scp"]["spk0-utt000"] == str(tmp_path / "audio" / "data" / "spk0-utt000.wav")
    assert abs(float(out["utt2dur"]["sp1.1-spk1-utt001"]) - 2.0 / 1.1) < 0.002
    assert out["text"]["sp0.9-spk0-utt000"] == out["text"]["spk0-utt000"]
    assert len(out["phone_ali"]["sp0.9-spk0-utt000"].split()) == 111
    assert validate_data_dir(dst, sample_rate=16000) == []
    assert (dst / "spk2utt").exists()


def test_stretch_alignment():
    assert stretch_alignment(["a", "a", "b", "b"], 2.0) == ["a", "b"]
    assert stretch_alignment(["a", "b"], 0.5) == ["a", "a", "b", "b"]


def test_combine_cli_concatenates_reports(tmp_path):
    a = build_data_dir(tmp_path / "a", num_utts=2)
    b = build_data_dir(tmp_path / "b", num_utts=2)
    (a / "dropped_utts").write_text("x-1 too_short\n")
    # make b's ids distinct
    for name in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent", "text.slots", "spk2utt"):
        (b / name).write_text((b / name).read_text().replace("spk", "zpk"))
    out = tmp_path / "all"
    assert combine_main(["--out", str(out), "--concat", "dropped_utts", "--data", str(a), str(b)]) == 0
    assert len(load_data_dir(out).utt_ids) == 4
    assert read_table(out / "dropped_utts") == {"x-1": "too_short"}
    assert combine_main(["--out", str(tmp_path / "dup"), "--data", str(a), str(a)]) == 1


def test_an_id_escaping_dst_is_refused_and_nothing_is_written_outside(tmp_path, capsys):
    src = build_data_dir(tmp_path / "in", durations=[0.5, 0.6])
    for name in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent", "text.slots"):
        path = src / name
        path.write_text(path.read_text().replace("spk1-utt001", "spk1-../../../escaped"))
    dst = tmp_path / "work" / "out"
    before = set(tmp_path.rglob("*"))
    for main, extra in ((format_main, ["--sample-rate", "8000"]), (perturb_main, ["--factors", "0.9"])):
        assert main(["--data", str(src), "--out", str(dst), "--no-progress", *extra]) == 1
        assert "id 'spk1-../../../escaped' contains a path separator" in capsys.readouterr().err
    assert set(tmp_path.rglob("*")) == before


def test_a_full_disk_while_writing_audio_is_a_message(tmp_path, monkeypatch, capsys):
    import errno

    from toolkit.bin import format_data_dir

    src = build_data_dir(tmp_path / "in", durations=[0.5, 0.6])

    def full_disk(path, wave, sr):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(format_data_dir, "write_wav", full_disk)
    dst = tmp_path / "out"
    assert format_main(["--data", str(src), "--out", str(dst), "--sample-rate", "8000", "--no-progress"]) == 1
    assert "spk0-utt000.wav: No space left on device" in capsys.readouterr().err
    assert not dst.exists()
