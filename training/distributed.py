"""torch.distributed for training: process group, device, batch sharding, reductions.

``torchrun`` starts one process per GPU (or CPU worker) and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`setup` reads them and joins the process group (``nccl`` on CUDA,
``gloo`` on CPU). Without them, training runs as one process and nothing here
touches ``torch.distributed``.

Sharding is deterministic and independent of the number of processes: every
process draws the same permutation and the same augmentation for the whole
global batch of ``B`` samples (same seed, same generator), then keeps its own
contiguous slice (:func:`shard`), and back-propagates
``sum of its per-sample losses / B``. The communication hook
(:func:`ordered_sum_hook`) gathers every process's gradient and adds them in
rank order, so the applied gradient is the global batch mean for any shard
sizes (the last partial batch included), and it is bit-for-bit the gradient
that one process computes when it accumulates the same shards in the same
order (``TrainConfig.grad_shards``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from slssnn.errors import SlssnnError

DEVICE_CHOICES = "cpu, cuda, cuda:N"


@dataclass(frozen=True)
class Context:
    """Where this process trains: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when the environment describes more than one training process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0 (or no torchrun at all): before or after the process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """The torch device for ``--device``; ``cuda`` under torchrun means ``cuda:LOCAL_RANK``.

    An unknown name, or CUDA asked for where torch sees no GPU, is a one-line error.
    """
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SlssnnError(f"--device {name!r}: unknown device; use one of {DEVICE_CHOICES}"
                          ) from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise SlssnnError(f"--device {name!r}: unsupported; use one of {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise SlssnnError(f"--device {name}: CUDA is not available (torch {torch.__version__} "
                          "sees no GPU); use --device cpu")
    count = torch.cuda.device_count()
    if local_rank is not None:
        if device.index is not None:
            raise SlssnnError(f"--device {name}: under torchrun use --device cuda (each "
                              "process takes cuda:LOCAL_RANK)")
        device = torch.device("cuda", local_rank)
    index = 0 if device.index is None else device.index
    if index >= count:
        raise SlssnnError(f"--device {name}: cuda:{index} does not exist ({count} GPU(s) visible)")
    return torch.device("cuda", index)


def setup(device_name: str) -> Context:
    """Join the torchrun process group if there is one; return this process's context."""
    if not launched_by_torchrun():
        return Context(device=resolve_device(device_name))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank=rank, world_size=world, local_rank=local_rank, device=device)


def teardown(ctx: Context) -> None:
    """Leave the process group (after a barrier, so no process exits while others still talk)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(n: int, rank: int, world_size: int) -> slice:
    """This rank's contiguous part of ``n`` items; sizes differ by at most one.

    The parts of ranks ``0 .. world_size - 1`` cover ``0 .. n - 1`` in order.
    """
    return slice(n * rank // world_size, n * (rank + 1) // world_size)


def _comm_device(ctx: Context) -> torch.device:
    return ctx.device if ctx.device.type == "cuda" else torch.device("cpu")


def all_sum(values: list[float], ctx: Context) -> list[float]:
    """Sum ``values`` over all processes (float64); the identity in one process."""
    if not ctx.distributed:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device=_comm_device(ctx))
    dist.all_reduce(total)
    return total.tolist()


def broadcast_object(obj: Any, ctx: Context) -> Any:
    """Rank 0's ``obj`` on every process (pickled; the identity in one process)."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_comm_device(ctx))
    return box[0]


def ordered_sum_hook(process_group: Any, bucket: dist.GradBucket) -> torch.futures.Future:
    """DDP communication hook: every process's gradients, summed in rank order.

    ``((g_0 + g_1) + g_2) + ...`` on every process: the same additions, in the
    same order, as gradient accumulation over the shards in one process, so a
    torchrun run and a one-process run with ``grad_shards = world_size`` agree
    bit for bit. Costs an all-gather (``world_size`` copies of a bucket)
    instead of an all-reduce.
    """
    group = process_group if process_group is not None else dist.group.WORLD
    buffer = bucket.buffer()
    parts = [torch.empty_like(buffer) for _ in range(dist.get_world_size(group))]
    work = dist.all_gather(parts, buffer, group=group, async_op=True)

    def total(_: torch.futures.Future) -> torch.Tensor:
        out = parts[0].clone()
        for part in parts[1:]:
            out.add_(part)
        return out

    return work.get_future().then(total)


# DDP checks the hook's annotations as objects; ``from __future__ import annotations``
# leaves them as strings.
ordered_sum_hook.__annotations__.update(
    {"bucket": dist.GradBucket, "return": torch.futures.Future[torch.Tensor]})
