"""The λ-blended training losses of AutoBalance §4: ``(1 − λ)·CE + λ·L_reg``.

Li et al. 2021 (arXiv 2201.01212), §4 and Fig. 5, compare the searched loss with the family
``L_λ = (1 − λ)·CE + λ·L_reg`` for a fairness-promoting regulariser ``L_reg`` ∈ {CE_bal^G, CE_deo,
Group-LA}; λ = 0 is plain CE and λ = 1 is ``L_reg`` alone. A method label ``REG@LAM`` (for example
``ce_deo@0.9`` for ``0.1·CE + 0.9·CE_deo``) names one member; :func:`parse_blend` reads it.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from autobalance.losses._common import check_reduction

BLEND_SEPARATOR = "@"


def parse_blend(label: str) -> tuple[str, float] | None:
    """``"ce_deo@0.9"`` → ``("ce_deo", 0.9)``; ``None`` when ``label`` is not a blend label.

    Raises ``ValueError`` for a malformed λ or one outside [0, 1].
    """
    if BLEND_SEPARATOR not in label:
        return None
    reg, _, lam_text = label.partition(BLEND_SEPARATOR)
    try:
        lam = float(lam_text)
    except ValueError:
        raise ValueError(
            f"loss label {label!r}: expected REG@LAM with LAM a number in [0, 1], "
            f"got LAM={lam_text!r}"
        ) from None
    if not reg or not math.isfinite(lam) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"loss label {label!r}: expected REG@LAM with LAM in [0, 1]")
    return reg, lam


def blend_label(reg: str, lam: float) -> str:
    """The method label of ``(1 − lam)·CE + lam·reg``, e.g. ``ce_deo@0.9``."""
    return f"{reg}{BLEND_SEPARATOR}{lam:g}"


class BlendedLoss(nn.Module):
    """``(1 − λ)·CE(f(x), y) + λ·L_reg(f(x), y, g)`` (AutoBalance §4, the Fig. 5 baselines).

    Args:
        regulariser: the ``L_reg`` module, called as ``regulariser(logits, targets, groups)``.
        lam: λ in [0, 1].
        reduction: ``mean`` or ``sum`` (CE is reduced the same way; a batch-level ``L_reg``
            such as CE_deo has no per-sample form, so ``none`` is not offered).

    At λ = 0 the regulariser is not evaluated (so CE needs no groups); at λ = 1 CE is not.
    ``set_epoch`` is forwarded to the regulariser when it has one.
    """

    def __init__(self, regulariser: nn.Module, lam: float, *, reduction: str = "mean") -> None:
        super().__init__()
        if not 0.0 <= float(lam) <= 1.0:
            raise ValueError(f"BlendedLoss: lam must lie in [0, 1], got {lam}")
        self.reduction = check_reduction(reduction, ("mean", "sum"))
        self.regulariser = regulariser
        self.lam = float(lam)
        self.ce = nn.CrossEntropyLoss(reduction=self.reduction)

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to an epoch-aware regulariser (e.g. DRW)."""
        hook = getattr(self.regulariser, "set_epoch", None)
        if callable(hook):
            hook(epoch)

    def forward(self, logits: Tensor, targets: Tensor, groups: Tensor | None = None) -> Tensor:
        """The blended scalar loss of the batch."""
        out = logits.new_zeros(())
        if self.lam < 1.0:
            out = out + (1.0 - self.lam) * self.ce(logits, targets.long())
        if self.lam > 0.0:
            out = out + self.lam * self.regulariser(logits, targets, groups)
        return out

    def extra_repr(self) -> str:
        return f"lam={self.lam:g}, reduction={self.reduction!r}"


__all__ = ["BLEND_SEPARATOR", "BlendedLoss", "blend_label", "parse_blend"]
