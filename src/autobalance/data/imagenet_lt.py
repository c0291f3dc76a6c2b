"""ImageNet-LT list files, and a lazy image dataset shared by the large image benchmarks.

ImageNet-LT (Liu et al., "Large-Scale Long-Tailed Recognition in an Open World", CVPR 2019,
arXiv 1904.05160) ships ``ImageNet_LT_{train,val,test}.txt``: one ``relative/path.JPEG label``
per line, over an ImageNet image root. Train has 115.8K images over 1000 classes (1280 down to 5
per class); val and test are balanced. Labels are used as given, never re-sorted.

The images are too many to hold as tensors, so :class:`ImageListDataset` opens each one with
Pillow on access and returns a uint8 (3, S, S) tensor; normalisation happens later, on the batch
(``experiment.build_transforms``: ``(x/255 − μ)/σ`` with the ImageNet mean and std).

Transform backends (``backend=``):

- ``"torchvision"``: ``torchvision.transforms.v2`` (the classic ``torchvision.transforms`` on
  torchvision < 0.15) on the decoded Pillow image: ``RandomResizedCrop(S, scale, ratio)`` +
  ``RandomHorizontalFlip()`` for training, ``Resize(R)`` + ``CenterCrop(S)`` for evaluation, then
  ``PILToTensor``. It needs torchvision; asking for it without torchvision raises one
  ``ImportError``.
- ``"pil"``: the fallback, Pillow only. The same recipe written out: a random box of area
  fraction ``s ~ U(scale)`` and aspect ratio ``r`` log-uniform in ``ratio`` (10 tries, then the
  central square), resized to S×S bilinearly, flipped with probability 1/2; for evaluation the
  shorter side resized to R then the central S×S crop, with torchvision's sizes and offsets, so
  that the evaluation crops are the same pixels under both backends. The training crops have the
  same distribution as torchvision's, but not the same pixels for the same seed: torchvision
  draws its random numbers in another order and falls back to a clamped-ratio central crop, not
  the central square.
- ``"auto"`` (default): torchvision when it can be imported, else the Pillow fallback.

Either way the random draws use torch's global generator, which ``DataLoader`` seeds per worker
(:class:`~autobalance.data.streaming.StreamingDataset` seeds it per epoch and worker).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGENET_LT_SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_BACKENDS: tuple[str, ...] = ("auto", "torchvision", "pil")


def _torchvision_transforms() -> Any:
    """``torchvision.transforms.v2``, or the classic ``torchvision.transforms`` (< 0.15)."""
    try:
        from torchvision.transforms import v2
    except ImportError:
        import torchvision.transforms as v2  # the classic API has the same names
    return v2


def resolve_backend(backend: str) -> str:
    """``"torchvision"`` or ``"pil"`` for ``backend`` in :data:`IMAGE_BACKENDS`.

    ``"auto"`` picks torchvision when it imports, else the Pillow fallback; ``"torchvision"``
    without torchvision raises ``ImportError`` (one line, naming both remedies).
    """
    if backend not in IMAGE_BACKENDS:
        raise ValueError(f"Unknown image backend '{backend}', expected one of {IMAGE_BACKENDS}")
    if backend == "pil":
        return "pil"
    try:
        _torchvision_transforms()
    except (ImportError, RuntimeError, OSError) as exc:  # absent, or built for another torch
        if backend == "torchvision":
            raise ImportError(
                f"image backend 'torchvision' needs torchvision, which cannot be imported ({exc}); "
                "install the torchvision that matches your torch, or use backend 'pil' (the "
                "Pillow fallback) or 'auto'"
            ) from None
        return "pil"
    return "torchvision"


def read_image_list(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """``(paths, labels)`` from a ``relative/path label`` list file; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image list not found: {path}")
    paths: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rsplit(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'relative/path label', got {line!r}")
            paths.append(parts[0])
            labels.append(int(parts[1]))
    y = np.asarray(labels, dtype=np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{path}: labels must be non-negative, found {int(y.min())}")
    return paths, y


def class_counts(labels: np.ndarray | Tensor, num_classes: int | None = None) -> np.ndarray:
    """Images per class, ``n_k = #{i : y_i = k}``, int64 (K,)."""
    y = np.asarray(labels, dtype=np.int64)
    k = num_classes if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    return np.bincount(y, minlength=k).astype(np.int64)


def _resize_shorter(img: PILImage, size: int) -> PILImage:
    """Shorter side → ``size``, longer → ⌊size · long / short⌋, bilinear (torchvision's
    ``Resize(size)`` on a PIL image)."""
    from PIL import Image

    w, h = img.size
    short, long = min(w, h), max(w, h)
    other = max(1, int(size * long / short))
    new = (size, other) if w <= h else (other, size)
    return img.resize(new, Image.Resampling.BILINEAR)


class ImageListDataset(Dataset):
    """Images read lazily from ``root / paths[i]`` with label ``labels[i]`` (and ``groups[i]``).

    Evaluation: resize the shorter side to ``resize`` (default ⌈S·256/224⌉) then centre-crop
    ``image_size`` S. Training: random-resized crop (area fraction in ``scale``, aspect ratio
    log-uniform in ``ratio``, as in Szegedy et al. 2015) to S and a horizontal flip with
    probability 1/2. Items are ``(uint8 image (3, S, S), label)`` or ``(image, label, group)``
    when groups are given. ``backend`` picks torchvision's transforms or the Pillow fallback
    (module docstring); the random draws use torch's global generator, which ``DataLoader`` seeds
    per worker. ``class_ids``: the original id of each label 0..K−1 (iNaturalist category ids).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        paths: Sequence[str],
        labels: np.ndarray | Sequence[int] | Tensor,
        *,
        num_classes: int | None = None,
        groups: np.ndarray | Sequence[int] | Tensor | None = None,
        num_groups: int | None = None,
        image_size: int = 224,
        resize: int | None = None,
        train: bool = False,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        backend: str = "auto",
        class_ids: Sequence[int] | None = None,
        name: str = "images",
    ) -> None:
        self.root = Path(root).expanduser()
        self.paths = list(paths)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{name}: {len(self.paths)} paths but {len(self.labels)} labels")
        k = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.num_classes = num_classes if num_classes is not None else k
        if k > self.num_classes:
            raise ValueError(f"{name}: labels reach {k - 1} but num_classes={self.num_classes}")
        self.groups = None if groups is None else torch.as_tensor(np.asarray(groups, np.int64))
        if self.groups is not None and len(self.groups) != len(self.labels):
            raise ValueError(f"{name}: {len(self.groups)} groups but {len(self.labels)} labels")
        g = 1 if self.groups is None or not len(self.groups) else int(self.groups.max()) + 1
        self.num_groups = num_groups if num_groups is not None else g
        if int(image_size) < 1:
            raise ValueError(f"{name}: image_size must be ≥ 1, got {image_size}")
        self.image_size = int(image_size)
        self.resize = int(resize) if resize is not None else math.ceil(image_size * 256 / 224)
        if self.resize < self.image_size:
            raise ValueError(f"{name}: resize {self.resize} < image_size {self.image_size}")
        self.train = bool(train)
        self.scale = scale
        self.ratio = ratio
        self.requested_backend = backend
        self.backend = resolve_backend(backend)
        self.class_ids = None if class_ids is None else [int(c) for c in class_ids]
        self.name = name
        self._tv = self._torchvision_transform() if self.backend == "torchvision" else None

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> Tensor:
        """Images per class, int64 (K,)."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def with_transform(self, train: bool) -> ImageListDataset:
        """The same images, labels and settings with the training (``train=True``) or the
        evaluation transform (the list is not read again)."""
        return ImageListDataset(
            self.root,
            self.paths,
            self.labels,
            num_classes=self.num_classes,
            groups=self.groups,
            num_groups=self.num_groups,
            image_size=self.image_size,
            resize=self.resize,
            train=train,
            scale=self.scale,
            ratio=self.ratio,
            backend=self.requested_backend,
            class_ids=self.class_ids,
            name=self.name,
        )

    def _torchvision_transform(self) -> Any:
        """The torchvision pipeline of this dataset (PIL image → uint8 tensor (3, S, S))."""
        T = _torchvision_transforms()
        s = self.image_size
        if self.train:
            steps = [
                T.RandomResizedCrop(s, scale=self.scale, ratio=self.ratio),
                T.RandomHorizontalFlip(0.5),
            ]
        else:
            steps = [T.Resize(self.resize), T.CenterCrop(s)]
        return T.Compose([*steps, T.PILToTensor()])

    def _crop_box(self, w: int, h: int) -> tuple[int, int, int, int]:
        """Random box of area ``s·w·h`` and aspect ``r`` (falls back to the central square)."""
        area = w * h
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            u = torch.rand(2).tolist()
            s = self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]
            r = math.exp(log_r[0] + (log_r[1] - log_r[0]) * u[1])
            cw = round(math.sqrt(area * s * r))
            ch = round(math.sqrt(area * s / r))
            if 0 < cw <= w and 0 < ch <= h:
                x0 = int(torch.randint(0, w - cw + 1, ()).item())
                y0 = int(torch.randint(0, h - ch + 1, ()).item())
                return x0, y0, x0 + cw, y0 + ch
        side = min(w, h)
        return (w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2

    def _pil_transform(self, img: PILImage) -> Tensor:
        """The Pillow fallback of the (train or eval) transform: uint8 (3, S, S)."""
        from PIL import Image

        s = self.image_size
        if self.train:
            img = img.resize((s, s), Image.Resampling.BILINEAR, box=self._crop_box(*img.size))
            if float(torch.rand(())) < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = _resize_shorter(img, self.resize)
            w, h = img.size
            # torchvision's CenterCrop offsets: round((w − S) / 2), round((h − S) / 2)
            left, top = round((w - s) / 2), round((h - s) / 2)
            img = img.crop((left, top, left + s, top + s))
        arr = np.asarray(img, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()

    def load(self, index: int) -> Tensor:
        """Image ``index``, decoded by Pillow (as RGB), after the (train or eval) transform:
        uint8 (3, S, S)."""
        from PIL import Image

        with Image.open(self.root / self.paths[index]) as raw:
            img = raw.convert("RGB")
        if self._tv is not None:
            out = self._tv(img)
            return torch.as_tensor(out).contiguous()
        return self._pil_transform(img)

    def __getitem__(self, index: int) -> tuple[Tensor, int] | tuple[Tensor, int, int]:
        x = self.load(index)
        if self.groups is None:
            return x, int(self.labels[index])
        return x, int(self.labels[index]), int(self.groups[index])


def load_imagenet_lt(
    image_root: str | os.PathLike[str],
    split: str = "train",
    list_dir: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = 1000,
    image_size: int = 224,
    train_transform: bool | None = None,
    backend: str = "auto",
) -> ImageListDataset:
    """ImageNet-LT ``split`` over ``image_root``; the list file lives in ``list_dir``.

    ``list_dir`` defaults to ``image_root``; it must hold ``ImageNet_LT_{split}.txt``. The random
    training transform is used for ``split == "train"`` unless ``train_transform`` says otherwise.
    ``num_classes=None`` infers K = max label + 1. ``backend``: see the module docstring.
    """
    if split not in IMAGENET_LT_SPLITS:
        raise ValueError(f"Unknown split '{split}', expected one of {IMAGENET_LT_SPLITS}")
    list_file = Path(list_dir if list_dir is not None else image_root) / f"ImageNet_LT_{split}.txt"
    if not list_file.is_file():
        raise FileNotFoundError(
            f"ImageNet-LT list not found: {list_file}; expected ImageNet_LT_train.txt, "
            "ImageNet_LT_val.txt, ImageNet_LT_test.txt in list_dir"
        )
    if not Path(image_root).expanduser().is_dir():
        raise FileNotFoundError(f"ImageNet image root is not a directory: {image_root}")
    paths, labels = read_image_list(list_file)
    return ImageListDataset(
        image_root,
        paths,
        labels,
        num_classes=num_classes,
        image_size=image_size,
        train=split == "train" if train_transform is None else train_transform,
        backend=backend,
        name=f"imagenet-lt-{split}",
    )


__all__ = [
    "IMAGENET_LT_SPLITS",
    "IMAGE_BACKENDS",
    "ImageListDataset",
    "class_counts",
    "load_imagenet_lt",
    "read_image_list",
    "resolve_backend",
]
