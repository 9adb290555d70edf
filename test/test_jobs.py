import os
import stat
import sys
import textwrap

import pytest

from toolkit.bin.run_jobs import main as run_jobs_main
from toolkit.jobs import log_tail, run_local, run_slurm

PY = sys.executable


def test_local_jobs_substitute_job_index(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code = f"import sys; open('{out}/' + sys.argv[1], 'w').write(sys.argv[1])"
    results = run_local([PY, "-c", code, "JOB"], 3, str(tmp_path / "log/x.JOB.log"))
    assert [r.returncode for r in results] == [0, 0, 0]
    assert sorted(p.name for p in out.iterdir()) == ["1", "2", "3"]
    assert (tmp_path / "log/x.2.log").read_text().count("exit status 0") == 1


def test_local_jobs_share_the_cores_unless_the_user_set_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    code = "import os, sys; print('threads=' + os.environ['OMP_NUM_THREADS'])"
    run_local([PY, "-c", code], 4, str(tmp_path / "a.JOB.log"))
    assert "threads=2" in (tmp_path / "a.1.log").read_text()
    run_local([PY, "-c", code], 4, str(tmp_path / "b.JOB.log"), max_parallel=1)  # one at a time: all cores
    assert "threads=8" in (tmp_path / "b.3.log").read_text()
    run_local([PY, "-c", code], 16, str(tmp_path / "c.JOB.log"))
    assert "threads=1" in (tmp_path / "c.16.log").read_text()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    run_local([PY, "-c", code], 4, str(tmp_path / "d.JOB.log"))
    assert "threads=3" in (tmp_path / "d.2.log").read_text()


def test_failure_prints_tail_of_failing_log(tmp_path, capsys):
    code = "import sys; j = int(sys.argv[1]); print('line', j); sys.exit(3 if j == 2 else 0)"
    rc = run_jobs_main(["--nj", "2", "--log", str(tmp_path / "s.JOB.log"), "--", PY, "-c", code, "JOB"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "job 2 failed (exit status 3)" in err and "line 2" in err
    assert "job 1 failed" not in err


def test_log_tail_resolves_progress_bars(tmp_path):
    log = tmp_path / "l"
    log.write_text("start\n 10%|#   |\r 50%|##  |\r100%|####|\nerror: boom\n")
    assert log_tail(log) == "start\n100%|####|\nerror: boom"


def test_cli_rejects_log_without_job(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_jobs_main(["--nj", "2", "--log", str(tmp_path / "x.log"), "--", "true"])
    assert "must contain JOB" in capsys.readouterr().err


def fake_sbatch(bin_dir):
    """A stand-in for Slurm's sbatch: runs the array tasks one by one with SLURM_ARRAY_TASK_ID set."""
    script = bin_dir / "sbatch"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{PY}
            import os, subprocess, sys
            args = sys.argv[1:]
            opts = {{a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}}
            assert "--wait" in args, "the runner must wait for the array"
            first, last = map(int, opts["--array"].split("-"))
            open(os.path.join({str(bin_dir)!r}, "calls"), "a").write(" ".join(args) + "\\n")
            worst = 0
            for task in range(first, last + 1):
                log = opts["--output"].replace("%a", str(task))
                env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(task))
                with open(log, "w") as f:
                    worst = max(worst, subprocess.call(["bash", args[-1]], stdout=f, stderr=subprocess.STDOUT, env=env))
            sys.exit(1 if worst else 0)
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_slurm_backend_with_fake_sbatch(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_sbatch(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    code = "import sys; j = int(sys.argv[1]); print('task', j, 'says hi'); sys.exit(5 if j == 3 else 0)"
    results = run_slurm([PY, "-c", code, "JOB"], 3, str(tmp_path / "logs/t.JOB.log"), ["--partition=cpu"], "t")
    assert [r.returncode for r in results] == [0, 0, 5]
    assert "task 2 says hi" in (tmp_path / "logs/t.2.log").read_text()
    call = (bin_dir / "calls").read_text()
    assert "--array=1-3" in call and "--partition=cpu" in call and "--job-name=t" in call


def test_slurm_cli_reports_failing_task(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_sbatch(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code = "import sys; print('bad input in shard', sys.argv[1]); sys.exit(int(sys.argv[1]) - 1)"
    log = str(tmp_path / "logs/t.JOB.log")
    assert run_jobs_main(["--backend", "slurm", "--nj", "2", "--log", log, "--", PY, "-c", code, "JOB"]) == 1
    err = capsys.readouterr().err
    assert "job 2 failed (exit status 1)" in err and "bad input in shard 2" in err


def test_slurm_backend_without_sbatch_is_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    rc = run_jobs_main(["--backend", "slurm", "--nj", "1", "--log", str(tmp_path / "a.JOB.log"), "--", "true"])
    assert rc == 1 and "sbatch not found" in capsys.readouterr().err


def test_progress_summary_of_a_running_job(tmp_path):
    from toolkit.jobs import _progress_of

    log = tmp_path / "l"
    log.write_text("# cmd\n")
    assert _progress_of(log) == "starting"
    log.write_text(
        "# cmd\n\rsynth:   1%|   | 9/1500 [00:00<00:17, 90utt/s]\rsynth:  43%|####  | 643/1500 [00:06<00:08, 97.83utt/s]"
    )
    assert _progress_of(log) == "43% 643/1500 ETA 00:08"


def test_each_local_job_sees_one_gpu_in_turn(tmp_path, monkeypatch):
    code = "import os; print('gpu=' + os.environ['CUDA_VISIBLE_DEVICES'])"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    run_local([PY, "-c", code], 4, str(tmp_path / "a.JOB.log"), gpus=2)
    assert [f"gpu={g}" in (tmp_path / f"a.{k}.log").read_text() for k, g in ((1, 0), (2, 1), (3, 0), (4, 1))] == [
        True
    ] * 4
    # The devices the user made visible are the ones shared out.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert run_jobs_main(["--nj", "2", "--gpus", "2", "--log", str(tmp_path / "b.JOB.log"), "--", PY, "-c", code]) == 0
    assert "gpu=7" in (tmp_path / "b.2.log").read_text()


def test_slurm_tasks_ask_for_one_gpu_each(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_sbatch(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    results = run_slurm([PY, "-c", "pass"], 2, str(tmp_path / "logs/g.JOB.log"), [], "g", gpus=2)
    assert [r.returncode for r in results] == [0, 0]
    assert "--gres=gpu:1" in (bin_dir / "calls").read_text()
