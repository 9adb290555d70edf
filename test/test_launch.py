"""toolkit.bin.launch: ranks on one node meet through a file store with no rendezvous port on the network; several
nodes go through srun and torchrun (here a fake srun and scontrol that run the "nodes" on this machine)."""

from __future__ import annotations

import os
import socket
import stat
import sys
import textwrap
from pathlib import Path

from toolkit.bin.launch import main as launch_main

REPO = Path(__file__).resolve().parents[1]
# Each rank all-reduces rank + 1 and writes the sum; rank 0 also lists the TCP ports its own process listens on.
WORKER = """
import os, sys, torch
from toolkit.train.distributed import session
out = sys.argv[1]
with session(torch.device("cpu")) as dist:
    value = torch.tensor([dist.rank + 1.0])
    torch.distributed.all_reduce(value)
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if target.startswith("socket:"):
            inodes.add(target[8:-1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                listening.append(fields[1].split(":")[0])
    open(f"{out}/rank{dist.rank}", "w").write(f"{dist.world} {value.item():g} {' '.join(listening)}")
    if os.environ.get("FAIL_RANK") == str(dist.rank):
        sys.exit(3)
"""
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_one_node_ranks_meet_without_a_network_port(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    assert launch_main(["--nproc", "2", "--", str(script), str(tmp_path)]) == 0
    for rank in (0, 1):
        world, total, *listening = (tmp_path / f"rank{rank}").read_text().split()
        assert (world, total) == ("2", "3")
        # gloo's own sockets listen on the loopback only; no rendezvous store listens at all
        assert set(listening) <= LOOPBACK, listening


def test_a_failing_rank_fails_the_launch(tmp_path, monkeypatch):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    monkeypatch.setenv("FAIL_RANK", "1")
    assert launch_main(["--nproc", "2", "--", str(script), str(tmp_path)]) == 3


def fake_slurm(bin_dir: Path) -> None:
    """srun that runs its task once per node, all at once, on this machine; scontrol that names this machine."""
    srun = bin_dir / "srun"
    srun.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import os, subprocess, sys
            args = sys.argv[1:]
            nodes = int(next(a for a in args if a.startswith("--nodes=")).split("=")[1])
            command = args[next(i for i, a in enumerate(args) if not a.startswith("--")):]
            open(os.path.join({str(bin_dir)!r}, "srun_calls"), "a").write(" ".join(args) + "\\n")
            env = dict(os.environ, SLURM_JOB_ID="42", SLURM_JOB_NODELIST="node[1-2]")
            procs = [subprocess.Popen(command, env=dict(env, SLURM_NODEID=str(k))) for k in range(nodes)]
            sys.exit(max(p.wait() for p in procs))
            """
        )
    )
    scontrol = bin_dir / "scontrol"
    scontrol.write_text("#!/usr/bin/env bash\necho localhost\necho localhost\n")
    for path in (srun, scontrol):
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_through_srun_and_a_c10d_rendezvous(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_slurm(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TOOLKIT_RDZV_PORT", str(free_port()))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    argv = ["--nnodes", "2", "--nproc", "1", "--srun-options=--partition=gpu", "--", str(script), str(tmp_path)]
    assert launch_main(argv) == 0
    for rank in (0, 1):
        world, total, *_ = (tmp_path / f"rank{rank}").read_text().split()
        assert (world, total) == ("2", "3")
    call = (bin_dir / "srun_calls").read_text()
    assert "--nodes=2" in call and "--ntasks-per-node=1" in call and "--partition=gpu" in call


def test_without_srun_several_nodes_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert launch_main(["--nnodes", "2", "--nproc", "1", "--", "-c", "pass"]) == 1
    assert "srun not found" in capsys.readouterr().err
