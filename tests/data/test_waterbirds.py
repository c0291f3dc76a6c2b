from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autobalance.data.waterbirds import (
    load_waterbirds_features,
    load_waterbirds_images,
    read_waterbirds_metadata,
)

# img_id, img_filename, y, split, place, place_filename  (the group_DRO release columns)
ROWS = [
    (1, "001.Black_footed_Albatross/a.jpg", 1, 0, 1, "/o/ocean/x.jpg"),
    (2, "001.Black_footed_Albatross/b.jpg", 1, 2, 0, "/b/bamboo_forest/y.jpg"),
    (3, "002.Laysan_Albatross/c.jpg", 1, 1, 1, "/l/lake/natural/z.jpg"),
    (4, "010.Red_winged_Blackbird/d.jpg", 0, 0, 0, "/f/forest/broadleaf/w.jpg"),
    (5, "010.Red_winged_Blackbird/e.jpg", 0, 0, 1, "/o/ocean/v.jpg"),
    (6, "011.Rusty_Blackbird/f.jpg", 0, 2, 0, "/b/bamboo_forest/u.jpg"),
    (7, "011.Rusty_Blackbird/g.jpg", 0, 1, 0, "/f/forest/t.jpg"),
]


def write_metadata(root: Path, images: bool = False) -> None:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["img_id,img_filename,y,split,place,place_filename"]
    lines += [",".join(str(v) for v in r) for r in ROWS]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    if images:
        for r in ROWS:
            (root / r[1]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((12, 12, 3), 10 * r[0], dtype=np.uint8)).save(root / r[1])


def test_metadata_columns(tmp_path: Path) -> None:
    write_metadata(tmp_path)
    meta = read_waterbirds_metadata(tmp_path)
    assert meta["y"].tolist() == [r[2] for r in ROWS]
    assert meta["split"].tolist() == [r[3] for r in ROWS]
    assert meta["place"].tolist() == [r[4] for r in ROWS]
    assert meta["img_filename"][2] == ROWS[2][1]


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_feature_splits_and_groups(tmp_path: Path, suffix: str) -> None:
    write_metadata(tmp_path)
    feats = np.arange(len(ROWS) * 512, dtype=np.float32).reshape(len(ROWS), 512)
    path = tmp_path / f"features{suffix}"
    if suffix == ".npy":
        np.save(path, feats)
    else:
        torch.save(torch.from_numpy(feats), path)
    train, val, test = load_waterbirds_features(tmp_path / "metadata.csv", path)
    rows = {s: [i for i, r in enumerate(ROWS) if r[3] == s] for s in (0, 1, 2)}
    for ds, s in ((train, 0), (val, 1), (test, 2)):
        assert torch.equal(ds.x, torch.from_numpy(feats[rows[s]]))
        assert ds.y.tolist() == [ROWS[i][2] for i in rows[s]]
        assert ds.groups is not None and ds.groups.tolist() == [ROWS[i][4] for i in rows[s]]
        assert ds.num_groups == 2 and ds.group_names == ["land", "water"]
    assert len(train) == 3 and len(val) == 2 and len(test) == 2


def test_images_with_groups(tmp_path: Path) -> None:
    write_metadata(tmp_path, images=True)
    ds = load_waterbirds_images(tmp_path, "train", image_size=8)
    assert len(ds) == 3 and ds.train
    x, y, g = ds[2]  # row 5: landbird on water
    assert x.shape == (3, 8, 8) and (y, g) == (0, 1) and int(x.float().mean()) == 50


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"metadata\.csv"):
        read_waterbirds_metadata(tmp_path)
    write_metadata(tmp_path)
    np.save(tmp_path / "f.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="3 feature rows but 7 metadata rows"):
        load_waterbirds_features(tmp_path, tmp_path / "f.npy")
    with pytest.raises(ValueError, match=r"Unknown feature file type '\.csv'"):
        (tmp_path / "f.csv").write_text("1")
        load_waterbirds_features(tmp_path, tmp_path / "f.csv")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        load_waterbirds_images(tmp_path, "dev")
