"""Differentiable image operations of the augmentation policy space (AutoBalance §2, PDA).

The policy space follows AutoAugment (Cubuk et al., CVPR 2019, arXiv 1805.09501) and its
differentiable relaxations (MADAO, Hataya et al., "Meta Approach to Data Augmentation
Optimization", WACV 2022, arXiv 2006.07965; the AutoBalance paper's reference [24]). Each
operation takes a batch of images in pixel space (N, C, H, W), a per-sample magnitude
``mag`` (N,) as a *fraction* in [0, 1] of the operation's maximum :data:`MAX_MAGNITUDE`, and
per-sample uniform noise ``u`` (N, 3) that fixes its random direction; it is differentiable in
``mag`` (and in the images). Geometry and colour use kornia's functional ops with tensor
arguments (``kornia.geometry.transform.translate / rotate / shear / hflip``,
``kornia.enhance.adjust_brightness / adjust_contrast / adjust_saturation``), so the gradient
reaches the magnitudes through kornia's differentiable warps; no warp is written here.

Operations (magnitude m ∈ [0, 1], s = ±1 a random sign from ``u[:, 0]``):

- ``translate``: shift by m · 0.25 · (W, H) pixels along a random direction angle 2π·u₁;
- ``rotate``: s · m · 30 degrees about the centre;
- ``shear``: s · m · 0.3 along x or y (``u₁ < 1/2`` picks x);
- ``brightness``: x + s · m · 0.4 (clipped to [0, 1] in pixel space);
- ``contrast``: (x − mean) · (1 + s · m · 0.6) + mean, kornia's definition;
- ``saturation``: blend with the grey image by 1 + s · m · 0.8 (RGB only);
- ``cutout``: a square of side m · 0.5 · min(H, W) centred at (u₁·H, u₂·W) is set to ``fill``;
  the mask is the product of two logistic edges σ((r − |i − c|)/τ) with τ = 1 pixel (its
  straight-through form keeps the hard box in the forward pass, see :func:`cutout`);
- ``flip``: horizontal mirror; it has no magnitude, only a probability.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

OPS: tuple[str, ...] = (
    "translate",
    "rotate",
    "shear",
    "brightness",
    "contrast",
    "saturation",
    "cutout",
    "flip",
)
# Largest magnitude of each operation (m = 1), in its own unit (see the module docstring).
MAX_MAGNITUDE: dict[str, float] = {
    "translate": 0.25,
    "rotate": 30.0,
    "shear": 0.3,
    "brightness": 0.4,
    "contrast": 0.6,
    "saturation": 0.8,
    "cutout": 0.5,
}
MAGNITUDE_OPS: tuple[str, ...] = tuple(op for op in OPS if op in MAX_MAGNITUDE)
MASK_MODES: tuple[str, ...] = ("hard", "soft", "straight_through")
CUTOUT_EDGE = 1.0  # τ of the cutout mask's logistic edge, in pixels

OpFn = Callable[..., Tensor]


def _sign(u: Tensor) -> Tensor:
    return torch.where(u < 0.5, -1.0, 1.0).to(u.dtype)


def translate(x: Tensor, mag: Tensor, u: Tensor, **_: object) -> Tensor:
    """Shift by m·0.25·(W, H) pixels in direction 2π·u₁ (kornia ``translate``)."""
    from kornia.geometry.transform import translate as k_translate

    h, w = x.shape[-2:]
    angle = 2 * math.pi * u[:, 1]
    amount = mag * MAX_MAGNITUDE["translate"]
    shift = torch.stack([amount * w * torch.cos(angle), amount * h * torch.sin(angle)], dim=1)
    return k_translate(x, shift.to(x.dtype))


def rotate(x: Tensor, mag: Tensor, u: Tensor, **_: object) -> Tensor:
    """Rotate by s·m·30 degrees about the image centre (kornia ``rotate``)."""
    from kornia.geometry.transform import rotate as k_rotate

    return k_rotate(x, (_sign(u[:, 0]) * mag * MAX_MAGNITUDE["rotate"]).to(x.dtype))


def shear(x: Tensor, mag: Tensor, u: Tensor, **_: object) -> Tensor:
    """Shear by s·m·0.3 along x (u₁ < 1/2) or y (kornia ``shear``)."""
    from kornia.geometry.transform import shear as k_shear

    amount = _sign(u[:, 0]) * mag * MAX_MAGNITUDE["shear"]
    along_x = (u[:, 1] < 0.5).to(amount.dtype)
    factors = torch.stack([amount * along_x, amount * (1 - along_x)], dim=1)
    return k_shear(x, factors.to(x.dtype))


def brightness(x: Tensor, mag: Tensor, u: Tensor, *, clip: bool = True, **_: object) -> Tensor:
    """x + s·m·0.4, clipped to [0, 1] when ``clip`` (kornia ``adjust_brightness``)."""
    from kornia.enhance import adjust_brightness

    factor = (_sign(u[:, 0]) * mag * MAX_MAGNITUDE["brightness"]).to(x.dtype)
    return adjust_brightness(x, factor, clip_output=clip)


def contrast(x: Tensor, mag: Tensor, u: Tensor, *, clip: bool = True, **_: object) -> Tensor:
    """Contrast factor 1 + s·m·0.6 (kornia ``adjust_contrast``)."""
    from kornia.enhance import adjust_contrast

    factor = (1 + _sign(u[:, 0]) * mag * MAX_MAGNITUDE["contrast"]).to(x.dtype)
    return adjust_contrast(x, factor, clip_output=clip)


def saturation(x: Tensor, mag: Tensor, u: Tensor, **_: object) -> Tensor:
    """Saturation factor 1 + s·m·0.8 (kornia ``adjust_saturation``; 3-channel images)."""
    from kornia.enhance import adjust_saturation

    if x.shape[1] != 3:
        raise ValueError(f"the saturation operation needs RGB images, got {x.shape[1]} channels")
    factor = (1 + _sign(u[:, 0]) * mag * MAX_MAGNITUDE["saturation"]).to(x.dtype)
    return adjust_saturation(x, factor)


def _edge(coord: Tensor, centre: Tensor, half: Tensor, mode: str) -> Tensor:
    """Inside-ness of ``coord`` in [centre − half, centre + half] per sample, (N, L)."""
    signed = half[:, None] - (coord[None, :] - centre[:, None]).abs()
    soft = torch.sigmoid(signed / CUTOUT_EDGE)
    if mode == "soft":
        return soft
    hard = (signed > 0).to(soft.dtype)
    if mode == "hard":
        return hard
    return hard + soft - soft.detach()


def cutout(
    x: Tensor,
    mag: Tensor,
    u: Tensor,
    *,
    fill: Tensor | None = None,
    mode: str = "hard",
    **_: object,
) -> Tensor:
    """Set a square of side m·0.5·min(H, W) centred at (u₁·H, u₂·W) to ``fill``.

    mask(i, j) = e(i; c_i, r)·e(j; c_j, r) with r the half side and e a logistic edge
    σ((r − |i − c|)/τ), τ = 1 pixel (``mode="soft"``), its 0/1 step (``"hard"``), or the step
    in the forward pass with the logistic edge's gradient (``"straight_through"``): the
    gradient in m exists in every mode but ``hard``. out = x·(1 − mask) + fill·mask.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"Unknown mask mode {mode!r}, expected one of {MASK_MODES}")
    h, w = x.shape[-2:]
    half = mag.to(x.dtype) * MAX_MAGNITUDE["cutout"] * min(h, w) / 2
    rows = torch.arange(h, device=x.device, dtype=x.dtype) + 0.5
    cols = torch.arange(w, device=x.device, dtype=x.dtype) + 0.5
    mask_r = _edge(rows, u[:, 1].to(x.dtype) * h, half, mode)
    mask_c = _edge(cols, u[:, 2].to(x.dtype) * w, half, mode)
    mask = (mask_r[:, :, None] * mask_c[:, None, :])[:, None]  # (N, 1, H, W)
    value = torch.zeros((), dtype=x.dtype, device=x.device) if fill is None else fill
    return x * (1 - mask) + value * mask


def flip(x: Tensor, mag: Tensor | None = None, u: Tensor | None = None, **_: object) -> Tensor:
    """Horizontal mirror (kornia ``hflip``)."""
    from kornia.geometry.transform import hflip

    return hflip(x)


OP_FUNCTIONS: dict[str, OpFn] = {
    "translate": translate,
    "rotate": rotate,
    "shear": shear,
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "cutout": cutout,
    "flip": flip,
}


def check_ops(ops: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``ops`` as a tuple after checking that it is a non-empty list of distinct names."""
    ops = tuple(ops)
    unknown = [op for op in ops if op not in OPS]
    if unknown or not ops or len(set(ops)) != len(ops):
        raise ValueError(f"ops must be distinct names from {OPS}, got {list(ops)}")
    return ops


__all__ = [
    "MAGNITUDE_OPS",
    "MASK_MODES",
    "MAX_MAGNITUDE",
    "OPS",
    "OP_FUNCTIONS",
    "brightness",
    "check_ops",
    "contrast",
    "cutout",
    "flip",
    "rotate",
    "saturation",
    "shear",
    "translate",
]
