"""Loss functions: the parametric CE of AutoBalance, its special cases and the baselines.

- :mod:`.parametric`: ``parametric_cross_entropy`` / ``ParametricCE``, w_y·CE(Δ ⊙ f(x) + l, y)
  (Li et al. 2021, arXiv 2201.01212, eq. 2.2 and 4.2).
- :mod:`.baselines`: CE, balanced CE, focal, LDAM(-DRW), CE-DRW, LA, CDT, VS.
- :mod:`.groups`: Group-LA, CE_bal^G, CE_deo, Group DRO.
- :mod:`.blend`: ``(1 − λ)·CE + λ·L_reg``, the λ-blended baselines of §4 (label ``REG@LAM``).
- :mod:`.factory`: ``make_loss(name, class_counts=..., group_counts=..., **options)``.

Every loss module is called as ``loss(logits, targets, groups=None)`` and takes
``reduction`` in {"mean", "sum", "none"} (CE_deo: "mean"/"sum" only).
"""

from __future__ import annotations

from autobalance.losses._common import (
    scoped_value_checks,
    set_value_checks,
    value_checks_enabled,
)
from autobalance.losses.baselines import (
    CDTLoss,
    CrossEntropy,
    DRWCrossEntropy,
    FixedParametricCE,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    VSLoss,
    balanced_class_weights,
    cdt_scales,
    effective_number_weights,
    ldam_margins,
    logit_adjustment,
)
from autobalance.losses.blend import BlendedLoss, blend_label, parse_blend
from autobalance.losses.factory import (
    GROUP_LOSS_NAMES,
    LOSS_ALIASES,
    LOSS_NAMES,
    is_loss_label,
    loss_options,
    make_loss,
)
from autobalance.losses.groups import (
    GROUP_DRO_UNITS,
    BalancedGroupCE,
    CEDEOLoss,
    GroupDROLoss,
    GroupLALoss,
    balanced_cell_weights,
    group_la_parameters,
)
from autobalance.losses.parametric import COMPONENTS, ParametricCE, parametric_cross_entropy

__all__ = [
    "COMPONENTS",
    "GROUP_DRO_UNITS",
    "GROUP_LOSS_NAMES",
    "LOSS_ALIASES",
    "LOSS_NAMES",
    "BalancedGroupCE",
    "BlendedLoss",
    "CDTLoss",
    "CEDEOLoss",
    "CrossEntropy",
    "DRWCrossEntropy",
    "FixedParametricCE",
    "FocalLoss",
    "GroupDROLoss",
    "GroupLALoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "ParametricCE",
    "VSLoss",
    "balanced_cell_weights",
    "balanced_class_weights",
    "blend_label",
    "cdt_scales",
    "effective_number_weights",
    "group_la_parameters",
    "is_loss_label",
    "ldam_margins",
    "logit_adjustment",
    "loss_options",
    "make_loss",
    "parametric_cross_entropy",
    "parse_blend",
    "scoped_value_checks",
    "set_value_checks",
    "value_checks_enabled",
]
