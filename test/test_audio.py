import numpy as np
import pytest
import soundfile as sf

from toolkit.audio import AudioError, audio_info, load_audio, resample, speed_perturb, write_wav

from conftest import tone


def test_load_wav_flac_and_pipe(tmp_path):
    wave = tone(0.5, 16000)
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="PCM_16")
    sf.write(tmp_path / "a.flac", wave, 16000)
    from_wav, sr = load_audio(str(tmp_path / "a.wav"))
    from_flac, _ = load_audio(str(tmp_path / "a.flac"))
    from_pipe, _ = load_audio(f"cat {tmp_path / 'a.flac'} |")
    assert sr == 16000 and len(from_wav) == 8000
    np.testing.assert_allclose(from_wav, wave, atol=1e-4)
    np.testing.assert_array_equal(from_flac, from_pipe)


def test_segment_reads_the_right_samples(tmp_path):
    wave = np.arange(16000, dtype=np.float32) / 16000 - 0.5
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    part, _ = load_audio(str(tmp_path / "a.wav"), start=0.25, end=0.5)
    np.testing.assert_array_equal(part, wave[4000:8000])
    with pytest.raises(AudioError, match="outside the audio"):
        load_audio(str(tmp_path / "a.wav"), uttid="u1", start=2.0, end=3.0)


def test_errors_name_utterance_and_path(tmp_path):
    with pytest.raises(AudioError, match=r"utterance 'u1': .*missing.wav: file does not exist"):
        load_audio(str(tmp_path / "missing.wav"), uttid="u1")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 20)
    with pytest.raises(AudioError, match=r"utterance 'u2': .*bad.wav: cannot read the audio header"):
        audio_info(str(tmp_path / "bad.wav"), uttid="u2")
    with pytest.raises(AudioError, match="utterance 'u3': false |: command exited with status 1"):
        load_audio("false |", uttid="u3")
    sf.write(tmp_path / "st.wav", tone(0.1, 8000, channels=2), 8000)
    with pytest.raises(AudioError, match="expected mono audio, found 2 channels"):
        load_audio(str(tmp_path / "st.wav"), uttid="u4")


def test_resample_preserves_a_tone():
    wave = tone(1.0, 22050, freq=440)
    out = resample(wave, 22050, 16000)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins for a 1 s signal


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_length_and_pitch(factor):
    wave = tone(1.0, 16000, freq=400)
    out = speed_perturb(wave, 16000, factor)
    assert abs(len(out) - 16000 / factor) <= 2
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(peak_hz - 400 * factor) < 3
    assert speed_perturb(wave, 16000, 1.0) is wave


def test_write_wav_is_pcm16_and_atomic(tmp_path):
    write_wav(tmp_path / "x.wav", tone(0.2, 16000) * 10, 16000)  # clipped, not wrapped
    info = sf.info(tmp_path / "x.wav")
    assert (info.subtype, info.samplerate, info.frames) == ("PCM_16", 16000, 3200)
    assert sf.read(tmp_path / "x.wav")[0].max() <= 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


def test_truncated_wav_is_refused_not_read_as_a_short_utterance(tmp_path):
    # A copy cut off mid-transfer: libsndfile alone would read its first 500 samples as a 0.03 s utterance.
    sf.write(tmp_path / "full.wav", tone(1.0, 16000), 16000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 1000])
    for read in (audio_info, load_audio):
        with pytest.raises(AudioError, match=r"utterance 'u1': .*cut.wav: truncated: the header declares 1.000 s"):
            read(str(tmp_path / "cut.wav"), uttid="u1")
    assert audio_info(str(tmp_path / "full.wav")).frames == 16000


def test_streamed_wav_with_placeholder_size_is_not_called_truncated(tmp_path):
    # Tools writing to a pipe cannot seek back to fill in the size and leave 0xFFFFFFFF there.
    sf.write(tmp_path / "a.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "a.wav").read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(data))
    wave, _ = load_audio(str(tmp_path / "streamed.wav"))
    assert len(wave) == 8000


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples_are_refused(tmp_path, bad):
    wave = tone(0.5, 16000)
    wave[4000] = bad
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"utterance 'u1': .*1 samples are NaN or infinite \(the first at 0.250 s\)"):
        load_audio(str(tmp_path / "a.wav"), uttid="u1")


def test_segment_ending_past_the_audio_is_an_error_beyond_a_rounding_margin(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.0, 16000), 16000, subtype="PCM_16")
    wave, _ = load_audio(str(tmp_path / "a.wav"), start=0.5, end=1.04)  # rounding of the end time: read to the end
    assert len(wave) == 8000
    with pytest.raises(AudioError, match=r"segment 0.5-1.5 s ends past the audio \(length 1.000 s\)"):
        load_audio(str(tmp_path / "a.wav"), uttid="u1", start=0.5, end=1.5)


def test_a_hanging_pipe_is_killed_after_the_timeout(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("TOOLKIT_PIPE_TIMEOUT", "0.5")
    sf.write(tmp_path / "a.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    began = time.monotonic()
    with pytest.raises(AudioError, match=r"command did not finish in 0.5 s and was killed"):
        audio_info(f"sleep 60; cat {tmp_path / 'a.wav'} |", uttid="u1")
    assert time.monotonic() - began < 30  # the whole pipeline was killed, not left holding the pipe open
