"""Waterbirds from its ``metadata.csv``, as images (lazy) or as precomputed features.

Waterbirds (Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts", ICLR 2020,
arXiv 1911.08731) pastes CUB birds on Places backgrounds. ``metadata.csv`` has the columns
``img_id, img_filename, y, split, place, place_filename``: ``y`` = 1 for waterbirds, ``split`` 0/1/2
= train/val/test, ``place`` = 1 for a water background. The group used here is ``place``, so each
(class, group) cell of the paper's loss (4.2) is one (bird, background) combination.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import torch

from autobalance.data.dataset import InMemoryDataset
from autobalance.data.imagenet_lt import ImageListDataset

WATERBIRDS_SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
WATERBIRDS_CLASSES: list[str] = ["landbird", "waterbird"]
WATERBIRDS_GROUPS: list[str] = ["land", "water"]
_COLUMNS = ("img_filename", "y", "split", "place")


def _integer(text: str | None, path: Path, column: str, row: int) -> int:
    """An integer label ("1" or "1.0"); a fraction, NaN or blank is an error, not class 0."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise ValueError(
            f"{path}: column '{column}' must hold integers, got {text!r} in data row {row + 1}"
        )
    return int(value)


def read_waterbirds_metadata(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Columns ``img_filename`` (str), ``y``, ``split``, ``place`` (int64) of ``metadata.csv``."""
    path = Path(path)
    if path.is_dir():
        path = path / "metadata.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"Waterbirds metadata not found: {path}; expected metadata.csv with columns "
            "img_id,img_filename,y,split,place,place_filename"
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; expected {list(_COLUMNS)}")
        rows = [(r["img_filename"], r["y"], r["split"], r["place"]) for r in reader]
    cols = list(zip(*rows)) if rows else [(), (), (), ()]
    out = {"img_filename": np.asarray(cols[0], dtype=str)}
    for name, col in zip(_COLUMNS[1:], cols[1:]):
        out[name] = np.asarray([_integer(v, path, name, i) for i, v in enumerate(col)], np.int64)
    for name, hi in (("y", 1), ("split", 2), ("place", 1)):
        v = out[name]
        if v.size and (v.min() < 0 or v.max() > hi):
            raise ValueError(f"{path}: column '{name}' must lie in [0, {hi}]")
    return out


def _split_mask(meta: dict[str, np.ndarray], split: str) -> np.ndarray:
    if split not in WATERBIRDS_SPLITS:
        raise ValueError(f"Unknown split '{split}', expected one of {tuple(WATERBIRDS_SPLITS)}")
    return meta["split"] == WATERBIRDS_SPLITS[split]


def load_waterbirds_images(
    root: str | os.PathLike[str],
    split: str = "train",
    *,
    metadata: str | os.PathLike[str] | None = None,
    image_size: int = 224,
    train_transform: bool | None = None,
) -> ImageListDataset:
    """Images of ``split`` under ``root`` (``root/metadata.csv`` unless ``metadata`` is given)."""
    meta = read_waterbirds_metadata(metadata if metadata is not None else root)
    keep = _split_mask(meta, split)
    return ImageListDataset(
        root,
        meta["img_filename"][keep].tolist(),
        meta["y"][keep],
        num_classes=2,
        groups=meta["place"][keep],
        num_groups=2,
        image_size=image_size,
        train=split == "train" if train_transform is None else train_transform,
        name=f"waterbirds-{split}",
    )


def _load_features(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"Waterbirds feature file not found: {path} (.npy or .pt)")
    if path.suffix == ".npy":
        feats = np.load(path, allow_pickle=False)
    elif path.suffix == ".pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, torch.Tensor):
            raise ValueError(f"{path}: expected a saved tensor, got {type(obj).__name__}")
        feats = obj.detach().numpy()
    else:
        raise ValueError(f"Unknown feature file type '{path.suffix}', expected one of .npy, .pt")
    if feats.ndim != 2:
        raise ValueError(f"{path}: expected features (N, D), got shape {feats.shape}")
    return feats.astype(np.float32, copy=False)


def load_waterbirds_features(
    metadata: str | os.PathLike[str], features: str | os.PathLike[str]
) -> tuple[InMemoryDataset, InMemoryDataset, InMemoryDataset]:
    """(train, val, test) of precomputed features, row ``i`` aligned with metadata row ``i``.

    ``x`` float32 (N, D) (e.g. D = 512 for a ResNet-18 embedding), ``y`` bird type, ``groups`` the
    background (0 land, 1 water).
    """
    meta = read_waterbirds_metadata(metadata)
    feats = _load_features(Path(features))
    if feats.shape[0] != meta["y"].shape[0]:
        raise ValueError(
            f"{features}: {feats.shape[0]} feature rows but {meta['y'].shape[0]} metadata rows"
        )
    out = []
    for split in WATERBIRDS_SPLITS:
        keep = _split_mask(meta, split)
        out.append(
            InMemoryDataset(
                x=torch.from_numpy(np.ascontiguousarray(feats[keep])),
                y=torch.from_numpy(meta["y"][keep]),
                num_classes=2,
                groups=torch.from_numpy(meta["place"][keep]),
                num_groups=2,
                class_names=list(WATERBIRDS_CLASSES),
                group_names=list(WATERBIRDS_GROUPS),
                name=f"waterbirds-{split}",
            )
        )
    return out[0], out[1], out[2]


__all__ = [
    "WATERBIRDS_CLASSES",
    "WATERBIRDS_GROUPS",
    "WATERBIRDS_SPLITS",
    "load_waterbirds_features",
    "load_waterbirds_images",
    "read_waterbirds_metadata",
]
