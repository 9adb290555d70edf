"""One process or many: torch.distributed DDP when launched by toolkit.launch or torchrun (WORLD_SIZE > 1), a no-op
otherwise.

CPU processes use the gloo backend, GPUs nccl with one device per process (LOCAL_RANK).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel


@dataclass
class Distributed:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
        """DDP around `model` when there are several processes. `find_unused_parameters`: some parameters may get no
        gradient in a step (e.g. a speech model's layers above the one a loss reads); DDP must then look for them."""
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)

    def from_main(self, value):
        """The main process's `value` (a picklable object) on every process."""
        if self.world == 1:
            return value
        box = [value]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def checkpoint_fields(self) -> dict:
        """What a checkpoint records about the processes: their number, when there are several (one-process
        checkpoints stay as they were)."""
        return {"world": self.world} if self.world > 1 else {}

    def check_resume(self, state: dict, where) -> None:
        """A checkpoint's position in an epoch counts one process's share of the batches, so it means the same only
        with as many processes as the run that wrote it (at an epoch boundary any number will do)."""
        saved = state.get("world", 1)
        if saved != self.world and state["progress"]["batch"]:
            raise ValueError(
                f"{where}: the last checkpoint was written in the middle of an epoch by a run on {saved} "
                f"process(es); resume it on {saved} (this run has {self.world})"
            )

    def no_sync(self, model: torch.nn.Module, skip: bool):
        """Skip the gradient all-reduce on accumulation steps that are not an optimizer step."""
        if skip and isinstance(model, DistributedDataParallel):
            return model.no_sync()
        return nullcontext()

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()

    def cleanup(self) -> None:
        if self.world > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def setup(device: torch.device) -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed(0, 1, device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # toolkit.launch starts one-node runs with a file store (no rendezvous port on the network); torchrun
        # (several nodes) passes its rendezvous through the environment.
        init_method = os.environ.get("TOOLKIT_INIT_METHOD")
        if init_method:
            torch_dist.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world)
        else:
            torch_dist.init_process_group(backend=backend)
    return Distributed(rank, world, device)


@contextmanager
def session(device: torch.device) -> Iterator[Distributed]:
    """`setup()` for the length of a with-block; the process group is destroyed on every exit, errors included."""
    dist = setup(device)
    try:
        yield dist
    finally:
        dist.cleanup()
