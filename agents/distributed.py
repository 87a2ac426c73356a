"""Data-parallel training with PyTorch's own launcher, ``torchrun``: one process per device.

    torchrun --standalone --nproc_per_node=2 train_reinforce.py ...     # 2 processes, 1 machine
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29400 --rdzv-id=ram1 train_reinforce.py ...  # the same on each node

torchrun starts the processes and tells each its place in the environment variables ``RANK``
(0 .. ``WORLD_SIZE - 1``), ``LOCAL_RANK`` (its number on its machine) and ``WORLD_SIZE``, with
the rendezvous in ``MASTER_ADDR``/``MASTER_PORT``. ``Group.from_environment`` reads them; without
them the group is this one process and every collective below returns at once, so the
single-process path runs no distributed code at all.

Each process holds a full copy of the agent on its own device (``cuda:LOCAL_RANK``, or the
CPU), plays its own episodes and adds its gradients to everyone's (``sum_gradients``, one
all-reduce per optimizer step, as CleanRL's multi-GPU PPO does: the RAM agent is driven through
several methods per glimpse, not the one ``forward`` that ``DistributedDataParallel`` wraps).
Since every process starts from the same weights and applies the same summed gradient, the
copies stay equal. The backend is NCCL on CUDA and Gloo on the CPU.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import distributed as dist

from ram_env.core import resolve_device

__all__ = ["SINGLE", "DistributedError", "Group"]

#: The variables torchrun sets in every process it starts.
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


class DistributedError(RuntimeError):
    """The processes of a run cannot work together: they disagree on its settings."""


@dataclass(frozen=True)
class Group:
    """The processes of one run and this process's place among them.

    Attributes:
        rank: this process, in ``[0, world_size)``; rank 0 alone validates, logs and writes.
        local_rank: this process on its machine (which GPU it takes).
        world_size: the number of processes.
        launched: started by torchrun (then ``start`` joins the process group, even for one).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    launched: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Group:
        """The group torchrun described in ``environ``, or ``SINGLE`` when there is none.

        Raises ``ValueError`` when only some of the variables are set or they are not
        integers with ``0 <= RANK < WORLD_SIZE``.
        """
        given = [name for name in LAUNCH_VARIABLES if name in environ]
        if not given:
            return SINGLE
        try:
            rank, local_rank, world_size = (int(environ[name]) for name in LAUNCH_VARIABLES)
        except (KeyError, ValueError):
            values = {name: environ.get(name) for name in LAUNCH_VARIABLES}
            raise ValueError(
                f"torchrun sets {', '.join(LAUNCH_VARIABLES)} to integers, found {values}: start "
                "several processes with torchrun, or one without any of them"
            ) from None
        if not (0 <= rank < world_size and local_rank >= 0):
            raise ValueError(f"RANK {rank} is not in [0, WORLD_SIZE={world_size})")
        return cls(rank=rank, local_rank=local_rank, world_size=world_size, launched=True)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, prints, logs and writes the run's files."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one process: the collectives have work to do."""
        return self.world_size > 1

    def device(self, requested: str) -> torch.device:
        """This process's device for ``--device requested``.

        Launched by torchrun, ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` (``auto``: the
        CPU when there is no GPU) and ``cpu`` the CPU; ``cuda:N`` is refused, as every process
        of a machine would take the same GPU. Raises ``ValueError`` or ``RuntimeError``
        (``ram_env.core.resolve_device``'s errors) for a device that cannot work.
        """
        if not self.launched:
            return resolve_device(requested)
        if requested not in ("auto", "cpu", "cuda"):
            raise ValueError(
                f"{requested!r} under torchrun: each process takes cuda:LOCAL_RANK, so give "
                "'auto', 'cuda' or 'cpu' (choose the GPUs with CUDA_VISIBLE_DEVICES)"
            )
        if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available")
        if self.local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"process LOCAL_RANK={self.local_rank} has no GPU: this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per machine "
                "(--nproc_per_node)"
            )
        return resolve_device(f"cuda:{self.local_rank}")

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL for a CUDA ``device``, else Gloo); nothing for
        ``SINGLE``. Blocks until every process of the run has joined.

        ``torch._dynamo`` is imported first. Its first import (by ``torch.optim``, for one)
        keeps a reference to a process group that already exists (torch 2.14), and then
        ``destroy_process_group`` in ``close`` cannot free the group. Its Gloo worker threads
        would live on into the interpreter's exit. A thread that drops the last reference to
        a Python tensor there aborts the process ("terminate called without an active
        exception", SIGABRT). That happened to rank 1 of a two-process run on a busy
        machine, after the run had finished.
        """
        if not self.launched:
            return
        import torch._dynamo  # before the group exists (see above)

        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")

    def close(self, finished: bool = False) -> None:
        """Leave the process group (at the end of the run, also after an error).

        ``finished``: every process got to the end of the run; they then wait for each other
        first, so that no process tears its connections down while another still uses them
        (with Gloo that can abort the other process at exit). After an error no process waits:
        another may never come.
        """
        if self.launched and dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.parallel:
            dist.barrier()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` (on this process's device) over the processes, in place; returns it."""
        if self.parallel:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each parameter's ``.grad`` by the sum over the processes (one all-reduce of
        one flat buffer). Parameters without a gradient are skipped (the same on every
        process: all run the same model and settings)."""
        if not self.parallel:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = self.sum_(torch.cat([grad.reshape(-1) for grad in grads]))
        for grad, summed in zip(grads, flat.split([grad.numel() for grad in grads]), strict=True):
            grad.copy_(summed.view_as(grad))

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Give every process rank 0's weights (they start equal anyway, from the same seed)."""
        if self.parallel:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def broadcast_float(self, value: float, device: torch.device) -> float:
        """Rank 0's ``value`` on every process (``value`` is ignored elsewhere)."""
        if not self.parallel:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This process's contiguous part of ``indices`` ``[n]`` (sizes differ by at most one;
        empty when ``n < world_size``): every item goes to exactly one process."""
        return torch.tensor_split(indices, self.world_size)[self.rank]

    def check_same(self, value: object, what: str) -> None:
        """Raise ``DistributedError`` unless every process holds the same ``value`` (picklable),
        e.g. the run's settings: each process parses its own command line and reads the run
        folder itself (on several machines, it must be on a shared file system)."""
        if not self.parallel:
            return
        values: list[object] = [None] * self.world_size
        dist.all_gather_object(values, pickle.dumps(value))
        differ = [rank for rank, other in enumerate(values) if other != values[0]]
        if differ:
            raise DistributedError(
                f"the processes disagree on the {what}: rank(s) {differ} differ from rank 0 "
                "(the same command line and run folder must reach every process)"
            )


#: This process alone: no torchrun, no process group, every collective a no-op.
SINGLE = Group()
