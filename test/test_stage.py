from toolkit.bin.stage import main as stage_main
from toolkit.stage import is_done, mark_done


def test_done_marker_tracks_inputs_options_and_outputs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a hello\n")
    (data / "sub").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / ".done/stage3"
    args = [str(data)], "fs=16000"
    assert is_done(marker, *args, [str(out)]) == (False, "not run yet")
    mark_done(marker, *args, [str(out)])
    done, why = is_done(marker, *args, [str(out)])
    assert done and "unchanged" in why
    (data / "sub" / "ignored").write_text("subfolders are not inputs")
    assert is_done(marker, *args, [str(out)])[0]
    assert is_done(marker, [str(data)], "fs=8000", [str(out)]) == (False, "options changed")
    (data / "text").write_text("a hello there\n")
    assert is_done(marker, *args, [str(out)]) == (False, "inputs changed")
    mark_done(marker, *args, [str(out)])
    out.rmdir()
    assert is_done(marker, *args, [str(out)]) == (False, f"output missing: {out}")


def test_cli_exit_codes(tmp_path, capsys):
    marker = str(tmp_path / "m")
    assert stage_main(["check", "--marker", marker, "--label", "stage 1 (x)", "--options", "a"]) == 1
    assert "stage 1 (x): running (not run yet)" in capsys.readouterr().out
    assert stage_main(["mark", "--marker", marker, "--options", "a"]) == 0
    assert stage_main(["check", "--marker", marker, "--options", "a"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_an_output_changed_after_the_stage_wrote_it_is_redone(tmp_path):
    # A killed rerun that rewrote half the outputs, or a user editing them, must not be skipped as "unchanged".
    out = tmp_path / "units"
    out.write_text("u1 1 2 3\n")
    marker = tmp_path / ".done/stage5"
    mark_done(marker, [], "o", [str(out)])
    assert is_done(marker, [], "o", [str(out)])[0]
    out.write_text("u1 1 2 3\nu2 half-written")
    assert is_done(marker, [], "o", [str(out)]) == (False, f"output changed since the stage wrote it: {out}")


def test_audio_edited_in_place_changes_a_data_dirs_hash(tmp_path):
    # The tables name the audio by path; a file replaced under the same name must still count as a change.
    data = tmp_path / "data"
    data.mkdir()
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF1")
    (data / "wav.scp").write_text(f"a {wav}\nb sox x.wav -t wav - |\n")
    marker = tmp_path / ".done/stage3"
    mark_done(marker, [str(data)], "o", [])
    assert is_done(marker, [str(data)], "o", [])[0]
    wav.write_bytes(b"RIFF22")
    assert is_done(marker, [str(data)], "o", []) == (False, "inputs changed")
