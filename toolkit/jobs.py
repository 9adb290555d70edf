"""Run N copies of a command (one per data shard) on local processes or as a Slurm job array.

The literal string `JOB` in the command and the log path is replaced by the job's index, 1..N (Kaldi's run.pl
convention). Every job writes its own log; when one fails, the tail of its log is printed, not just "N jobs failed".
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 20
STATUS_WIDTH = 160
NONINTERACTIVE_REPORT_S = 30.0
TQDM_STATE = re.compile(r"(?P<percent>\d+%)\|.*?\|\s*(?P<count>\d+/\d+) \[[^<]*<(?P<eta>[^,\]]*)")
PLACEHOLDER = "JOB"


@dataclass
class JobResult:
    index: int
    returncode: int
    log: Path


def substitute(args: list[str], index: int | str) -> list[str]:
    return [a.replace(PLACEHOLDER, str(index)) for a in args]


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log, with progress-bar carriage returns resolved to their final state."""
    if not path.exists():
        return "(no log was written)"
    text = path.read_bytes()[-64_000:].decode("utf-8", "replace")
    cleaned = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join([line for line in cleaned if line.strip()][-lines:])


def _progress_of(path: Path) -> str:
    """The newest progress-bar state (tqdm writes `...%|...` updates separated by carriage returns)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 400))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    updates = [u.strip() for u in re.split(r"[\r\n]", tail) if "%|" in u]
    if not updates:
        return "starting"
    # "desc:  43%|####  | 643/1500 [00:06<00:08, 97.8utt/s]" -> "43% 643/1500 ETA 00:08"
    m = TQDM_STATE.search(updates[-1])
    return f"{m['percent']} {m['count']} ETA {m['eta']}" if m else updates[-1]


def report_failures(results: list[JobResult], out=None) -> None:
    out = out or sys.stderr
    failed = [r for r in results if r.returncode != 0]
    for r in failed:
        print(f"\n=== job {r.index} failed (exit status {r.returncode}); last lines of {r.log}:", file=out)
        print(log_tail(r.log), file=out)
    if failed:
        print(f"\n{len(failed)} of {len(results)} job(s) failed; logs: {failed[0].log.parent}", file=out)


def job_environment(parallel: int) -> dict[str, str]:
    """The environment of a local job: the cores shared out between the jobs that run at once. Without this every
    job's torch/OpenMP starts one thread per core, and N jobs on N cores spin-wait on each other (measured: speed
    perturbation ran 10x slower). A thread count the user exported wins."""
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, parallel)))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, threads)
    return env


def job_gpu(index: int, gpus: int, visible: str | None) -> str:
    """The one GPU job `index` (1-based) sees: jobs take the GPUs in turn. `visible` is the CUDA_VISIBLE_DEVICES the
    user exported, if any: then the jobs share out those devices, not 0..gpus-1."""
    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    devices = devices[:gpus] if devices else [str(i) for i in range(gpus)]
    return devices[(index - 1) % len(devices)]


def run_local(
    command: list[str], nj: int, log_pattern: str, max_parallel: int | None = None, gpus: int = 0
) -> list[JobResult]:
    """Run jobs 1..nj as local processes, at most max_parallel at once; stop the rest when one fails.

    With gpus > 0 each job sees one GPU (CUDA_VISIBLE_DEVICES), the GPUs taken in turn, so `--device cuda` in the
    command puts job k on GPU (k-1) mod gpus instead of every job on GPU 0."""
    max_parallel = max_parallel or nj
    env = job_environment(min(nj, max_parallel))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    pending = list(range(1, nj + 1))
    running: dict[int, tuple[subprocess.Popen, Path]] = {}
    results: list[JobResult] = []
    # A recipe pipes stage output through `tee`, so it tells us whether a person is watching.
    interactive = sys.stderr.isatty() or os.environ.get("TOOLKIT_INTERACTIVE") == "1"
    last_report = time.time()
    failed = False
    try:
        while pending or running:
            while pending and len(running) < max_parallel and not failed:
                index = pending.pop(0)
                log = Path(log_pattern.replace(PLACEHOLDER, str(index)))
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "w") as f:
                    f.write(f"# {shlex.join(substitute(command, index))}\n# started {time.ctime()}\n")
                    f.flush()
                    job_env = env if gpus <= 0 else {**env, "CUDA_VISIBLE_DEVICES": job_gpu(index, gpus, visible)}
                    proc = subprocess.Popen(substitute(command, index), stdout=f, stderr=subprocess.STDOUT, env=job_env)
                running[index] = (proc, log)
            if failed:
                pending.clear()
            for index, (proc, log) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del running[index]
                with open(log, "a") as f:
                    f.write(f"# finished {time.ctime()} with exit status {rc}\n")
                results.append(JobResult(index, rc, log))
                if rc != 0 and not failed:
                    failed = True
                    for other, _ in running.values():
                        other.terminate()
            if running and (interactive or time.time() - last_report > NONINTERACTIVE_REPORT_S):
                shown = [f"job {i}: {_progress_of(log)}" for i, (_, log) in sorted(running.items())[:2]]
                status = f"[{len(results)}/{nj} done] " + " | ".join(shown)
                if interactive:  # redraw one line in place
                    print(f"\r{status[:STATUS_WIDTH]:<{STATUS_WIDTH}}", end="", file=sys.stderr, flush=True)
                else:  # a log file: a full line now and then
                    print(status, file=sys.stderr, flush=True)
                    last_report = time.time()
            time.sleep(0.2)
    except KeyboardInterrupt:
        for proc, _ in running.values():
            proc.terminate()
        raise
    finally:
        if interactive:
            print("\r" + " " * STATUS_WIDTH + "\r", end="", file=sys.stderr, flush=True)
    return sorted(results, key=lambda r: r.index)


def run_slurm(
    command: list[str], nj: int, log_pattern: str, sbatch_options: list[str], name: str, gpus: int = 0
) -> list[JobResult]:
    """Submit jobs 1..nj as one `sbatch --array` and wait for it; each job records its exit status in a file,
    because `sbatch --wait` only says that some task failed, not which. With gpus > 0 every task asks for one GPU
    (`--gres=gpu:1`; Slurm sets its CUDA_VISIBLE_DEVICES), unless sbatch_options already ask for GPUs."""
    log_dir = Path(log_pattern).parent
    log_dir.mkdir(parents=True, exist_ok=True)
    work = log_dir / f".slurm.{name}"
    work.mkdir(exist_ok=True)
    for stale in work.glob("status.*"):
        stale.unlink()
    (work / "commands").write_text("".join(shlex.join(substitute(command, i)) + "\n" for i in range(1, nj + 1)))
    script = work / "job.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f"cd {shlex.quote(os.getcwd())}\n"
        f'cmd=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(str(work / "commands"))})\n'
        'echo "# $cmd"; echo "# started $(date) on $(hostname)"\n'
        'eval "$cmd"; rc=$?\n'
        'echo "# finished $(date) with exit status $rc"\n'
        f"echo $rc > {shlex.quote(str(work))}/status.${{SLURM_ARRAY_TASK_ID}}\n"
        "exit $rc\n"
    )
    output = log_pattern.replace(PLACEHOLDER, "%a")
    sbatch = ["sbatch", "--wait", f"--array=1-{nj}", f"--job-name={name}", f"--output={output}", *sbatch_options]
    if gpus > 0 and not any(o.startswith(("--gres", "--gpus")) for o in sbatch_options):
        sbatch.append("--gres=gpu:1")
    print(f"submitting: {shlex.join(sbatch + [str(script)])}", file=sys.stderr)
    try:
        proc = subprocess.run([*sbatch, str(script)], capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError("sbatch not found: the slurm backend needs Slurm; set cmd_backend=local in cmd.sh") from None
    if proc.returncode != 0 and not any(work.glob("status.*")):
        raise RuntimeError(f"sbatch failed (exit status {proc.returncode}): {proc.stderr.strip()}")
    results = []
    for index in range(1, nj + 1):
        status = work / f"status.{index}"
        rc = int(status.read_text().strip() or 1) if status.exists() else 255  # no status: killed or never ran
        results.append(JobResult(index, rc, Path(log_pattern.replace(PLACEHOLDER, str(index)))))
    return results
