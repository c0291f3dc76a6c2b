"""ImageNet-LT and iNaturalist 2018 end to end on tiny image trees in the upstream layouts.

The trees are written here with Pillow: ImageNet-LT's ``ImageNet_LT_{train,val,test}.txt`` lists
(``train/<wnid>/<file>.JPEG label`` over the ImageNet root, Liu et al. 2019) and iNaturalist
2018's COCO-style ``train2018.json`` / ``val2018.json`` (``images``, ``annotations``,
``categories``; ``file_name`` = ``train_val2018/<supercategory>/<category id>/<hash>.jpg``, Van
Horn et al. 2018). The paper presets then run through the CLI with overrides that make them tiny
(CIFAR ResNet-8 on 16×16 crops, 2 search epochs, clusters of 2 classes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autobalance.cli import main
from autobalance.data.imagenet_lt import ImageListDataset, resolve_backend
from autobalance.data.streaming import StreamingDataset
from autobalance.experiment import (
    DatasetConfig,
    build_experiment,
    load_dataset,
)
from autobalance.presets import load_config

# images per class in the training list: long-tailed, every class ≥ 3 so the 80/20 split keeps
# one validation image per class; the test lists are balanced (3 per class)
TRAIN_COUNTS = (12, 7, 4, 3)
TEST_PER_CLASS = 3
WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361")
SIDE = 20


def _jpeg(path: Path, label: int, rng: np.random.Generator) -> None:
    """A SIDE×SIDE JPEG: noise around a class colour, so that the classes are learnable."""
    base = np.array([(label * 70) % 256, 255 - label * 60, (label * 130) % 256], dtype=np.int16)
    noise = rng.integers(-40, 41, size=(SIDE, SIDE, 3))
    img = np.clip(base + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=90)


def write_imagenet_lt(root: Path, seed: int = 0) -> Path:
    """ImageNet-LT in the upstream layout under ``root``: the lists next to ``train/`` and
    ``val/`` image folders (val/test images sit in per-class folders, as the lists name them)."""
    rng = np.random.default_rng(seed)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for k, wnid in enumerate(WNIDS):
        for i in range(TRAIN_COUNTS[k]):
            rel = f"train/{wnid}/{wnid}_{i:05d}.JPEG"
            _jpeg(root / rel, k, rng)
            lists["train"].append(f"{rel} {k}")
        for split, offset in (("val", 0), ("test", 100)):
            for i in range(TEST_PER_CLASS):
                rel = f"val/{wnid}/ILSVRC2012_val_{offset + 10 * k + i:08d}.JPEG"
                _jpeg(root / rel, k, rng)
                lists[split].append(f"{rel} {k}")
    for split, rows in lists.items():
        (root / f"ImageNet_LT_{split}.txt").write_text("\n".join(rows) + "\n")
    return root


def write_inat2018(root: Path, seed: int = 0) -> Path:
    """iNaturalist 2018 in the upstream layout under ``root``: ``train_val2018/`` images and the
    two COCO-style json files; category ids are not contiguous and not in file order."""
    rng = np.random.default_rng(seed)
    cats = [(41, "Plantae"), (7, "Aves"), (19, "Insecta"), (3, "Fungi")]  # (id, supercategory)
    categories = [
        {"id": cid, "name": f"species {cid}", "supercategory": sup, "kingdom": sup}
        for cid, sup in cats
    ]
    for split, per_class in (("train", TRAIN_COUNTS), ("val", (TEST_PER_CLASS,) * len(cats))):
        images, annotations = [], []
        for k, (cid, sup) in enumerate(cats):
            for i in range(per_class[k]):
                image_id = len(images) + (1 if split == "train" else 10_000)
                rel = f"train_val2018/{sup}/{cid}/{split}{image_id:06x}{i}.jpg"
                _jpeg(root / rel, k, rng)
                images.append(
                    {"id": image_id, "file_name": rel, "width": SIDE, "height": SIDE, "license": 1}
                )
                annotations.append(
                    {"id": len(annotations), "image_id": image_id, "category_id": cid}
                )
        meta = {
            "info": {"year": 2018, "description": "tiny iNaturalist 2018"},
            "images": images,
            "annotations": annotations,
            "categories": categories,
            "licenses": [{"id": 1, "name": "CC BY"}],
        }
        (root / f"{split}2018.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="module")
def imagenet_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_imagenet_lt(tmp_path_factory.mktemp("imagenet_lt"))


@pytest.fixture(scope="module")
def inat_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inat2018(tmp_path_factory.mktemp("inat2018"))


# tiny versions of the paper presets: the same protocol, small numbers
TINY = [
    "model.name=resnet8",
    "model.width=4",
    "dataset.options.image_size=16",
    "dataset.options.num_workers=0",
    "search.device=cpu",
    "search.space.cluster_size=2",
    "search.train.epochs=2",
    "search.train.batch_size=8",
    "search.train.warmup_epochs=0",
    "search.train.eval_batch_size=32",
    "search.hyper.interval=2",
    "search.hyper.train_batches=1",
    "search.hyper.val_batches=1",
    "search.hyper.iterations=2",
    "search.retrain_train.epochs=1",
    "search.retrain_train.batch_size=8",
    "search.retrain_train.warmup_epochs=0",
    "search.retrain_train.eval_batch_size=32",
]
TREES = [("imagenet-lt", "imagenet_tree"), ("inat2018", "inat_tree")]


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """report.md without its plots (tests/cli checks those): seconds less per run."""
    from autobalance.report import write_run_report

    monkeypatch.setattr("autobalance.cli._report", lambda run: write_run_report(run, figures=False))


def _cli(command: str, preset: str, root: Path, out: Path, *extra: str) -> list[str]:
    return [
        command,
        "--preset",
        preset,
        *extra,
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
        "--set",
        *TINY,
        f"dataset.path={root}",
    ]


def _balanced_error(run: Path) -> float:
    summary = json.loads((run / "summary.json").read_text())
    value = summary["test"]["balanced_error"]
    assert value is not None and math.isfinite(value) and 0.0 <= value <= 1.0
    return float(value)


@pytest.mark.parametrize(("preset", "tree"), TREES)
def test_paper_preset_search_and_baseline_run_end_to_end(
    preset: str, tree: str, request: pytest.FixtureRequest, tmp_path: Path, no_figures: None
) -> None:
    root = request.getfixturevalue(tree)
    run = tmp_path / "search"
    assert main(_cli("search", preset, root, run, "--allow-no-search")) == 0
    _balanced_error(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["hyper_steps"]["applied"] >= 1
    assert (run / "alpha.json").is_file() and (run / "model.pt").is_file()
    run = tmp_path / "la"
    assert main(_cli("train", preset, root, run, "--loss", "la")) == 0
    _balanced_error(run)


@pytest.mark.parametrize("preset", ["imagenet-lt", "inat2018"])
def test_missing_tree_is_one_line_and_exit_2(
    preset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = preset.replace("-", "_")
    nowhere = tmp_path / "nowhere"
    argv = ["search", "--preset", preset, "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*argv, "--set", f"dataset.data_dir={nowhere}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(nowhere / name) in err and "not found" in err
    assert not (tmp_path / "run").exists()
    # an image root without its list files / annotations: the missing file is named
    (tmp_path / "empty").mkdir()
    assert main([*argv, "--set", f"dataset.path={tmp_path / 'empty'}"]) == 2
    err = capsys.readouterr().err
    wanted = "ImageNet_LT_train.txt" if preset == "imagenet-lt" else "train2018.json"
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "empty" / wanted) in err, err


def test_list_without_its_images_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    for split in ("train", "test"):
        (lists / f"ImageNet_LT_{split}.txt").write_text("train/n01/a.JPEG 0\ntrain/n02/b.JPEG 1\n")
    argv = ["search", "--preset", "imagenet-lt", "--out", str(tmp_path / "run"), "--quiet"]
    sets = [f"dataset.path={tmp_path / 'images'}", f"dataset.options.list_dir={lists}"]
    (tmp_path / "images").mkdir()
    assert main([*argv, "--set", *sets]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert str(tmp_path / "images" / "train/n01/a.JPEG") in err


def test_load_dataset_streams_the_papers_splits(imagenet_tree: Path) -> None:
    cfg = DatasetConfig(name="imagenet_lt", path=str(imagenet_tree), options={"image_size": 16})
    train, test = load_dataset(cfg)
    assert isinstance(train, StreamingDataset) and isinstance(test, StreamingDataset)
    assert train.num_classes == test.num_classes == 4
    assert train.class_counts().tolist() == list(TRAIN_COUNTS)
    assert test.class_counts().tolist() == [TEST_PER_CLASS] * 4
    # train: random crops; its eval_dataset and the test split: centre crops of the same size
    assert isinstance(train.dataset, ImageListDataset) and train.dataset.train
    assert isinstance(train.eval_dataset, ImageListDataset) and not train.eval_dataset.train
    assert train.eval_dataset.paths == train.dataset.paths
    assert isinstance(test.dataset, ImageListDataset) and not test.dataset.train
    assert test.dataset.name == "imagenet-lt-test"
    x, y, g = train.fetch(torch.tensor([0, 12]), train=False)
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.uint8 and y.tolist() == [0, 1]
    assert g is None
    x_again = train.fetch(torch.tensor([0, 12]), train=False)[0]
    assert torch.equal(x, x_again)  # evaluation crops are deterministic
    # the validation list instead of the test list
    cfg.options["test_split"] = "val"
    _, val = load_dataset(cfg)
    assert isinstance(val, StreamingDataset) and val.dataset.name == "imagenet-lt-val"


def test_inat_labels_follow_category_ids(inat_tree: Path) -> None:
    cfg = DatasetConfig(name="inat2018", path=str(inat_tree), options={"image_size": 8})
    train, test = load_dataset(cfg)
    assert train.num_classes == test.num_classes == 4
    assert isinstance(train.dataset, ImageListDataset)
    assert train.dataset.class_ids == [3, 7, 19, 41]  # labels in increasing category id order
    # categories (41, 7, 19, 3) were written with TRAIN_COUNTS in that order
    counts = train.class_counts().tolist()
    assert counts == [TRAIN_COUNTS[3], TRAIN_COUNTS[1], TRAIN_COUNTS[2], TRAIN_COUNTS[0]]
    assert test.class_counts().tolist() == [TEST_PER_CLASS] * 4


def test_inat_train_and_val_must_share_categories(tmp_path: Path) -> None:
    root = write_inat2018(tmp_path)
    meta = json.loads((root / "val2018.json").read_text())
    meta["categories"] = [*meta["categories"][:-1], {"id": 99, "name": "x"}]
    meta["annotations"] = [
        {**a, "category_id": 99 if a["category_id"] == 3 else a["category_id"]}
        for a in meta["annotations"]
    ]
    (root / "val2018.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="different categories"):
        load_dataset(DatasetConfig(name="inat2018", path=str(root)))


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"test_split": "train"}, "test_split"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": "big"}, "integer"),
        ({"num_workers": -1}, "num_workers"),
        ({"pin_memory": "yes"}, "true or false"),
        ({"backend": "opencv"}, "Unknown image backend"),
        ({"n_max": 3}, "Unknown dataset option"),
    ],
)
def test_bad_options(imagenet_tree: Path, options: dict, needle: str) -> None:
    cfg = DatasetConfig(name="imagenet_lt", path=str(imagenet_tree), options=options)
    with pytest.raises(ValueError, match=needle):
        load_dataset(cfg)


def test_inat_has_no_test_list(inat_tree: Path) -> None:
    cfg = DatasetConfig(name="inat2018", path=str(inat_tree), options={"test_split": "test"})
    with pytest.raises(ValueError, match=r"one of \('val',\)"):
        load_dataset(cfg)


def test_batch_transform_normalises_with_imagenet_stats(imagenet_tree: Path) -> None:
    from autobalance.augment import IMAGENET_MEAN, IMAGENET_STD

    cfg = load_config(
        preset="imagenet-lt",
        overrides=[*TINY, f"dataset.path={imagenet_tree}"],
    )
    exp = build_experiment(cfg)
    x = exp.train.fetch(torch.tensor([0, 1, 2]), train=False)[0]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = (x.float() / 255 - mean) / std
    # no random crop or flip on the batch: the dataset drew the crop already
    for t in (exp.transform, exp.eval_transform):
        assert torch.allclose(t(x, None), expected, atol=1e-6)
    model = exp.model_fn()
    assert model(expected).shape == (3, 4)


def test_augment_false_trains_on_centre_crops(imagenet_tree: Path) -> None:
    cfg = load_config(
        preset="imagenet-lt",
        overrides=[*TINY, f"dataset.path={imagenet_tree}", "augment=false"],
    )
    exp = build_experiment(cfg)
    assert isinstance(exp.train, StreamingDataset)
    assert exp.train.dataset is exp.train.eval_dataset
    a = exp.train.fetch(torch.tensor([3]), train=True)[0]
    b = exp.train.fetch(torch.tensor([3]), train=False)[0]
    assert torch.equal(a, b)


def test_paper_presets_follow_the_protocol() -> None:
    """ResNet-50, SGD, cosine from lr 0.05, batch 128; search 150 epochs with hyper-steps from
    epoch 40; retrain 90 epochs; clusters of 20 (ImageNet-LT) and 40 (iNaturalist); 80/20 split,
    balanced CE (AutoBalance §3, "Implementation")."""
    for name, cluster, test_split in (("imagenet-lt", 20, "test"), ("inat2018", 40, "val")):
        cfg = load_config(preset=name)
        s = cfg.search
        assert cfg.model.name == "resnet50"
        assert cfg.dataset.name == name.replace("-", "_")
        assert cfg.dataset.options["test_split"] == test_split
        assert cfg.dataset.options["image_size"] == 224
        for t, epochs in ((s.train, 150), (s.retrain_config(), 90)):
            assert (t.epochs, t.batch_size, t.lr, t.schedule, t.optimizer) == (
                epochs,
                128,
                0.05,
                "cosine",
                "sgd",
            )
        assert round(s.hyper_start * s.train.epochs) == 40
        assert s.retrain and s.val_fraction == 0.2 and s.objective == "balanced_ce"
        assert (s.space.kind, s.space.cluster_size, s.space.init) == ("clusters", cluster, "la")
        assert s.space.search == ("additive", "multiplicative")
        assert (s.alpha.optimizer, s.alpha.lr, s.alpha.schedule) == ("sgd", 0.05, "follow")
        assert "settings only" not in cfg.description and "150" in cfg.description
        space = s.space.build([1280 - k for k in range(1000)])
        assert space.num_clusters == math.ceil(1000 / cluster)


def test_backends(imagenet_tree: Path) -> None:
    paths = ["train/n01440764/n01440764_00000.JPEG"]
    pil = ImageListDataset(imagenet_tree, paths, [0], image_size=8, backend="pil")
    assert pil.backend == "pil" and pil[0][0].shape == (3, 8, 8)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert resolve_backend("auto") == "pil"
        with pytest.raises(ImportError, match="needs torchvision") as info:
            ImageListDataset(imagenet_tree, paths, [0], backend="torchvision")
        assert len(str(info.value).splitlines()) == 1 and "'pil'" in str(info.value)
    else:
        assert resolve_backend("auto") == "torchvision"
    with pytest.raises(ValueError, match="Unknown image backend"):
        resolve_backend("cv2")


def test_torchvision_backend_agrees_with_the_fallback(imagenet_tree: Path) -> None:
    """Where torchvision is installed: the same evaluation pixels as the Pillow fallback, and
    training crops of the same shape, type and seeded determinism."""
    if resolve_backend("auto") != "torchvision":
        pytest.skip("torchvision is not installed (the Pillow fallback is tested above)")
    train, _ = load_dataset(DatasetConfig(name="imagenet_lt", path=str(imagenet_tree)))
    tv = train.dataset
    assert isinstance(tv, ImageListDataset) and tv.backend == "torchvision"
    for size in (8, 16, 224):
        a, b = (
            ImageListDataset(imagenet_tree, tv.paths, tv.labels, image_size=size, backend=backend)
            for backend in ("torchvision", "pil")
        )
        for i in (0, 13, len(a) - 1):
            assert torch.equal(a[i][0], b[i][0]), (size, i)
    torch.manual_seed(3)
    first = tv[5][0]
    torch.manual_seed(3)
    assert torch.equal(first, tv[5][0])
    assert first.shape == (3, 224, 224) and first.dtype == torch.uint8
