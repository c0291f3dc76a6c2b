from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autobalance.data.inat import load_inat2018, read_inat_json


def write_inat(root: Path, split: str = "train") -> list[str]:
    files = [
        "train_val2018/Plantae/5/a.jpg",
        "train_val2018/Aves/9/b.jpg",
        "train_val2018/x/2/c.jpg",
    ]
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 30, 3), 90, dtype=np.uint8)).save(root / f)
    meta = {
        "info": {"year": 2018},
        "images": [
            {"id": 11, "file_name": files[0], "width": 30, "height": 20},
            {"id": 12, "file_name": files[1], "width": 30, "height": 20},
            {"id": 13, "file_name": files[2], "width": 30, "height": 20},
        ],
        "annotations": [
            {"id": 1, "image_id": 12, "category_id": 9},
            {"id": 2, "image_id": 11, "category_id": 5},
            {"id": 3, "image_id": 13, "category_id": 2},
        ],
        "categories": [{"id": 9, "name": "c"}, {"id": 2, "name": "a"}, {"id": 5, "name": "b"}],
    }
    (root / f"{split}2018.json").write_text(json.dumps(meta))
    return files


def test_category_ids_map_to_contiguous_labels_in_id_order(tmp_path: Path) -> None:
    files = write_inat(tmp_path)
    names, labels, ids = read_inat_json(tmp_path / "train2018.json")
    assert names == files
    assert ids == [2, 5, 9]
    assert labels.tolist() == [1, 2, 0]  # ids 5, 9, 2


def test_load_inat2018(tmp_path: Path) -> None:
    write_inat(tmp_path, "val")
    ds = load_inat2018(tmp_path, "val", image_size=8)
    assert len(ds) == 3 and ds.num_classes == 3 and not ds.train
    x, y = ds[1]
    assert x.shape == (3, 8, 8) and y == 2 and int(x.float().mean()) == 90


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train2018\.json and val2018\.json"):
        load_inat2018(tmp_path, "train")
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        load_inat2018(tmp_path, "test")
    meta = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}
    (tmp_path / "train2018.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="image id 1 has no annotation"):
        read_inat_json(tmp_path / "train2018.json")
