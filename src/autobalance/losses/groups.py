"""Losses for the (class, group) setting of AutoBalance §4 (Li et al. 2021, arXiv 2201.01212).

Counts come as a (K, G) table n_{y,g}; π_{y,g} = n_{y,g} / n, π̄_g = Σ_y n_{y,g} / n and
π(y | g) = n_{y,g} / Σ_y n_{y,g}.

- Group-LA: w_g = 1 / (G π̄_g) and l[:, g] = τ log π(· | g), through the (class, group)
  parametric CE of eq. (4.2).
- CE_bal^G: w_{y,g} = 1 / (K G π_{y,g}), balancing every (class, group) cell.
- CE_deo: the DEO surrogate of eq. (4.1), Σ_y Σ_{g<g'} |CE_{y,g} − CE_{y,g'}|.
- Group DRO (Sagawa et al. 2020, arXiv 1911.08731): online exponentiated-gradient weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autobalance.losses._common import (
    as_counts,
    check_finite,
    check_groups,
    check_logits_targets,
    check_reduction,
    reduce_loss,
)
from autobalance.losses.baselines import FixedParametricCE

# -- parameters from a (K, G) count table --------------------------------------------------------


def group_la_parameters(group_counts: Any, tau: float = 1.0) -> tuple[Tensor, Tensor]:
    """(weight, additive), both (K, G) float64, of the Group-LA loss.

    weight[y, g] = 1 / (G π̄_g), so that Σ_g π̄_g w_g = 1 (the plain batch mean then estimates
    the group-balanced risk); additive[y, g] = τ log π(y | g).
    """
    n = as_counts(group_counts, 2, name="group_counts")
    k, g = n.shape
    group_total = n.sum(0, keepdim=True)  # (1, G)
    weight = (n.sum() / (g * group_total)).expand(k, g).clone()
    additive = tau * torch.log(n / group_total)
    return weight, additive


def balanced_cell_weights(group_counts: Any) -> Tensor:
    """w_{y,g} = 1 / (K G π_{y,g}), so that Σ_{y,g} π_{y,g} w_{y,g} = 1 (float64, (K, G))."""
    n = as_counts(group_counts, 2, name="group_counts")
    return n.sum() / (n.numel() * n)


class GroupLALoss(FixedParametricCE):
    """Group-LA: (1 / (G π̄_g)) · CE(f(x) + τ log π(· | g), y) (AutoBalance §4, eq. 4.2 form).

    Built from a (K, G) count table; ``forward`` needs ``groups``. τ = 1.
    """

    def __init__(self, group_counts: Any, *, tau: float = 1.0, reduction: str = "mean") -> None:
        weight, additive = group_la_parameters(group_counts, tau)
        super().__init__(weight=weight, additive=additive, grouped=True, reduction=reduction)
        self.tau = float(tau)


class BalancedGroupCE(FixedParametricCE):
    """CE_bal^G: w_{y,g} · CE(f(x), y) with w_{y,g} = 1 / (K G π_{y,g}) (AutoBalance §4).

    Every (class, group) cell carries the same total weight on the training distribution;
    ``mean`` is the plain batch average. ``forward`` needs ``groups``.
    """

    def __init__(self, group_counts: Any, *, reduction: str = "mean") -> None:
        super().__init__(
            weight=balanced_cell_weights(group_counts), grouped=True, reduction=reduction
        )


# -- batch cell statistics -----------------------------------------------------------------------


def _cell_means(values: Tensor, cells: Tensor, num_cells: int) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` per cell id (0 for empty cells) and the per-cell sample counts."""
    sums = torch.zeros(num_cells, dtype=values.dtype, device=values.device)
    sums = sums.index_add(0, cells, values)
    counts = torch.bincount(cells, minlength=num_cells)
    return sums / counts.clamp_min(1).to(values.dtype), counts


class CEDEOLoss(nn.Module):
    """CE_deo = Σ_y Σ_{g<g'} |CE_{y,g} − CE_{y,g'}|, the DEO surrogate of AutoBalance eq. (4.1).

    CE_{y,g} is the mean CE of the batch samples of class y in group g. Pairs involving a cell
    with no samples in the batch are skipped. It is a batch-level quantity: ``mean`` and ``sum``
    both return it, and ``none`` is rejected. ``num_groups`` = None takes G = max(groups) + 1.
    """

    def __init__(self, num_groups: int | None = None, *, reduction: str = "mean") -> None:
        super().__init__()
        if reduction == "none":
            raise ValueError(
                "CEDEOLoss: CE_deo is a batch-level quantity (Σ_y Σ_{g<g'} |CE_{y,g} − CE_{y,g'}|) "
                "with no per-sample form; use reduction 'mean' or 'sum'"
            )
        self.reduction = check_reduction(reduction, ("mean", "sum"))
        if num_groups is not None and int(num_groups) < 1:
            raise ValueError(f"CEDEOLoss: num_groups must be ≥ 1, got {num_groups}")
        self.num_groups = None if num_groups is None else int(num_groups)

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """The scalar CE_deo of the batch."""
        n, k = check_logits_targets(logits, targets, name="CEDEOLoss")
        groups = check_groups(groups, n, self.num_groups, name="CEDEOLoss").long()
        g = self.num_groups if self.num_groups is not None else int(groups.max()) + 1
        per_sample = F.cross_entropy(logits, targets.long(), reduction="none")
        means, counts = _cell_means(per_sample, targets.long() * g + groups, k * g)
        means, present = means.view(k, g), (counts > 0).view(k, g)
        first, second = torch.triu_indices(g, g, 1, device=logits.device)  # all pairs g < g'
        gaps = (means[:, first] - means[:, second]).abs()
        both = (present[:, first] & present[:, second]).to(gaps.dtype)
        out = (gaps * both).sum()
        check_finite(out, logits, name="CEDEOLoss")
        return out

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, reduction={self.reduction!r}"


GROUP_DRO_UNITS: tuple[str, ...] = ("group", "cell")


class GroupDROLoss(nn.Module):
    """Online Group DRO (Sagawa et al. 2020, arXiv 1911.08731, Algorithm 1).

    Units u are groups (``by="group"``) or (class, group) cells (``by="cell"``, u = y·G + g).
    With L_u the mean CE of the batch samples of unit u (0 if none), a training-mode forward
    first takes the exponentiated-gradient step q_u ← q_u exp(η L_u) / Σ_{u'} q_{u'} exp(η L_{u'})
    (done in log space) and then returns Σ_u q_u L_u. In eval mode q is not updated. q is a
    buffer (in ``state_dict``), initialised uniform.

    Reductions: ``none`` gives ℓ_i · N q_{u_i} / n_{u_i} (n_u: samples of unit u in the batch), so
    ``mean`` = Σ_u q_u L_u and ``sum`` = N · Σ_u q_u L_u; for a batch with n_u = N/U this is
    U q_{u_i} ℓ_i.
    """

    q: Tensor

    def __init__(
        self,
        num_groups: int,
        *,
        num_classes: int | None = None,
        by: str = "group",
        step_size: float = 0.01,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if by not in GROUP_DRO_UNITS:
            raise ValueError(f"Unknown by {by!r}, expected one of {GROUP_DRO_UNITS}")
        if int(num_groups) < 1:
            raise ValueError(f"GroupDROLoss: num_groups must be ≥ 1, got {num_groups}")
        if by == "cell" and (num_classes is None or int(num_classes) < 1):
            raise ValueError("GroupDROLoss: by='cell' needs num_classes ≥ 1")
        if not (math.isfinite(step_size) and step_size >= 0):
            raise ValueError(f"GroupDROLoss: step_size must be ≥ 0, got {step_size}")
        self.num_groups = int(num_groups)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.by = by
        self.step_size = float(step_size)
        self.reduction = check_reduction(reduction)
        units = self.num_groups if by == "group" else self.num_groups * int(num_classes or 1)
        self.register_buffer("q", torch.full((units,), 1.0 / units))

    @property
    def num_units(self) -> int:
        """U: the number of groups, or of (class, group) cells."""
        return int(self.q.numel())

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """Σ_u q_u L_u after (in training mode) one exponentiated-gradient step on q."""
        n, _ = check_logits_targets(logits, targets, self.num_classes, name="GroupDROLoss")
        groups = check_groups(groups, n, self.num_groups, name="GroupDROLoss").long()
        targets = targets.long()
        units = groups if self.by == "group" else targets * self.num_groups + groups
        per_sample = F.cross_entropy(logits, targets, reduction="none")
        unit_loss, counts = _cell_means(per_sample, units, self.num_units)
        if self.training:
            with torch.no_grad():
                # q ← q ⊙ exp(η L) / Σ, as a softmax of log q + η L for stability.
                log_q = torch.log(self.q) + self.step_size * unit_loss.detach().to(self.q.dtype)
                self.q.copy_(torch.softmax(log_q, dim=0))
        q = self.q.to(per_sample.dtype)
        sample_weight = n * q[units] / counts[units].to(per_sample.dtype)
        out = reduce_loss(per_sample, self.reduction, sample_weight)
        check_finite(out, logits, name="GroupDROLoss")
        return out

    def extra_repr(self) -> str:
        return (
            f"num_groups={self.num_groups}, num_classes={self.num_classes}, by={self.by!r}, "
            f"step_size={self.step_size}, reduction={self.reduction!r}"
        )


__all__ = [
    "GROUP_DRO_UNITS",
    "BalancedGroupCE",
    "CEDEOLoss",
    "GroupDROLoss",
    "GroupLALoss",
    "balanced_cell_weights",
    "group_la_parameters",
]
