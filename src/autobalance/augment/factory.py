"""Build the augmentation policy of a search from its config (``search.augment``).

Kinds (AutoBalance §2 and Table 2, Li et al., NeurIPS 2021, arXiv 2201.01212):

- ``none``: no learned augmentation (the default; the search is unchanged);
- ``pda``: personalised data augmentation, one :class:`~autobalance.augment.policy.ImagePolicy`
  per D_π frequency cluster of the loss (``per: cluster``) or per class (``per: class``);
- ``single``: one image policy for the whole dataset (the MADAO-like baseline of Table 2);
- ``spherical``: :class:`~autobalance.augment.spherical.SphericalPolicy`, x + ε_y·u with u
  uniform in the unit ℓ2 ball (Lemma 2), per cluster or per class; any input shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from autobalance.augment.policy import BatchPolicy, ImagePolicy
from autobalance.augment.spherical import SphericalPolicy

if TYPE_CHECKING:
    from autobalance.config import AugmentConfig

AUGMENT_KINDS: tuple[str, ...] = ("none", "pda", "single", "spherical")
PER: tuple[str, ...] = ("cluster", "class")
BatchAugment = Callable[[Tensor, Tensor, Tensor | None, torch.Generator | None], Tensor]


def normalisation_of(transform: Any) -> tuple[list[float], list[float]] | None:
    """(mean, std) of a :class:`~autobalance.augment.batched.BatchTransform`'s ``Normalize``
    (the inputs the policy sees are ``(x/255 − mean)/std``), else None."""
    from autobalance.augment.batched import Normalize

    norm = getattr(transform, "normalize", None)
    if not isinstance(norm, Normalize):
        return None
    return norm.mean.flatten().tolist(), norm.std.flatten().tolist()


def policy_clusters(kind: str, per: str, clusters: Tensor) -> Tensor:
    """Policy index per cell: the loss's D_π ``clusters`` (``per="cluster"``), one per cell
    (``per="class"``), or all 0 (``kind="single"``)."""
    clusters = torch.as_tensor(clusters, dtype=torch.long).flatten().cpu()
    if kind == "single":
        return torch.zeros_like(clusters)
    if per == "class":
        return torch.arange(clusters.numel())
    return clusters.clone()


def build_policy(
    cfg: AugmentConfig,
    clusters: Tensor,
    *,
    num_groups: int = 1,
    transform: Any = None,
    input_shape: tuple[int, ...] | None = None,
) -> BatchPolicy | None:
    """The policy ``cfg`` describes over the loss's cells (``clusters``: D_π id per class or
    (class, group) cell), or None for ``kind="none"``. Image policies read the inputs'
    normalisation from ``transform`` (:func:`normalisation_of`); without one they act on the
    values as they are and do not clip. ``input_shape`` (one sample's, when known) is checked:
    image policies need (C, H, W), and ``saturation`` needs C = 3."""
    if cfg.kind == "none":
        return None
    if cfg.kind != "spherical" and input_shape is not None:
        if len(input_shape) != 3:
            raise ValueError(
                f"search.augment.kind={cfg.kind} needs image inputs (C, H, W), got samples of "
                f"shape {tuple(input_shape)}; use search.augment.kind=spherical for features"
            )
        if "saturation" in cfg.ops and input_shape[0] != 3:
            raise ValueError(
                f"search.augment.ops has 'saturation', which needs RGB images, but the inputs "
                f"have {input_shape[0]} channel(s); leave it out of search.augment.ops"
            )
    index = policy_clusters(cfg.kind, cfg.per, clusters)
    per = "all" if cfg.kind == "single" else cfg.per
    if cfg.kind == "spherical":
        return SphericalPolicy(
            index,
            num_groups=num_groups,
            init_radius=cfg.radius,
            max_radius=cfg.max_radius,
            kind=cfg.kind,
            per=per,
        )
    stats = normalisation_of(transform)
    return ImagePolicy(
        index,
        cfg.ops,
        num_groups=num_groups,
        init_prob=cfg.init_prob,
        init_magnitude=cfg.init_magnitude,
        temperature=cfg.temperature,
        mean=None if stats is None else stats[0],
        std=None if stats is None else stats[1],
        kind=cfg.kind,
        per=per,
    )


def as_batch_augment(policy: BatchPolicy | None) -> BatchAugment | None:
    """The θ-step form of a policy: ``(x, y, groups, generator) ↦ A_y(x)``, sampled exactly
    (hard gates), without a graph to the policy's parameters; None for no policy."""
    if policy is None:
        return None

    def augment(
        x: Tensor, y: Tensor, groups: Tensor | None, generator: torch.Generator | None
    ) -> Tensor:
        with torch.no_grad():
            return policy(x, y, groups, generator=generator, mode="hard")

    return augment


__all__ = [
    "AUGMENT_KINDS",
    "PER",
    "BatchAugment",
    "as_batch_augment",
    "build_policy",
    "normalisation_of",
    "policy_clusters",
]
