from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from autobalance.data.imagenet_lt import (
    ImageListDataset,
    class_counts,
    load_imagenet_lt,
    read_image_list,
)

RED, BLUE = (250, 10, 10), (10, 10, 250)


def two_colour_image(path: Path, w: int, h: int) -> None:
    """Left half red, right half blue (a real JPEG/PNG written with Pillow)."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, : w // 2] = RED
    img[:, w // 2 :] = BLUE
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def make_imagenet_lt(tmp_path: Path) -> tuple[Path, Path]:
    images, lists = tmp_path / "imagenet", tmp_path / "lists"
    lists.mkdir()
    train = [("train/n01/a.JPEG", 7), ("train/n02/b.JPEG", 2), ("train/n01/c.JPEG", 7)]
    val = [("val/n01/d.JPEG", 7), ("val/n02/e.JPEG", 2)]
    for split, rows in (("train", train), ("val", val), ("test", val)):
        text = "".join(f"{p} {y}\n" for p, y in rows) + "\n"
        (lists / f"ImageNet_LT_{split}.txt").write_text(text)
        for p, _ in rows:
            two_colour_image(images / p, 48, 24)
    return images, lists


def test_read_image_list_keeps_order_and_labels(tmp_path: Path) -> None:
    _, lists = make_imagenet_lt(tmp_path)
    paths, labels = read_image_list(lists / "ImageNet_LT_train.txt")
    assert paths == ["train/n01/a.JPEG", "train/n02/b.JPEG", "train/n01/c.JPEG"]
    assert labels.tolist() == [7, 2, 7] and labels.dtype == np.int64
    assert class_counts(labels).tolist() == [0, 0, 1, 0, 0, 0, 0, 2]
    assert class_counts(labels, 10).shape == (10,)


def test_bad_list_line(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("a.jpg 1\nb.jpg x\n")
    with pytest.raises(ValueError, match=r"l.txt:2"):
        read_image_list(f)


def test_eval_transform_resizes_and_centre_crops(tmp_path: Path) -> None:
    images, lists = make_imagenet_lt(tmp_path)
    ds = load_imagenet_lt(images, "val", lists, num_classes=None, image_size=8)
    assert len(ds) == 2 and ds.num_classes == 8 and not ds.train
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.uint8 and y == 7
    # 48×24 → shorter side 10 → 20×10, centre 8×8 crop spans the red/blue border in the middle
    assert x[:, :, 0].float().mean(dim=1).tolist() == pytest.approx(RED, abs=6)
    assert x[:, :, -1].float().mean(dim=1).tolist() == pytest.approx(BLUE, abs=6)
    assert ds.class_counts().tolist() == [0, 0, 1, 0, 0, 0, 0, 1]


def test_train_transform_and_dataloader(tmp_path: Path) -> None:
    images, lists = make_imagenet_lt(tmp_path)
    ds = load_imagenet_lt(images, "train", lists, num_classes=1000, image_size=16)
    assert ds.train and ds.num_classes == 1000
    torch.manual_seed(0)
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert xb.shape == (3, 3, 16, 16) and yb.tolist() == [7, 2, 7]
    # every pixel is one of the two colours (or a blend on the border): red or blue dominate
    px = xb.permute(0, 2, 3, 1).reshape(-1, 3).float()
    assert bool(((px[:, 0] > 100) | (px[:, 2] > 100)).all())


def test_groups_are_returned(tmp_path: Path) -> None:
    images, _ = make_imagenet_lt(tmp_path)
    ds = ImageListDataset(images, ["val/n01/d.JPEG"], [1], groups=[1], image_size=4)
    _, y, g = ds[0]
    assert (y, g, ds.num_groups) == (1, 1, 2)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ImageNet_LT_train\.txt"):
        load_imagenet_lt(tmp_path, "train")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        load_imagenet_lt(tmp_path, "dev")
    with pytest.raises(ValueError, match="num_classes=2"):
        ImageListDataset(tmp_path, ["a", "b"], [0, 5], num_classes=2)
