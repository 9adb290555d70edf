"""Start a training entry point as several processes (DDP): on this machine, or on the nodes of a Slurm job.

One node: the processes are started here, one per GPU (or CPU process), and meet through a file store in a private
temporary folder, so nothing listens on a network port for the rendezvous; gloo and NCCL are kept on the loopback
interface. (torchrun's stores listen on every interface, even with --standalone.)

Several nodes: `srun` starts one torchrun per node of the allocation (or makes the allocation), and every torchrun
meets the others at a c10d rendezvous on the first node of SLURM_JOB_NODELIST, keyed by the Slurm job id.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RDZV_PORT = 29400  # the rendezvous port on the first node (torchrun's default c10d port); TOOLKIT_RDZV_PORT changes it
INIT_METHOD_ENV = "TOOLKIT_INIT_METHOD"  # toolkit.train.distributed reads it (a file:// store)


def local_environments(nproc: int, store: Path) -> list[dict[str, str]]:
    """The environment of each of `nproc` processes on this machine: ranks, the file store, loopback sockets."""
    base = dict(os.environ)
    for name in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        base.setdefault(name, "lo")
    base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    base[INIT_METHOD_ENV] = store.as_uri()
    envs = []
    for rank in range(nproc):
        env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc))
        env.pop("MASTER_ADDR", None)
        env.pop("MASTER_PORT", None)
        envs.append(env)
    return envs


def run_local(nproc: int, args: list[str]) -> int:
    """Run `python args...` as nproc ranks; when one fails the others are stopped. Returns the first failure's code."""
    with tempfile.TemporaryDirectory(prefix="toolkit-launch-") as folder:
        procs = [
            subprocess.Popen([sys.executable, *args], env=env, start_new_session=False)
            for env in local_environments(nproc, Path(folder) / "store")
        ]
        try:
            code = 0
            while any(p.poll() is None for p in procs):
                failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
                if failed:
                    code = failed[0]
                    for p in procs:
                        if p.poll() is None:
                            p.send_signal(signal.SIGTERM)
                    break
                time.sleep(0.2)
            for p in procs:
                p.wait()
            return code or next((p.returncode for p in procs if p.returncode != 0), 0)
        except KeyboardInterrupt:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait()
            raise


def slurm_command(nnodes: int, nproc: int, args: list[str], srun_options: list[str]) -> list[str]:
    """`srun` over nnodes, one task per node, each running torchrun with a c10d rendezvous on the first node."""
    port = int(os.environ.get("TOOLKIT_RDZV_PORT", RDZV_PORT))
    head = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--nproc-per-node", str(nproc)]
    # The rendezvous id and endpoint are expanded on each node, inside the allocation: hence a shell.
    rendezvous = (
        '--rdzv-backend c10d --rdzv-id "toolkit-$SLURM_JOB_ID" '
        f'--rdzv-endpoint "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):{port}"'
    )
    script = f"{shlex.join(head)} {rendezvous} {shlex.join(args)}"
    return [
        "srun",
        f"--nodes={nnodes}",
        f"--ntasks={nnodes}",
        "--ntasks-per-node=1",
        *srun_options,
        "bash",
        "-c",
        script,
    ]


def run_slurm(nnodes: int, nproc: int, args: list[str], srun_options: list[str]) -> int:
    command = slurm_command(nnodes, nproc, args, srun_options)
    print(f"launching: {shlex.join(command)}", file=sys.stderr, flush=True)
    try:
        return subprocess.run(command).returncode
    except FileNotFoundError:
        raise RuntimeError("srun not found: training on several nodes needs Slurm (or use --nnodes 1)") from None
