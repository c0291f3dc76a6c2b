"""Validation objectives for the upper level of the bilevel search (AutoBalance §2, §4).

Every objective is a differentiable function ``objective(logits, targets, groups=None) -> scalar``
of the *raw* model logits on a validation batch. Cells (classes, or (class, group) cells) absent
from the batch are skipped, never divided by zero.

- ``ce``: mean cross-entropy.
- ``balanced_ce``: (1/K′) Σ_y mean_{i: y_i = y} CE_i, over the K′ classes present; the
  differentiable surrogate of balanced error.
- ``blend``: (1 − λ)·CE + λ·CE_bal.
- ``deo``: CE_deo, eq. (4.1): Σ_y Σ_{g<g′} |CE_{y,g} − CE_{y,g′}|, a surrogate of DEO.
- ``ce_deo``: (1 − λ)·CE + λ·CE_deo.
- ``group_balanced_ce``: mean over present (class, group) cells of the cell CE.
- ``balanced_soft_error``: (1/K′) Σ_y mean_{i: y_i = y} σ((max_{j≠y} f_j − f_y)/T), a smooth
  balanced 0-1 error (this package's addition; T → 0 gives balanced error). Unlike CE it stops
  pushing on validation points that are already right by a margin or hopelessly wrong, so a few
  tail-class validation samples cannot drag α into over-compensation.
- ``worst_group``: smooth max over present cells, T·log Σ_c exp(CE_c / T) − T·log(#cells)
  (a lower-bounded soft maximum; T → 0 gives the worst cell).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

Objective = Callable[..., Tensor]

OBJECTIVES = (
    "ce",
    "balanced_ce",
    "balanced_soft_error",
    "blend",
    "deo",
    "ce_deo",
    "group_balanced_ce",
    "worst_group",
)


def cell_mean_losses(losses: Tensor, cells: Tensor, num_cells: int) -> tuple[Tensor, Tensor]:
    """Mean of ``losses`` within each cell id, and the mask of cells present.

    Returns (means (num_cells,), present bool (num_cells,)); absent cells hold 0.
    """
    sums = torch.zeros(num_cells, dtype=losses.dtype, device=losses.device)
    sums = sums.index_add(0, cells, losses)
    counts = torch.bincount(cells, minlength=num_cells).to(losses.dtype)
    present = counts > 0
    return sums / counts.clamp_min(1), present


def _require_groups(groups: Tensor | None, name: str) -> Tensor:
    if groups is None:
        raise ValueError(f"objective '{name}' needs group ids: pass groups")
    return groups


def ce(logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
    """Mean cross-entropy (1/n) Σ_i CE(f(x_i), y_i)."""
    return F.cross_entropy(logits, targets)


def balanced_ce(logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
    """Balanced CE: (1/K′) Σ_y CE_y over classes present (Li et al. 2021, §2)."""
    k = logits.shape[-1]
    means, present = cell_mean_losses(
        F.cross_entropy(logits, targets, reduction="none"), targets, k
    )
    return means[present].mean()


def balanced_soft_error(
    logits: Tensor,
    targets: Tensor,
    groups: Tensor | None = None,
    *,
    temperature: float = 1.0,
) -> Tensor:
    """Smooth balanced error: class mean of σ((max_{j≠y} f_j − f_y) / T) (see module doc)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    true = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    margin = others.max(dim=1).values - true
    per = torch.sigmoid(margin / temperature)
    means, present = cell_mean_losses(per, targets, logits.shape[-1])
    return means[present].mean()


def blend(
    logits: Tensor, targets: Tensor, groups: Tensor | None = None, *, lam: float = 0.5
) -> Tensor:
    """(1 − λ)·CE + λ·CE_bal."""
    return (1 - lam) * ce(logits, targets) + lam * balanced_ce(logits, targets)


def _cell_losses(logits: Tensor, targets: Tensor, groups: Tensor, num_groups: int | None):
    k = logits.shape[-1]
    g = int(groups.max()) + 1 if num_groups is None else num_groups
    per = F.cross_entropy(logits, targets, reduction="none")
    means, present = cell_mean_losses(per, targets * g + groups, k * g)
    return means.reshape(k, g), present.reshape(k, g)


def deo(
    logits: Tensor,
    targets: Tensor,
    groups: Tensor | None = None,
    *,
    num_groups: int | None = None,
) -> Tensor:
    """CE_deo, eq. (4.1): Σ_y Σ_{g<g′} |CE_{y,g} − CE_{y,g′}| over present cell pairs."""
    groups = _require_groups(groups, "deo")
    means, present = _cell_losses(logits, targets, groups, num_groups)
    diff = (means.unsqueeze(2) - means.unsqueeze(1)).abs()
    both = present.unsqueeze(2) & present.unsqueeze(1)
    upper = torch.triu(torch.ones_like(both), diagonal=1)
    mask = both & upper
    return (diff * mask).sum()


def ce_deo(
    logits: Tensor,
    targets: Tensor,
    groups: Tensor | None = None,
    *,
    lam: float = 0.5,
    num_groups: int | None = None,
) -> Tensor:
    """(1 − λ)·CE + λ·CE_deo (AutoBalance §4, the fairness blend)."""
    return (1 - lam) * ce(logits, targets) + lam * deo(
        logits, targets, groups, num_groups=num_groups
    )


def group_balanced_ce(
    logits: Tensor,
    targets: Tensor,
    groups: Tensor | None = None,
    *,
    num_groups: int | None = None,
) -> Tensor:
    """Mean over present (class, group) cells of the cell-conditional CE."""
    groups = _require_groups(groups, "group_balanced_ce")
    means, present = _cell_losses(logits, targets, groups, num_groups)
    return means[present].mean()


def worst_group(
    logits: Tensor,
    targets: Tensor,
    groups: Tensor | None = None,
    *,
    temperature: float = 0.1,
    num_groups: int | None = None,
) -> Tensor:
    """Smooth worst-cell CE: T·logmeanexp_c(CE_c / T) over present cells (→ max as T → 0).

    Without groups, the cells are the classes (worst-class CE).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if groups is None:
        means, present = cell_mean_losses(
            F.cross_entropy(logits, targets, reduction="none"), targets, logits.shape[-1]
        )
    else:
        means, present = _cell_losses(logits, targets, groups, num_groups)
    vals = means[present]
    n = torch.tensor(float(vals.numel()), dtype=vals.dtype, device=vals.device)
    return temperature * (torch.logsumexp(vals / temperature, 0) - torch.log(n))


_REGISTRY: dict[str, Callable[..., Tensor]] = {
    "ce": ce,
    "balanced_ce": balanced_ce,
    "balanced_soft_error": balanced_soft_error,
    "blend": blend,
    "deo": deo,
    "ce_deo": ce_deo,
    "group_balanced_ce": group_balanced_ce,
    "worst_group": worst_group,
}
_OPTIONS: dict[str, tuple[str, ...]] = {
    "ce": (),
    "balanced_ce": (),
    "balanced_soft_error": ("temperature",),
    "blend": ("lam",),
    "deo": ("num_groups",),
    "ce_deo": ("lam", "num_groups"),
    "group_balanced_ce": ("num_groups",),
    "worst_group": ("temperature", "num_groups"),
}
NEEDS_GROUPS = frozenset({"deo", "ce_deo", "group_balanced_ce"})


def make_objective(name: str, **options: float | int | None) -> Objective:
    """Validation objective by name, with its options bound (``lam``, ``temperature``, …)."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown objective '{name}', expected one of {OBJECTIVES}")
    allowed = _OPTIONS[name]
    options = {k: v for k, v in options.items() if v is not None}
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(
            f"objective '{name}' got unknown options {bad}; it accepts {list(allowed) or 'none'}"
        )
    lam = options.get("lam")
    if lam is not None and not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    return partial(_REGISTRY[name], **options) if options else _REGISTRY[name]


__all__ = [
    "NEEDS_GROUPS",
    "OBJECTIVES",
    "Objective",
    "balanced_ce",
    "balanced_soft_error",
    "blend",
    "ce",
    "ce_deo",
    "cell_mean_losses",
    "deo",
    "group_balanced_ce",
    "make_objective",
    "worst_group",
]
