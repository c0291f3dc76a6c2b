"""Scale-out on ``torchrun``: one process per device, DistributedDataParallel θ-steps.

``torchrun --nproc_per_node=N -m autobalance search ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init_from_env` joins them into one process group
(NCCL on GPUs, gloo on CPUs). How the search runs on it:

- **data**: ``train.batch_size`` stays the *global* batch B. Epoch e's order ``randperm(N)``
  (seeded as on one process) is padded by wrapping to a multiple of W and dealt out by position,
  rank r taking positions r, r + W, r + 2W, … (``DistributedSampler``'s rule); with batches of
  B/W, step i of the W ranks together covers positions [iB, (i+1)B) of the order, the batch that
  one process with batch B takes at step i;
- **θ-steps**: the model is wrapped in ``DistributedDataParallel`` for the forward/backward of
  the training loop, so ∇θ is the mean over ranks = the gradient of the global batch mean;
- **hyper-step**: ``torch.autograd.grad`` does not go through DDP, so the hyper-step differentiates
  the unwrapped module. Each rank takes its share (by position) of the hyper-step's training and
  validation batches; the validation gradient (and the direct term ∂L_val/∂α), every
  Hessian-vector product and the final mixed product are averaged over ranks
  (:func:`all_reduce_mean`), so α stays identical on every rank. For a validation objective that
  is a per-sample mean (CE) and shares of equal size this is the one-process hypergradient of the
  whole batch; for the class-balanced objectives it is the mean of the shards' objectives, a
  close estimate (per-class means are taken per shard);
- **evaluation**: each rank predicts its share of the rows (positions r, r + W, …) and the
  predictions are all-gathered, so every rank computes the same metrics (and the guard takes
  the same decisions) at 1/W of the cost;
- **files**: rank 0 writes the run directory and the checkpoints; every rank resumes from them.

BatchNorm statistics stay per rank (as in plain DDP); ``model.sync_batchnorm`` is not offered.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from autobalance.hypergrad.tuples import TensorTuple


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.world > 1


def info() -> DistInfo:
    """The current process group's rank and size (rank 0 of 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size())
    return DistInfo()


def launched_by_torchrun() -> bool:
    """True when ``WORLD_SIZE`` > 1 in the environment (``torchrun`` sets it)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str) -> tuple[DistInfo, str]:
    """Join the ``torchrun`` process group; return it and this rank's device.

    ``device`` ``cuda``/``auto`` on a GPU machine gives ``cuda:LOCAL_RANK`` and NCCL; anything else
    runs on the CPU with gloo. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing happens.
    """
    if not launched_by_torchrun():
        return DistInfo(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    elif device == "auto":
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info(), device


SHUTDOWN_TIMEOUT_S = 120.0  # how long a rank waits at the exit for the others


def shutdown() -> None:
    """Leave the process group (a no-op without one), after every rank got there.

    The ranks first meet at a barrier (gloo's ``monitored_barrier``, which gives up after
    ``SHUTDOWN_TIMEOUT_S`` instead of hanging when a rank failed or left), and the garbage of
    the run (a DDP model's reducer holds the group) is collected, so that no rank tears the
    group down while another is still in its last collective. Without it a gloo rank could
    abort at exit ("terminate called without an active exception") on a loaded machine.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=SHUTDOWN_TIMEOUT_S))
        else:
            dist.barrier()
    except Exception:  # a rank failed or left: leave anyway, its error is reported elsewhere
        pass
    gc.collect()
    dist.destroy_process_group()


def all_reduce_mean(tensors: Sequence[Tensor]) -> TensorTuple:
    """The mean over ranks of each tensor (one flat all-reduce); the inputs unchanged without a
    process group."""
    tensors = tuple(tensors)
    if not info().active or not tensors:
        return tensors
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info().world
    out, start = [], 0
    for t in tensors:
        out.append(flat[start : start + t.numel()].view_as(t).to(t.dtype))
        start += t.numel()
    return tuple(out)


def share(index: Tensor) -> Tensor:
    """This rank's share of a batch of positions: entries r, r + W, r + 2W, …"""
    d = info()
    return index[d.rank :: d.world] if d.active else index


def shard_order(order: Tensor, rank: int, world: int) -> Tensor:
    """``order`` padded by wrapping to a multiple of ``world``, then entries rank, rank + world, …
    (``torch.utils.data.DistributedSampler``'s rule, applied to a given order)."""
    if world <= 1:
        return order
    n = order.numel()
    total = -(-n // world) * world
    if total > n:
        order = torch.cat([order, order[: total - n]])
    return order[rank::world]


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` in a process group, else ``model``."""
    if not info().active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    dev = next(model.parameters()).device
    ids = [dev.index] if dev.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_buffers(model: nn.Module) -> None:
    """Broadcast rank 0's buffers (BatchNorm statistics) to every rank: evaluations, and so the
    guard's decisions, are then the same on every rank."""
    if not info().active:
        return
    for b in model.buffers():
        dist.broadcast(b.data, src=0)


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (``obj`` itself without a process group)."""
    if not info().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_shares(local: Tensor, n: int) -> Tensor:
    """The full (n,) tensor from each rank's share: rank r holds the entries at positions
    r, r + W, … (:func:`share`); the shares are padded to ⌈n / W⌉, all-gathered and interleaved
    back. ``local`` itself without a process group."""
    d = info()
    if not d.active:
        return local
    m = -(-n // d.world)
    padded = torch.full((m, *local.shape[1:]), -1, dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(d.world)]
    dist.all_gather(parts, padded)
    out = torch.empty((n, *local.shape[1:]), dtype=local.dtype, device=local.device)
    for r, part in enumerate(parts):
        count = len(range(r, n, d.world))
        out[r :: d.world] = part[:count]
    return out


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    if info().active:
        dist.barrier()


__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "barrier",
    "broadcast_object",
    "gather_shares",
    "info",
    "init_from_env",
    "launched_by_torchrun",
    "shard_order",
    "share",
    "shutdown",
    "sync_buffers",
    "wrap",
]
