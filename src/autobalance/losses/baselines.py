"""Class-imbalance baseline losses, with the defaults of their papers.

- Cross-entropy, optionally class-weighted; balanced weights w_y = 1 / (K π_y).
- Focal loss (Lin et al. 2017, arXiv 1708.02002): −(1 − p_y)^γ log p_y, γ = 2.
- LDAM (Cao et al. 2019, arXiv 1906.07413): CE(s · (f(x) − m_y e_y), y), m_y ∝ n_y^{-1/4},
  max_y m_y = 0.5, s = 30; optionally with deferred re-weighting (LDAM-DRW).
- DRW (Cao et al. 2019) with effective-number weights (Cui et al. 2019, arXiv 1901.05555):
  w_y ∝ (1 − β) / (1 − β^{n_y}), β = 0.9999, switched on at ``drw_epoch``.
- Logit adjustment LA (Menon et al. 2021, arXiv 2007.07314): l_y = τ log π_y, τ = 1.
- CDT (Ye et al. 2020, arXiv 2001.01385): Δ_y = (n_y / n_max)^γ, γ = 0.2.
- VS (Kini et al. 2021, arXiv 2103.01550): Δ_y = (n_y / n_max)^γ and l_y = τ log π_y,
  γ = 0.2, τ = 1.2.

LA, CDT and VS are special cases of the parametric CE and run through
:func:`~autobalance.losses.parametric.parametric_cross_entropy`.
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
    check_logits_targets,
    check_reduction,
    reduce_loss,
)
from autobalance.losses.parametric import parametric_cross_entropy

# -- per-class parameters from counts ------------------------------------------------------------


def _buffer(t: Any) -> Tensor | None:
    """A fixed loss parameter as a tensor of the default dtype (None stays None)."""
    if t is None:
        return None
    if isinstance(t, Tensor):
        return t.detach().to(torch.get_default_dtype())
    return torch.as_tensor(t, dtype=torch.get_default_dtype())


def balanced_class_weights(class_counts: Any) -> Tensor:
    """w_y = 1 / (K π_y) = n / (K n_y), so that Σ_y π_y w_y = 1 (float64, (K,)).

    With these weights the plain batch mean of w_y · CE estimates the class-balanced risk
    (1/K) Σ_y E[CE | y].
    """
    n = as_counts(class_counts, 1)
    return n.sum() / (n.numel() * n)


def effective_number_weights(class_counts: Any, beta: float = 0.9999) -> Tensor:
    """w_y = (1 − β) / (1 − β^{n_y}), normalised to Σ_y w_y = K (Cui et al. 2019, arXiv 1901.05555).

    β = 0 gives w = 1. Computed as −expm1(log1p(−β)) / −expm1(n_y log β) for accuracy near β = 1.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must lie in [0, 1), got {beta}")
    n = as_counts(class_counts, 1)
    if beta == 0.0:
        return torch.ones_like(n)
    w = -math.expm1(math.log(beta)) / -torch.expm1(n * math.log(beta))
    return w * (n.numel() / w.sum())


def ldam_margins(class_counts: Any, max_m: float = 0.5) -> Tensor:
    """m_y = C · n_y^{-1/4} with C chosen so that max_y m_y = ``max_m`` (Cao et al. 2019)."""
    if not max_m > 0:
        raise ValueError(f"max_m must be > 0, got {max_m}")
    m = as_counts(class_counts, 1).pow(-0.25)
    return m * (max_m / m.max())


def logit_adjustment(class_counts: Any, tau: float = 1.0) -> Tensor:
    """l_y = τ log π_y with π_y = n_y / n (Menon et al. 2021, arXiv 2007.07314)."""
    n = as_counts(class_counts, 1)
    return tau * torch.log(n / n.sum())


def cdt_scales(class_counts: Any, gamma: float = 0.2) -> Tensor:
    """Δ_y = (n_y / n_max)^γ (Ye et al. 2020, arXiv 2001.01385)."""
    n = as_counts(class_counts, 1)
    return torch.exp(gamma * torch.log(n / n.max()))


# -- fixed parametric losses ---------------------------------------------------------------------


class FixedParametricCE(nn.Module):
    """w_y · CE(Δ ⊙ f(x) + l, y) with fixed (non-learnable) w, l, Δ (Li et al. 2021, eq. 2.2).

    ``weight``, ``additive``, ``multiplicative`` are (K,), or (K, G) with ``grouped=True``
    (eq. 4.2; ``forward`` then needs ``groups``); None means the identity. They are buffers, so
    ``.to()``/``.double()`` move them. ``mean`` is the plain batch average (eq. 2.3).
    """

    weight: Tensor | None
    additive: Tensor | None
    multiplicative: Tensor | None

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        additive: Tensor | None = None,
        multiplicative: Tensor | None = None,
        grouped: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.grouped = bool(grouped)
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("additive", _buffer(additive))
        self.register_buffer("multiplicative", _buffer(multiplicative))

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """The loss of eq. (2.2) (class form) or (4.2) (grouped form)."""
        if self.grouped and groups is None:
            raise ValueError(
                f"{type(self).__name__} is a (class, group) loss: pass groups=(N,) group ids"
            )
        return parametric_cross_entropy(
            logits,
            targets,
            weight=self.weight,
            additive=self.additive,
            multiplicative=self.multiplicative,
            groups=groups if self.grouped else None,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"grouped={self.grouped}, reduction={self.reduction!r}"


class CrossEntropy(FixedParametricCE):
    """CE, optionally class-weighted: w_y · CE(f(x), y); ``mean`` = (1/N) Σ_i w_{y_i} ℓ_i.

    With :func:`balanced_class_weights` this is the balanced CE (Σ_y π_y w_y = 1).
    """

    def __init__(self, *, weight: Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__(weight=weight, reduction=reduction)


class LogitAdjustedLoss(FixedParametricCE):
    """LA loss CE(f(x) + τ log π, y) (Menon et al. 2021, arXiv 2007.07314), τ = 1."""

    def __init__(self, class_counts: Any, *, tau: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(additive=logit_adjustment(class_counts, tau), reduction=reduction)
        self.tau = float(tau)


class CDTLoss(FixedParametricCE):
    """CDT loss CE(Δ ⊙ f(x), y), Δ_y = (n_y/n_max)^γ (Ye et al. 2020, arXiv 2001.01385)."""

    def __init__(self, class_counts: Any, *, gamma: float = 0.2, reduction: str = "mean") -> None:
        super().__init__(multiplicative=cdt_scales(class_counts, gamma), reduction=reduction)
        self.gamma = float(gamma)


class VSLoss(FixedParametricCE):
    """VS loss CE(Δ ⊙ f(x) + τ log π, y), Δ_y = (n_y/n_max)^γ (Kini et al. 2021, arXiv 2103.01550).

    Defaults γ = 0.2, τ = 1.2.
    """

    def __init__(
        self, class_counts: Any, *, gamma: float = 0.2, tau: float = 1.2, reduction: str = "mean"
    ) -> None:
        super().__init__(
            additive=logit_adjustment(class_counts, tau),
            multiplicative=cdt_scales(class_counts, gamma),
            reduction=reduction,
        )
        self.gamma, self.tau = float(gamma), float(tau)


# -- focal ---------------------------------------------------------------------------------------


class FocalLoss(nn.Module):
    """Focal loss −α_y (1 − p_y)^γ log p_y (Lin et al. 2017, arXiv 1708.02002), γ = 2.

    γ = 0 is CE. (1 − p_y) is computed as −expm1(log p_y) and clamped at the smallest normal
    number, so the loss and its derivatives stay finite when p_y → 1. ``weight`` is the optional
    per-class α (K,); ``mean`` is the plain batch average.
    """

    weight: Tensor | None

    def __init__(
        self, *, gamma: float = 2.0, weight: Tensor | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"FocalLoss: gamma must be ≥ 0, got {gamma}")
        self.gamma = float(gamma)
        self.reduction = check_reduction(reduction)
        self.register_buffer("weight", _buffer(weight))

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """Per-sample (1 − p_y)^γ · CE, reduced; ``groups`` is ignored."""
        _, k = check_logits_targets(logits, targets, name="FocalLoss")
        targets = targets.long()
        ce = F.cross_entropy(logits, targets, reduction="none")  # −log p_y
        per_sample = ce
        if self.gamma > 0:
            tiny = torch.finfo(ce.dtype).tiny
            per_sample = (-torch.expm1(-ce)).clamp_min(tiny).pow(self.gamma) * ce
        weight = None
        if self.weight is not None:
            if self.weight.shape != (k,):
                raise ValueError(f"FocalLoss: weight has shape {tuple(self.weight.shape)}, K={k}")
            weight = self.weight.to(per_sample.dtype)[targets]
        out = reduce_loss(per_sample, self.reduction, weight)
        check_finite(out, logits, name="FocalLoss")
        return out

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"


# -- deferred re-weighting, LDAM -----------------------------------------------------------------


class _ClassWeightSchedule(nn.Module):
    """Per-class weights for CE-type losses: static, or deferred re-weighting (DRW).

    DRW (Cao et al. 2019, arXiv 1906.07413): w = 1 before epoch ``drw_epoch`` and the
    effective-number weights of :func:`effective_number_weights` from it on. ``set_epoch`` is
    to be called at the start of every epoch (epochs count from 0).
    """

    class_weight: Tensor | None

    def __init__(
        self,
        class_counts: Any,
        *,
        weight: Tensor | None,
        drw_epoch: int | None,
        beta: float,
        reduction: str,
        weighted_mean: bool,
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.weighted_mean = bool(weighted_mean)
        self.num_classes = int(as_counts(class_counts, 1).numel())
        if drw_epoch is not None and weight is not None:
            raise ValueError("give either a static weight or drw_epoch (DRW weights), not both")
        if drw_epoch is not None and (int(drw_epoch) != drw_epoch or drw_epoch < 0):
            raise ValueError(f"drw_epoch must be an integer ≥ 0, got {drw_epoch}")
        self.drw_epoch = None if drw_epoch is None else int(drw_epoch)
        self.beta = float(beta)
        self.epoch = 0
        if drw_epoch is not None:
            weight = effective_number_weights(class_counts, beta)
        elif weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float64)
            if weight.shape != (self.num_classes,):
                raise ValueError(
                    f"weight must have shape ({self.num_classes},), got {tuple(weight.shape)}"
                )
        self.register_buffer("class_weight", _buffer(weight))

    def set_epoch(self, epoch: int) -> None:
        """Tell the loss the current epoch (0-based); DRW weights apply once epoch ≥ drw_epoch."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be an integer ≥ 0, got {epoch}")
        self.epoch = int(epoch)

    def current_weight(self) -> Tensor | None:
        """The per-class weight in force now (None = all ones)."""
        if self.drw_epoch is not None and self.epoch < self.drw_epoch:
            return None
        return self.class_weight

    def _reduce(self, per_sample: Tensor, targets: Tensor, logits: Tensor, name: str) -> Tensor:
        w = self.current_weight()
        sample_weight = None if w is None else w.to(per_sample.dtype)[targets]
        out = reduce_loss(
            per_sample, self.reduction, sample_weight, weighted_mean=self.weighted_mean
        )
        check_finite(out, logits, name=name)
        return out


class DRWCrossEntropy(_ClassWeightSchedule):
    """CE with deferred re-weighting (CE-DRW; Cao et al. 2019, arXiv 1906.07413).

    ℓ = w_y · CE(f(x), y) with w = 1 before ``drw_epoch`` (default 160, the paper's CIFAR
    schedule of 200 epochs) and w_y ∝ (1 − β)/(1 − β^{n_y}), Σ w = K, β = 0.9999 after.
    ``mean`` is Σ_i w_i ℓ_i / Σ_i w_i (``weighted_mean=True``, as ``F.cross_entropy(weight=…)``
    and the reference LDAM-DRW code); ``weighted_mean=False`` gives (1/N) Σ_i w_i ℓ_i.
    """

    def __init__(
        self,
        class_counts: Any,
        *,
        drw_epoch: int = 160,
        beta: float = 0.9999,
        reduction: str = "mean",
        weighted_mean: bool = True,
    ) -> None:
        super().__init__(
            class_counts,
            weight=None,
            drw_epoch=drw_epoch,
            beta=beta,
            reduction=reduction,
            weighted_mean=weighted_mean,
        )

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """w_y · CE(f(x), y) reduced; ``groups`` is ignored."""
        check_logits_targets(logits, targets, self.num_classes, name="DRWCrossEntropy")
        targets = targets.long()
        per_sample = F.cross_entropy(logits, targets, reduction="none")
        return self._reduce(per_sample, targets, logits, "DRWCrossEntropy")

    def extra_repr(self) -> str:
        return f"drw_epoch={self.drw_epoch}, beta={self.beta}, epoch={self.epoch}"


class LDAMLoss(_ClassWeightSchedule):
    """LDAM loss w_y · CE(s · (f(x) − m_y e_y), y) (Cao et al. 2019, arXiv 1906.07413).

    Margins m_y = C n_y^{-1/4} with max_y m_y = ``max_m`` (0.5), scale s = 30. ``weight`` is an
    optional static per-class weight; ``drw_epoch`` switches on DRW weights instead (LDAM-DRW).
    ``mean`` follows the reference code: Σ_i w_i ℓ_i / Σ_i w_i (``weighted_mean=True``).
    """

    margins: Tensor

    def __init__(
        self,
        class_counts: Any,
        *,
        max_m: float = 0.5,
        s: float = 30.0,
        weight: Tensor | None = None,
        drw_epoch: int | None = None,
        beta: float = 0.9999,
        reduction: str = "mean",
        weighted_mean: bool = True,
    ) -> None:
        super().__init__(
            class_counts,
            weight=weight,
            drw_epoch=drw_epoch,
            beta=beta,
            reduction=reduction,
            weighted_mean=weighted_mean,
        )
        if not s > 0:
            raise ValueError(f"LDAMLoss: s must be > 0, got {s}")
        self.max_m, self.s = float(max_m), float(s)
        self.register_buffer("margins", _buffer(ldam_margins(class_counts, max_m)))

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """w_y · CE(s (f(x) − m_y e_y), y) reduced; ``groups`` is ignored."""
        check_logits_targets(logits, targets, self.num_classes, name="LDAMLoss")
        targets = targets.long()
        margin = self.margins.to(logits.dtype)[targets].unsqueeze(1)
        adjusted = logits.scatter_add(1, targets.unsqueeze(1), -margin)  # f(x) − m_y e_y
        per_sample = F.cross_entropy(self.s * adjusted, targets, reduction="none")
        return self._reduce(per_sample, targets, logits, "LDAMLoss")

    def extra_repr(self) -> str:
        return (
            f"max_m={self.max_m}, s={self.s}, drw_epoch={self.drw_epoch}, beta={self.beta}, "
            f"epoch={self.epoch}"
        )


__all__ = [
    "CDTLoss",
    "CrossEntropy",
    "DRWCrossEntropy",
    "FixedParametricCE",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "VSLoss",
    "balanced_class_weights",
    "cdt_scales",
    "effective_number_weights",
    "ldam_margins",
    "logit_adjustment",
]
