"""The scoring entry points: summaries on good input, `error: file:line: ...` and exit 1 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from toolkit.bin import make_results, score_asr, score_slu

REPO = Path(__file__).resolve().parents[2]


def _files(tmp_path, **contents):
    paths = {}
    for name, data in contents.items():
        p = tmp_path / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        paths[name] = str(p)
    return paths


def test_score_asr_ok(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 a b c d\nu2 e f\n", hyp="u1 a x c d\nu2\n", utt2spk="u1 s1\nu2 s1\n")
    out = tmp_path / "decode" / "test"
    rc = score_asr.main(["--ref", f["ref"], "--hyp", f["hyp"], "--out", str(out), "--utt2spk", f["utt2spk"]])
    # 1 substitution + 2 deletions over 6 words = 50%.
    assert rc == 0
    assert capsys.readouterr().out.startswith("WER 50.00%  CER ")
    assert json.loads((out / "score.json").read_text())["wer"] == 50.0
    for name in ("ref.trn", "hyp.trn", "score_wer/result.txt", "score_cer/result.txt"):
        assert (out / name).is_file()


def test_score_asr_non_utf8_hyp(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 a\nu2 b\n", hyp=b"u1 a\nu2 \xff\xfe\n")
    rc = score_asr.main(["--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f"error: {f['hyp']}:2: not valid UTF-8") and "Traceback" not in err
    assert not (tmp_path / "o" / "score.json").exists()


def test_score_asr_utt2spk_without_value(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 a\nu2 b\n", hyp="u1 a\n", utt2spk="u1 s1\nu2\n")
    rc = score_asr.main(["--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path), "--utt2spk", f["utt2spk"]])
    assert rc == 1
    assert capsys.readouterr().err == f"error: {f['utt2spk']}:2: 'u2' has no value\n"


def test_score_asr_unknown_id_and_missing_file(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 a\n", hyp="u1 a\nghost b\n")
    assert score_asr.main(["--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: scoring {f['hyp']} against {f['ref']}: ") and "'ghost'" in err
    missing = str(tmp_path / "nope")
    assert score_asr.main(["--ref", missing, "--hyp", f["hyp"], "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: {missing}: No such file or directory\n"


def test_score_slu_ic(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 activate|lights|kitchen\nu2 decrease|heat|none\n", hyp="u1 activate|lights|none\nu2\n")
    args = ["--task", "ic", "--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path / "o")]
    assert score_slu.main([*args, "--slot-names", "action,object,location"]) == 0
    assert "intent accuracy 0.00%" in capsys.readouterr().out
    s = json.loads((tmp_path / "o" / "score.json").read_text())
    assert (s["acc_action"], s["acc_location"]) == (50.0, 0.0)


def test_score_slu_er(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 neu\nu2 ang\nu3 sad\n", hyp="u1 neu\nu2 hap\nu3 sad\n")
    args = ["--task", "er", "--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path / "o")]
    assert score_slu.main(args) == 0
    assert "emotion accuracy 66.67%" in capsys.readouterr().out
    s = json.loads((tmp_path / "o" / "score.json").read_text())
    assert s["task"] == "er" and s["n_correct"] == 2


def test_score_slu_ic_reference_without_label(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 activate|lights|kitchen\nu2\n", hyp="u1 activate|lights|kitchen\n")
    rc = score_slu.main(["--task", "ic", "--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path)])
    assert rc == 1
    assert capsys.readouterr().err == f"error: {f['ref']}:2: 'u2' has no value\n"


def test_score_slu_sf(tmp_path, capsys):
    f = _files(tmp_path, ref="u1 wake me B-time at six E-time\n", hyp="u1 wake me B-time at six E-time\n")
    rc = score_slu.main(["--task", "sf", "--ref", f["ref"], "--hyp", f["hyp"], "--out", str(tmp_path / "o")])
    assert rc == 0 and "slot type F1 100.00%" in capsys.readouterr().out
    assert (tmp_path / "o" / "slots.txt").is_file()


def test_make_results(tmp_path, capsys):
    score = tmp_path / "exp" / "t" / "decode" / "test" / "score.json"
    score.parent.mkdir(parents=True)
    score.write_text(json.dumps({"task": "asr", "wer": 1.0, "cer": 0.5, "n_utt": 3, "sent_err": 33.3}))
    out = tmp_path / "RESULTS.md"
    assert make_results.main(["--exp", str(tmp_path / "exp"), "--out", str(out)]) == 0
    assert "| t | test | 3 | 1.00 | 0.50 | 33.30 |" in out.read_text()
    assert make_results.main(["--exp", str(tmp_path / "none"), "--out", str(out)]) == 1
    assert "error: " in capsys.readouterr().err


def test_module_entry_point_has_no_traceback(tmp_path):
    f = _files(tmp_path, ref="u1 a\n", hyp=b"u1 \xff\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "toolkit.bin.score_asr", "--ref", f["ref"], "--hyp", f["hyp"], "--out", "o"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {f['hyp']}:1: not valid UTF-8 (invalid start byte at byte 3)\n"
