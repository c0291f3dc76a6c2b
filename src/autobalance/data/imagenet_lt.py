"""ImageNet-LT list files, and a lazy image dataset shared by the large image benchmarks.

ImageNet-LT (Liu et al., "Large-Scale Long-Tailed Recognition in an Open World", CVPR 2019,
arXiv 1904.05160) ships ``ImageNet_LT_{train,val,test}.txt``: one ``relative/path.JPEG label``
per line, over an ImageNet image root. Train has 115.8K images over 1000 classes (1280 down to 5
per class); val and test are balanced. Labels are used as given, never re-sorted.

The images are too many to hold as tensors, so :class:`ImageListDataset` opens each one with
Pillow on access and returns a uint8 (3, S, S) tensor; normalisation happens later on the batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGENET_LT_SPLITS: tuple[str, ...] = ("train", "val", "test")


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
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(new, Image.Resampling.BILINEAR)


class ImageListDataset(Dataset):
    """Images read lazily from ``root / paths[i]`` with label ``labels[i]`` (and ``groups[i]``).

    Evaluation: resize the shorter side to ``resize`` then centre-crop ``image_size``. Training:
    random-resized crop (area fraction in ``scale``, aspect ratio log-uniform in ``ratio``, as in
    Szegedy et al. 2015) to ``image_size`` and a horizontal flip with probability 1/2. Items are
    ``(uint8 image (3, S, S), label)`` or ``(image, label, group)`` when groups are given. The
    random draws use torch's global generator, which ``DataLoader`` seeds per worker.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        paths: Sequence[str],
        labels: np.ndarray | Sequence[int],
        *,
        num_classes: int | None = None,
        groups: np.ndarray | Sequence[int] | None = None,
        num_groups: int | None = None,
        image_size: int = 224,
        resize: int | None = None,
        train: bool = False,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
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
        self.image_size = int(image_size)
        self.resize = int(resize) if resize is not None else math.ceil(image_size * 256 / 224)
        self.train = bool(train)
        self.scale = scale
        self.ratio = ratio
        self.name = name

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> Tensor:
        """Images per class, int64 (K,)."""
        return torch.bincount(self.labels, minlength=self.num_classes)

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

    def load(self, index: int) -> Tensor:
        """Image ``index`` after the (train or eval) transform, uint8 (3, S, S)."""
        from PIL import Image

        s = self.image_size
        with Image.open(self.root / self.paths[index]) as raw:
            img = raw.convert("RGB")
        if self.train:
            img = img.resize((s, s), Image.Resampling.BILINEAR, box=self._crop_box(*img.size))
            if float(torch.rand(())) < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = _resize_shorter(img, self.resize)
            w, h = img.size
            left, top = (w - s) // 2, (h - s) // 2
            img = img.crop((left, top, left + s, top + s))
        arr = np.asarray(img, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()

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
) -> ImageListDataset:
    """ImageNet-LT ``split`` over ``image_root``; the list file lives in ``list_dir``.

    ``list_dir`` defaults to ``image_root``; it must hold ``ImageNet_LT_{split}.txt``. The random
    training transform is used for ``split == "train"`` unless ``train_transform`` says otherwise.
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
        name=f"imagenet-lt-{split}",
    )


__all__ = [
    "IMAGENET_LT_SPLITS",
    "ImageListDataset",
    "class_counts",
    "load_imagenet_lt",
    "read_image_list",
]
