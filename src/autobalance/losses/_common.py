"""Input checks, count tables and reductions shared by every loss in this package.

Shape checks read only tensor metadata and always run. Value checks (label and group ids in
range, finite logits) need a device→host synchronisation; they are on by default and can be
switched off in hot loops with :func:`set_value_checks` (or per call, ``values=False``). They
never run while ``torch.compile`` traces a loss, where a host read would break the graph.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from autobalance.typing import REDUCTIONS

_VALUE_CHECKS = True


def set_value_checks(enabled: bool) -> bool:
    """Turn the value checks of all losses on or off; returns the previous setting.

    Value checks verify that labels and group ids lie in range and that the loss is finite
    (which catches NaN/Inf logits). Each costs one small device→host copy per call.
    """
    global _VALUE_CHECKS
    previous = _VALUE_CHECKS
    _VALUE_CHECKS = bool(enabled)
    return previous


@contextlib.contextmanager
def scoped_value_checks(enabled: bool | None) -> Iterator[None]:
    """Within the block, the value checks are ``enabled`` (None: unchanged); the previous
    setting is restored after it, also when it raises."""
    if enabled is None:
        yield
        return
    previous = set_value_checks(enabled)
    try:
        yield
    finally:
        set_value_checks(previous)


def value_checks_enabled() -> bool:
    """Whether the value checks of :func:`set_value_checks` are on."""
    return _VALUE_CHECKS


def is_compiling() -> bool:
    """Whether ``torch.compile`` (dynamo) is tracing the caller (False on torch < 2.3)."""
    compiler = getattr(torch, "compiler", None)
    check = getattr(compiler, "is_compiling", None)
    return bool(check()) if check is not None else False


def _check_values(values: bool | None) -> bool:
    """Run the value checks? ``values`` (None: the global setting), never under compile."""
    enabled = _VALUE_CHECKS if values is None else values
    return enabled and not is_compiling()


def check_reduction(reduction: str, allowed: Sequence[str] = REDUCTIONS) -> str:
    """Return ``reduction`` if it is one of ``allowed``, else raise a ValueError naming them."""
    if reduction not in allowed:
        raise ValueError(f"Unknown reduction {reduction!r}, expected one of {tuple(allowed)}")
    return reduction


def check_logits_targets(
    logits: Tensor,
    targets: Tensor,
    num_classes: int | None = None,
    *,
    name: str = "loss",
    values: bool | None = None,
) -> tuple[int, int]:
    """Validate (N, K) float logits and (N,) integer targets in [0, K); return (N, K).

    The range check on ``targets`` is a value check (``values``; None: :func:`set_value_checks`).
    """
    if not isinstance(logits, Tensor) or not isinstance(targets, Tensor):
        raise ValueError(f"{name}: logits and targets must be torch.Tensor")
    if logits.dim() != 2:
        raise ValueError(f"{name}: logits must have shape (N, K), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"{name}: logits must be floating point, got {logits.dtype}")
    n, k = logits.shape
    if targets.dim() != 1 or targets.shape[0] != n:
        raise ValueError(
            f"{name}: targets must have shape ({n},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"{name}: targets must be an integer tensor, got {targets.dtype}")
    if n == 0:
        raise ValueError(f"{name}: empty batch (N = 0)")
    if num_classes is not None and k != num_classes:
        raise ValueError(f"{name}: expected logits with {num_classes} classes, got {k}")
    if _check_values(values):
        lo, hi = torch.stack(torch.aminmax(targets)).tolist()  # one device→host copy
        if lo < 0 or hi >= k:
            raise ValueError(f"{name}: targets must lie in [0, {k}), got range [{lo}, {hi}]")
    return n, k


def check_groups(
    groups: Tensor | None,
    n: int,
    num_groups: int | None = None,
    *,
    name: str = "loss",
    values: bool | None = None,
) -> Tensor:
    """Validate (N,) integer group ids in [0, G) (or ≥ 0 when G is unknown); the range check
    is a value check (``values``; None: :func:`set_value_checks`)."""
    if groups is None:
        raise ValueError(f"{name}: this loss needs group ids; pass groups=LongTensor of shape (N,)")
    if not isinstance(groups, Tensor):
        raise ValueError(f"{name}: groups must be a torch.Tensor, got {type(groups).__name__}")
    if groups.dim() != 1 or groups.shape[0] != n:
        raise ValueError(f"{name}: groups must have shape ({n},), got {tuple(groups.shape)}")
    if groups.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"{name}: groups must be an integer tensor, got {groups.dtype}")
    if _check_values(values):
        lo, hi = torch.stack(torch.aminmax(groups)).tolist()
        if lo < 0 or (num_groups is not None and hi >= num_groups):
            bound = f"[0, {num_groups})" if num_groups is not None else "[0, ∞)"
            raise ValueError(f"{name}: group ids must lie in {bound}, got range [{lo}, {hi}]")
    return groups


def check_finite(
    loss: Tensor, logits: Tensor, *, name: str = "loss", values: bool | None = None
) -> None:
    """Raise a clear ValueError when ``loss`` is not finite, saying whether logits are to blame
    (a value check: ``values``; None: :func:`set_value_checks`)."""
    if not _check_values(values):
        return
    if loss.dim() == 0 and math.isfinite(loss.item()):
        return
    if loss.dim() > 0 and bool(torch.isfinite(loss).all()):
        return
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name}: logits contain NaN or infinite values")
    raise ValueError(
        f"{name}: the loss is not finite although the logits are; check the loss parameters "
        "(weights, offsets, scales) for NaN/Inf"
    )


def reduce_loss(
    per_sample: Tensor,
    reduction: str,
    sample_weight: Tensor | None = None,
    *,
    weighted_mean: bool = False,
) -> Tensor:
    """Reduce per-sample losses ℓ_i with optional per-sample weights w_i.

    ``none``: w_i ℓ_i; ``sum``: Σ_i w_i ℓ_i; ``mean``: (1/N) Σ_i w_i ℓ_i, or Σ_i w_i ℓ_i / Σ_i w_i
    when ``weighted_mean`` (the convention of ``F.cross_entropy(weight=...)``).
    """
    values = per_sample if sample_weight is None else per_sample * sample_weight
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        if weighted_mean and sample_weight is not None:
            return values.sum() / sample_weight.sum()
        return values.mean()
    raise ValueError(f"Unknown reduction {reduction!r}, expected one of {REDUCTIONS}")


def as_counts(
    counts: Tensor | np.ndarray | Sequence[float] | Sequence[Sequence[float]],
    ndim: int,
    *,
    name: str = "class_counts",
) -> Tensor:
    """Counts as a float64 tensor with ``ndim`` dims, all finite and strictly positive.

    Class counts are (K,); (class, group) count tables are (K, G).
    """
    try:
        if isinstance(counts, Tensor):
            t = counts.detach().to("cpu", torch.float64)
        else:
            t = torch.as_tensor(np.asarray(counts, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {counts!r}") from exc
    shape = "(K,)" if ndim == 1 else "(K, G)"
    if t.dim() != ndim or t.numel() == 0:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(
            f"{name} must be finite and strictly positive (every class"
            f"{'' if ndim == 1 else ', group cell'} needs samples), got {t.tolist()}"
        )
    return t


__all__ = [
    "as_counts",
    "check_finite",
    "check_groups",
    "check_logits_targets",
    "check_reduction",
    "is_compiling",
    "reduce_loss",
    "scoped_value_checks",
    "set_value_checks",
    "value_checks_enabled",
]
