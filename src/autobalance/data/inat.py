"""iNaturalist 2018 from its COCO-style json annotations, read lazily.

iNaturalist 2018 (Van Horn et al., "The iNaturalist Species Classification and Detection Dataset",
CVPR 2018, arXiv 1707.06642): 437,513 training images over 8,142 species, naturally long-tailed,
and a balanced 24,426-image validation set (3 per class). ``train2018.json`` and
``val2018.json`` hold ``{"images": [{"id", "file_name"}], "annotations": [{"image_id",
"category_id"}], "categories": [{"id", ...}]}``; ``file_name`` is relative to the image root.
Category ids are mapped to contiguous labels in increasing id order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from autobalance.data.imagenet_lt import ImageListDataset

INAT_SPLITS: tuple[str, ...] = ("train", "val")


def read_inat_json(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray, list[int]]:
    """``(file_names, labels, category_ids)`` from a COCO-style annotation file.

    ``labels[i] = rank of category_id(i) among all category ids`` (ascending), so
    ``category_ids[labels[i]]`` recovers the original id. Images are kept in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"iNaturalist annotation file not found: {path}")
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    if not isinstance(meta, dict) or "images" not in meta or "annotations" not in meta:
        raise ValueError(f"{path}: expected a json object with 'images' and 'annotations'")
    cat_of = {int(a["image_id"]): int(a["category_id"]) for a in meta["annotations"]}
    if meta.get("categories"):
        ids = sorted({int(c["id"]) for c in meta["categories"]})
    else:
        ids = sorted(set(cat_of.values()))
    label_of = {cid: i for i, cid in enumerate(ids)}
    files: list[str] = []
    labels: list[int] = []
    for img in meta["images"]:
        iid = int(img["id"])
        if iid not in cat_of:
            raise ValueError(f"{path}: image id {iid} has no annotation")
        cid = cat_of[iid]
        if cid not in label_of:
            raise ValueError(f"{path}: category id {cid} is not listed in 'categories'")
        files.append(str(img["file_name"]))
        labels.append(label_of[cid])
    return files, np.asarray(labels, dtype=np.int64), ids


def load_inat2018(
    image_root: str | os.PathLike[str],
    split: str = "train",
    ann_dir: str | os.PathLike[str] | None = None,
    *,
    image_size: int = 224,
    train_transform: bool | None = None,
    backend: str = "auto",
) -> ImageListDataset:
    """iNaturalist 2018 ``split`` (``train2018.json`` / ``val2018.json`` in ``ann_dir``).

    ``ann_dir`` defaults to ``image_root``. The number of classes is the number of categories in
    the file (8,142 for the official release); the dataset's ``class_ids`` are their category
    ids, in label order. ``backend``: the image transforms, see
    :mod:`autobalance.data.imagenet_lt`.
    """
    if split not in INAT_SPLITS:
        raise ValueError(f"Unknown split '{split}', expected one of {INAT_SPLITS}")
    ann = Path(ann_dir if ann_dir is not None else image_root) / f"{split}2018.json"
    if not ann.is_file():
        raise FileNotFoundError(
            f"iNaturalist annotations not found: {ann}; expected train2018.json and val2018.json"
        )
    files, labels, ids = read_inat_json(ann)
    return ImageListDataset(
        image_root,
        files,
        labels,
        num_classes=len(ids),
        image_size=image_size,
        train=split == "train" if train_transform is None else train_transform,
        backend=backend,
        class_ids=ids,
        name=f"inat2018-{split}",
    )


__all__ = ["INAT_SPLITS", "load_inat2018", "read_inat_json"]
