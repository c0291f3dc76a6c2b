"""Build any loss of this package by name: ``make_loss("ldam_drw", class_counts=n, drw_epoch=24)``.

Every loss built here is an ``nn.Module`` called as ``loss(logits, targets, groups=None)``.
Class losses ignore ``groups``; (class, group) losses require it. ``class_counts`` is the (K,)
vector of per-class training counts, ``group_counts`` the (K, G) table of (class, group) counts;
when only ``group_counts`` is given, class counts are its row sums.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from autobalance.losses._common import as_counts
from autobalance.losses.baselines import (
    CDTLoss,
    CrossEntropy,
    DRWCrossEntropy,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    VSLoss,
    balanced_class_weights,
)
from autobalance.losses.blend import BlendedLoss, blend_label, parse_blend
from autobalance.losses.groups import BalancedGroupCE, CEDEOLoss, GroupDROLoss, GroupLALoss
from autobalance.losses.parametric import ParametricCE

Counts = Any


def _need(counts: Counts | None, what: str, name: str) -> Counts:
    if counts is None:
        raise ValueError(f"make_loss({name!r}) needs {what}")
    return counts


def _ce(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return CrossEntropy(**o)


def _weighted_ce(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    counts = _need(c, "class_counts (K,)", "weighted_ce")
    return CrossEntropy(weight=balanced_class_weights(counts), **o)


def _focal(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return FocalLoss(**o)


def _ldam(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return LDAMLoss(_need(c, "class_counts (K,)", "ldam"), **o)


def _ldam_drw(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    counts = _need(c, "class_counts (K,)", "ldam_drw")
    return LDAMLoss(counts, **{"drw_epoch": 160, **o})


def _ce_drw(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return DRWCrossEntropy(_need(c, "class_counts (K,)", "ce_drw"), **o)


def _la(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return LogitAdjustedLoss(_need(c, "class_counts (K,)", "la"), **o)


def _cdt(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return CDTLoss(_need(c, "class_counts (K,)", "cdt"), **o)


def _vs(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return VSLoss(_need(c, "class_counts (K,)", "vs"), **o)


def _parametric(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    o = dict(o)
    if g is not None:
        k, num_groups = as_counts(g, 2, name="group_counts").shape
        o.setdefault("num_classes", k)
        o.setdefault("num_groups", num_groups)
    elif c is not None:
        o.setdefault("num_classes", as_counts(c, 1).numel())
    if "num_classes" not in o:
        raise ValueError("make_loss('parametric') needs num_classes=, class_counts or group_counts")
    return ParametricCE(o.pop("num_classes"), o.pop("num_groups", 1), **o)


def _group_la(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return GroupLALoss(_need(g, "group_counts (K, G)", "group_la"), **o)


def _ce_bal_group(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    return BalancedGroupCE(_need(g, "group_counts (K, G)", "ce_bal_group"), **o)


def _ce_deo(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    if g is not None:
        o = {"num_groups": as_counts(g, 2, name="group_counts").shape[1], **o}
    return CEDEOLoss(**o)


def _group_dro(c: Counts, g: Counts, o: dict[str, Any]) -> nn.Module:
    o = dict(o)
    if g is not None:
        k, num_groups = as_counts(g, 2, name="group_counts").shape
        o.setdefault("num_groups", num_groups)
        o.setdefault("num_classes", k)
    if "num_groups" not in o:
        raise ValueError("make_loss('group_dro') needs group_counts (K, G) or num_groups=")
    return GroupDROLoss(o.pop("num_groups"), **o)


_Builder = Callable[[Counts, Counts, dict[str, Any]], nn.Module]

# name → (builder, accepted options)
_REGISTRY: dict[str, tuple[_Builder, tuple[str, ...]]] = {
    "ce": (_ce, ("reduction",)),
    "weighted_ce": (_weighted_ce, ("reduction",)),
    "focal": (_focal, ("gamma", "weight", "reduction")),
    "ldam": (_ldam, ("max_m", "s", "weight", "reduction", "weighted_mean")),
    "ldam_drw": (_ldam_drw, ("max_m", "s", "drw_epoch", "beta", "reduction", "weighted_mean")),
    "ce_drw": (_ce_drw, ("drw_epoch", "beta", "reduction", "weighted_mean")),
    "la": (_la, ("tau", "reduction")),
    "cdt": (_cdt, ("gamma", "reduction")),
    "vs": (_vs, ("gamma", "tau", "reduction")),
    "parametric": (
        _parametric,
        (
            "num_classes",
            "num_groups",
            "weight",
            "additive",
            "multiplicative",
            "delta_scale",
            "learn",
            "reduction",
        ),
    ),
    "group_la": (_group_la, ("tau", "reduction")),
    "ce_bal_group": (_ce_bal_group, ("reduction",)),
    "ce_deo": (_ce_deo, ("num_groups", "reduction")),
    "group_dro": (_group_dro, ("num_groups", "num_classes", "by", "step_size", "reduction")),
}

LOSS_NAMES: tuple[str, ...] = tuple(_REGISTRY)
LOSS_ALIASES: dict[str, str] = {"balanced_ce": "weighted_ce"}
GROUP_LOSS_NAMES: tuple[str, ...] = ("group_la", "ce_bal_group", "ce_deo", "group_dro")


def loss_options(name: str) -> tuple[str, ...]:
    """The keyword options :func:`make_loss` accepts for loss ``name`` (for a blend label
    ``REG@LAM``, those of ``REG``)."""
    blended = parse_blend(name)
    return _REGISTRY[_canonical(blended[0] if blended else name)][1]


def is_loss_label(name: str) -> bool:
    """True for a loss name, an alias, or a blend label ``REG@LAM`` with ``REG`` one of those."""
    try:
        blended = parse_blend(name)
        _canonical(blended[0] if blended else name)
    except ValueError:
        return False
    return True


def _canonical(name: str) -> str:
    key = LOSS_ALIASES.get(name, name)
    if key not in _REGISTRY:
        valid = (*LOSS_NAMES, *LOSS_ALIASES)
        raise ValueError(f"Unknown loss {name!r}, expected one of {valid}")
    return key


def make_loss(
    name: str,
    *,
    class_counts: Counts | None = None,
    group_counts: Counts | None = None,
    **options: Any,
) -> nn.Module:
    """Build the loss ``name`` (one of :data:`LOSS_NAMES` or the alias ``balanced_ce``).

    Args:
        name: ``ce``, ``weighted_ce`` (``balanced_ce``), ``focal``, ``ldam``, ``ldam_drw``,
            ``ce_drw``, ``la``, ``cdt``, ``vs``, ``parametric``, ``group_la``, ``ce_bal_group``,
            ``ce_deo`` or ``group_dro``.
        class_counts: (K,) training counts per class (needed by the count-based class losses).
        group_counts: (K, G) training counts per (class, group) cell (needed by ``group_la`` and
            ``ce_bal_group``; gives G to ``ce_deo``/``group_dro`` and K, G to ``parametric``).
        options: loss-specific keywords; :func:`loss_options` lists them. Unknown ones raise.

    A blend label ``REG@LAM`` (e.g. ``ce_deo@0.9``) builds ``(1 − LAM)·CE + LAM·REG``
    (:class:`~autobalance.losses.blend.BlendedLoss`, the Fig. 5 baselines of AutoBalance §4);
    ``options`` then go to ``REG``.

    Each loss's docstring gives its formula and paper.
    """
    blended = parse_blend(name)
    if blended is not None:
        reg, lam = blended
        if parse_blend(reg) is not None:
            raise ValueError(f"loss label {name!r}: a blend cannot contain another blend")
        regulariser = make_loss(
            reg, class_counts=class_counts, group_counts=group_counts, **options
        )
        return BlendedLoss(regulariser, lam)
    key = _canonical(name)
    builder, accepted = _REGISTRY[key]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for loss {name!r}, expected a subset of {accepted}"
        )
    if class_counts is None and group_counts is not None:
        class_counts = as_counts(group_counts, 2, name="group_counts").sum(1)
    return builder(class_counts, group_counts, options)


__all__ = [
    "GROUP_LOSS_NAMES",
    "LOSS_ALIASES",
    "LOSS_NAMES",
    "blend_label",
    "is_loss_label",
    "loss_options",
    "make_loss",
]
