"""Each bad-input case validation handles, with the file, line and id it must report."""

import soundfile as sf

from toolkit.bin.validate_data_dir import main as validate_main
from toolkit.validate import validate_data_dir

from conftest import build_data_dir, tone


def messages(path, **kwargs):
    return [str(p) for p in validate_data_dir(path, **kwargs)]


def replace_line(path, old, new):
    path.write_bytes(path.read_bytes().replace(old, new))


def test_clean_data_dir_is_valid(data_dir, capsys):
    assert validate_data_dir(data_dir, sample_rate=16000) == []
    assert validate_main(["--data", str(data_dir)]) == 0
    assert "valid" in capsys.readouterr().out


def test_missing_audio(data_dir):
    (data_dir.parent / "audio" / "data" / "spk0-utt002.wav").unlink()
    [msg] = messages(data_dir)
    assert msg.startswith(f"{data_dir}/wav.scp:2: 'spk0-utt002'") and "does not exist" in msg


def test_corrupt_header(data_dir):
    (data_dir.parent / "audio" / "data" / "spk1-utt001.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    [msg] = messages(data_dir)
    assert "wav.scp:3: 'spk1-utt001'" in msg and "cannot read the audio header" in msg


def test_empty_audio_file(data_dir):
    (data_dir.parent / "audio" / "data" / "spk1-utt001.wav").write_bytes(b"")
    [msg] = messages(data_dir)
    assert "'spk1-utt001'" in msg


def test_stereo_and_wrong_rate(data_dir):
    audio = data_dir.parent / "audio" / "data"
    sf.write(audio / "spk0-utt000.wav", tone(0.5, 16000, channels=2), 16000)
    sf.write(audio / "spk1-utt003.wav", tone(0.5, 8000), 8000)
    msgs = messages(data_dir, sample_rate=16000)
    assert any("wav.scp:1: 'spk0-utt000' 2 channels" in m for m in msgs)
    assert any("wav.scp:4: 'spk1-utt003' sample rate 8000 Hz, expected 16000" in m for m in msgs)


def test_duplicate_and_unsorted_ids(data_dir):
    text = data_dir / "text"
    lines = text.read_text().splitlines()
    text.write_text("\n".join([lines[1], lines[0], lines[2], lines[3], lines[3]]) + "\n")
    msgs = messages(data_dir, check_audio=False)
    assert any("text:2: 'spk0-utt000' ids are not sorted" in m for m in msgs)
    assert any("text:5: 'spk1-utt003' duplicate id (first on line 4)" in m for m in msgs)


def test_ids_disagree_between_files(data_dir):
    with open(data_dir / "text", "a") as f:
        f.write("spk9-zzz hello\n")
    replace_line(data_dir / "utt2dur", b"spk0-utt002 1.000\n", b"")
    msgs = messages(data_dir, check_audio=False)
    assert any("text:5: 'spk9-zzz' id not in utt2spk" in m for m in msgs)
    assert any("utt2dur: 1 ids of utt2spk are missing: spk0-utt002" in m for m in msgs)


def test_empty_transcript(data_dir):
    replace_line(data_dir / "text", b"spk1-utt001 turn on the light number 1", b"spk1-utt001 ")
    assert messages(data_dir, check_audio=False) == [f"{data_dir}/text:3: 'spk1-utt001' empty transcript"]


def test_non_utf8_text(data_dir):
    replace_line(data_dir / "text", b"light number 3", b"light n\xe9mber 3")
    msg = messages(data_dir, check_audio=False)[0]
    assert msg.startswith(f"{data_dir}/text:4:") and "not valid UTF-8" in msg


def test_spk2utt_disagrees(data_dir):
    replace_line(data_dir / "spk2utt", b"spk0 spk0-utt000 spk0-utt002", b"spk0 spk0-utt000")
    assert messages(data_dir, check_audio=False) == [
        f"{data_dir}/spk2utt:1: 'spk0' disagrees with utt2spk; rewrite it from utt2spk"
    ]


def test_missing_required_file(data_dir):
    (data_dir / "wav.scp").unlink()
    assert f"{data_dir}/wav.scp: required file is missing" in messages(data_dir)


def test_bad_values_in_extras(data_dir):
    replace_line(data_dir / "utt2dur", b"0.500", b"abc")
    replace_line(data_dir / "utt2intent", b"spk0-utt002 activate|lights|kitchen", b"spk0-utt002 activate||kitchen")
    replace_line(data_dir / "text.slots", b"light E-object number 3", b"light number 3")
    msgs = messages(data_dir, check_audio=False)
    assert f"{data_dir}/utt2dur:1: 'spk0-utt000' duration 'abc' is not a positive number" in msgs
    assert f"{data_dir}/utt2intent:2: 'spk0-utt002' intent 'activate||kitchen' has an empty slot or a space" in msgs
    assert f"{data_dir}/text.slots:4: 'spk1-utt003' slot 'B-object' is never closed" in msgs


def test_pipe_entries_are_run(tmp_path):
    data = build_data_dir(tmp_path)
    wav = data / "wav.scp"
    lines = wav.read_text().splitlines()
    first_path = lines[0].split()[1]
    lines[0] = f"spk0-utt000 cat {first_path} |"
    lines[1] = "spk0-utt002 false |"
    wav.write_text("\n".join(lines) + "\n")
    msgs = messages(data)
    assert len(msgs) == 1 and "wav.scp:2: 'spk0-utt002' command exited with status 1" in msgs[0]


def test_cli_exit_status_and_report(data_dir, capsys):
    (data_dir.parent / "audio" / "data" / "spk0-utt002.wav").unlink()
    assert validate_main(["--data", str(data_dir), "--sample-rate", "16000"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "1 problem(s) found" in err and "Traceback" not in err


def test_phone_alignment_length_checked(data_dir):
    frames = " ".join(["sil"] * 10)
    lines = [f"{u} {frames}" for u in ["spk0-utt000", "spk0-utt002", "spk1-utt001", "spk1-utt003"]]
    (data_dir / "phone_ali").write_text("\n".join(lines) + "\n")
    msgs = messages(data_dir)
    assert any("phone_ali:1: 'spk0-utt000' 10 frames but the audio lasts 50 frames" in m for m in msgs)


def test_float_audio_with_nan_samples_is_reported(data_dir):
    wave = tone(0.5, 16000)
    wave[100] = float("nan")
    sf.write(data_dir.parent / "audio" / "data" / "spk0-utt000.wav", wave, 16000, subtype="FLOAT")
    [msg] = messages(data_dir)
    assert "wav.scp:1: 'spk0-utt000'" in msg and "NaN or infinite" in msg


def test_truncated_audio_is_reported(data_dir):
    path = data_dir.parent / "audio" / "data" / "spk1-utt001.wav"
    path.write_bytes(path.read_bytes()[:1000])
    [msg] = messages(data_dir)
    assert "wav.scp:3: 'spk1-utt001'" in msg and "truncated" in msg


def test_segment_past_the_end_of_its_recording(data_dir):
    (data_dir / "segments").write_text(
        "spk0-utt000 spk0-utt000 0.0 0.4\nspk0-utt002 spk0-utt002 0.0 9.0\n"
        "spk1-utt001 spk1-utt001 0.0 0.5\nspk1-utt003 spk1-utt003 0.1 1.2\n"
    )
    [msg] = messages(data_dir)
    assert msg.startswith(f"{data_dir}/segments:2: 'spk0-utt002' ends at 9.0 s, past the end of recording")


def test_ids_that_would_name_a_path_are_refused(data_dir):
    for name in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent", "text.slots"):
        replace_line(data_dir / name, b"spk1-utt003 ", b"spk1-../../x ")
    found = messages(data_dir, check_audio=False)
    assert any("utt2spk:4: 'spk1-../../x' id contains a path separator" in m for m in found), found
