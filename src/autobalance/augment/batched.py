"""Batched image augmentation on tensors (CPU or GPU): random crop with padding, flip, normalise.

The standard CIFAR recipe (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv 1512.03385, §4.2): pad 4 zero pixels on each side, take a random 32×32 crop, flip
horizontally with probability 1/2, then normalise per channel ``(x/255 − μ_c)/σ_c``. Here the
whole batch is augmented at once: per-sample offsets come from one seeded ``torch.Generator`` and
the crops are two ``gather`` calls, so there is no Python loop over samples. Apply crop and flip
to the uint8 images before :class:`Normalize`, so the padding is black as in the reference
pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# Per-channel mean and std of the CIFAR training images in [0, 1]. For CIFAR-10 these are the
# values of the LDAM-DRW / AutoBalance reference code; the exact pixel std is (0.247, 0.243, 0.261).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, float, float] = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(x.shape)}")


def random_crop(x: Tensor, padding: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Zero-pad by ``padding`` then crop back to (H, W) at a random offset per sample.

    ``out[n, c, i, j] = pad(x)[n, c, i + a_n, j + b_n]`` with ``a_n, b_n ~ U{0, …, 2·padding}``
    drawn (a first, then b) from ``generator``.
    """
    _check_images(x)
    if padding < 0:
        raise ValueError(f"padding must be ≥ 0, got {padding}")
    if padding == 0 or x.shape[0] == 0:
        return x.clone()
    n, c, h, w = x.shape
    p = int(padding)
    offsets = torch.randint(
        0, 2 * p + 1, (2, n), generator=generator, device=_draw_device(generator)
    ).to(x.device)
    padded = F.pad(x, (p, p, p, p))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * p))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def random_flip(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirror sample ``n`` left-right when ``u_n < p``, ``u_n ~ U[0, 1)`` from ``generator``."""
    _check_images(x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"flip probability must lie in [0, 1], got {p}")
    u = torch.rand(x.shape[0], generator=generator, device=_draw_device(generator))
    mask = (u < p).to(x.device)[:, None, None, None]
    return torch.where(mask, x.flip(3), x)


def to_float(x: Tensor) -> Tensor:
    """uint8 images → float32 in [0, 1] (``x/255``); float input is returned as is."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


class Normalize:
    """``(x − μ_c)/σ_c`` per channel; uint8 input is first scaled to [0, 1] by ``x/255``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        # (device, dtype) -> (mean, std) there: a host→device copy blocks the host, so it is
        # made once per device and dtype (and again if mean/std are replaced), not per batch
        self._moved: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor, Any]] = {}

    def _stats(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        src = (id(self.mean), self.mean._version, id(self.std), self.std._version)
        hit = self._moved.get((device, dtype))
        if hit is None or hit[2] != src:
            mean = self.mean.to(device=device, dtype=dtype)
            hit = (mean, self.std.to(device=device, dtype=dtype), src)
            self._moved[(device, dtype)] = hit
        return hit[0], hit[1]

    def __call__(self, x: Tensor) -> Tensor:
        _check_images(x)
        x = to_float(x)
        if x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected {self.mean.shape[1]} channels, got {x.shape[1]}")
        mean, std = self._stats(x.device, x.dtype)
        return (x - mean) / std


class BatchTransform:
    """Callable batch → float batch: [random crop] → [random flip] → normalise [→ channels_last].

    The random draws come from ``self.generator``; ``state_dict``/``load_state_dict`` carry its
    state so a resumed run augments exactly as an uninterrupted one.
    """

    def __init__(
        self,
        normalize: Normalize,
        padding: int = 0,
        flip: bool = False,
        seed: int | None = 0,
        channels_last: bool = False,
    ) -> None:
        self.normalize = normalize
        self.padding = int(padding)
        self.flip = bool(flip)
        self.channels_last = bool(channels_last)
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(int(seed))
        else:
            self.generator.seed()

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Transform a batch; random draws use ``generator`` when given, else the own one."""
        gen = self.generator if generator is None else generator
        if self.padding > 0:
            x = random_crop(x, self.padding, gen)
        if self.flip:
            x = random_flip(x, 0.5, gen)
        x = self.normalize(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def make_image_transform(
    train: bool,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
    *,
    padding: int = 4,
    flip: bool = True,
    seed: int | None = 0,
    channels_last: bool = False,
) -> BatchTransform:
    """The CIFAR batch transform: crop (padding 4) + flip + normalise when ``train``, else only
    normalise."""
    return BatchTransform(
        Normalize(mean, std),
        padding=padding if train else 0,
        flip=flip and train,
        seed=seed,
        channels_last=channels_last,
    )


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BatchTransform",
    "Normalize",
    "make_image_transform",
    "random_crop",
    "random_flip",
    "to_float",
]
