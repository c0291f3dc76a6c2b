"""One experiment from one config: dataset, model, augmentation and the search settings.

:class:`ExperimentConfig` is what a YAML preset (``autobalance presets``) or a ``--config`` file
holds. It nests the engine's :class:`~autobalance.config.SearchConfig` unchanged under ``search``
and adds what the engine leaves to its caller: which dataset (:class:`DatasetConfig`), which
model (:class:`ModelConfig`) and which baselines to compare against.
:func:`build_experiment` turns it into data, a model factory and batch transforms.

Data paths: ``dataset.path`` names the dataset's file or folder; otherwise it is looked up under
``dataset.data_dir``, which defaults to ``$AUTOBALANCE_DATA`` or, when that is unset, the user
cache directory's ``autobalance/data`` (``~/.cache/autobalance/data`` on Linux;
:func:`default_data_dir`).

ImageNet-LT and iNaturalist 2018 (:data:`STREAMING_DATASETS`) are too large for memory: they load
as :class:`~autobalance.data.streaming.StreamingDataset` views of image lists, whose JPEGs are
decoded by ``DataLoader`` workers (:func:`load_dataset`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from autobalance.config import SearchConfig, from_dict, to_dict
from autobalance.data.adapters import LabelledData
from autobalance.data.streaming import StreamingDataset
from autobalance.losses import LOSS_ALIASES, LOSS_NAMES, is_loss_label
from autobalance.models import MODEL_NAMES, make_model
from autobalance.train import Transform, identity_transform

DATASETS: tuple[str, ...] = (
    "digits_lt",
    "gaussians_lt",
    "waterbirds_like",
    "cifar10_lt",
    "cifar10_jpeg_lt",
    "cifar100_lt",
    "adult",
    "compas",
    "celeba",
    "waterbirds_features",
    "imagenet_lt",
    "inat2018",
    "csv",
)
# Datasets with a sensitive attribute (``groups``): the (class, group) setting of §4.
GROUP_DATASETS: tuple[str, ...] = (
    "waterbirds_like",
    "adult",
    "compas",
    "celeba",
    "waterbirds_features",
)
# Datasets too large for memory: StreamingDatasets whose images are read from disk per batch.
STREAMING_DATASETS: tuple[str, ...] = ("imagenet_lt", "inat2018")
IMAGE_DATASETS: tuple[str, ...] = ("cifar10_lt", "cifar10_jpeg_lt", "cifar100_lt")
DATA_ENV = "AUTOBALANCE_DATA"


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, got {value!r}")
    return dict(value)


@dataclass
class DatasetConfig:
    """Which dataset, where it lives, and the loader's options.

    ``imbalance_ratio`` ρ applies to the long-tailed datasets (``n_i = n_max · ρ^(−i/(K−1))``,
    Cao et al. 2019); ``None`` keeps the loader's default. ``seed`` defaults to ``search.seed``.
    ``options`` are extra keywords of the loader (validated by name, see :func:`dataset_options`).
    """

    name: str = "digits_lt"
    data_dir: str | None = None
    path: str | None = None
    imbalance_ratio: float | None = None
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise ValueError(f"Unknown dataset '{self.name}', expected one of {DATASETS}")
        if self.imbalance_ratio is not None and self.imbalance_ratio < 1:
            raise ValueError(f"dataset.imbalance_ratio must be ≥ 1, got {self.imbalance_ratio}")
        self.options = _mapping(self.options, "dataset.options")


@dataclass
class ModelConfig:
    """``models.make_model(name, num_classes, in_shape, ...)`` settings.

    ``hidden``: MLP hidden sizes; ``width``: CIFAR-ResNet base width; ``options``: any other
    keyword of the model.
    """

    name: str = "mlp"
    hidden: tuple[int, ...] | None = None
    width: int | None = None
    channels_last: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ValueError(f"Unknown model '{self.name}', expected one of {MODEL_NAMES}")
        self.options = _mapping(self.options, "model.options")


ERROR_WEIGHTS: tuple[str, ...] = ("train", "test")


@dataclass
class ExperimentConfig:
    """Everything one ``autobalance`` command needs (a preset file is one of these).

    Args:
        name: short label of the experiment (run-directory prefix).
        description: one line shown by ``autobalance presets``.
        dataset, model: see :class:`DatasetConfig`, :class:`ModelConfig`.
        search: the engine's :class:`~autobalance.config.SearchConfig` (Algorithm 1 of
            AutoBalance, Li et al. 2021, arXiv 2201.01212), used as is; its ``train`` section is
            also the schedule of the baselines, its ``seed`` and ``device`` theirs.
        baselines: losses (``losses.LOSS_NAMES``) trained by ``demo`` / ``train``.
        loss_options: per-loss keywords for ``make_loss``, e.g. ``{"ldam_drw": {"drw_epoch": 22}}``.
        augment: random crop + flip on image datasets; ``None`` means on for images, off for
            features.
        eval_train: also evaluate the training set after each epoch of ``train`` (for the
            train/test error curves; costs one pass over the data per epoch).
        error_weights: how the standard error ``error`` of a grouped test set is weighted.
            ``train`` (the paper's §4 definition): ``E(f) = Σ_{y,g} π_{y,g} E_{y,g}(f)`` with
            π the (class, group) proportions of the training set, so that a test set balanced
            over cells still measures the error on the training distribution; ``test``: the
            plain error rate of the test set. Either way ``empirical_error`` is the plain rate.
            Class-only datasets always use the plain rate.
    """

    name: str = "experiment"
    description: str = ""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    baselines: tuple[str, ...] = ("ce", "la")
    loss_options: dict[str, Any] = field(default_factory=dict)
    augment: bool | None = None
    eval_train: bool = False
    error_weights: str = "train"

    def __post_init__(self) -> None:
        if self.error_weights not in ERROR_WEIGHTS:
            raise ValueError(
                f"error_weights must be one of {ERROR_WEIGHTS}, got {self.error_weights!r}"
            )
        valid = (*LOSS_NAMES, *LOSS_ALIASES)
        self.baselines = tuple(self.baselines)
        for b in (*self.baselines, *self.loss_options):
            if not is_loss_label(b):
                raise ValueError(
                    f"Unknown loss '{b}', expected one of {valid} or a blend REG@LAM "
                    "(e.g. ce_deo@0.9 for 0.1·CE + 0.9·CE_deo)"
                )
        self.loss_options = _mapping(self.loss_options, "loss_options")
        for name, opts in self.loss_options.items():
            _mapping(opts, f"loss_options.{name}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Strict parse: an unknown key raises ``ValueError`` naming the valid keys."""
        if not isinstance(data, dict):
            raise ValueError(f"a config must be a mapping, got {type(data).__name__}")
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready); ``from_dict(to_dict())`` round-trips."""
        return to_dict(self)


class Experiment(NamedTuple):
    """What :func:`build_experiment` returns (a tuple, so it also unpacks)."""

    train: LabelledData
    test: LabelledData
    model_fn: Callable[[], nn.Module]
    transform: Transform
    eval_transform: Transform


def default_data_dir() -> Path:
    """``$AUTOBALANCE_DATA`` if set, else ``data`` in the user cache directory
    (:func:`autobalance.data.cifar.default_cache_dir`: ``~/.cache/autobalance/data`` on Linux,
    ``~/Library/Caches/autobalance/data`` on macOS, ``%LOCALAPPDATA%\\autobalance\\data`` on
    Windows). Never a path relative to the working directory."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    from autobalance.data.cifar import default_cache_dir

    return default_cache_dir() / "data"


def _data_dir(cfg: DatasetConfig) -> Path:
    return Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()


def _located(cfg: DatasetConfig, *default: str) -> Path:
    """``dataset.path``, else ``data_dir/<default...>``; a clear error when it does not exist."""
    p = Path(cfg.path).expanduser() if cfg.path else _data_dir(cfg).joinpath(*default)
    if not p.exists():
        where = "dataset.path" if cfg.path else f"data_dir ({_data_dir(cfg)})"
        raise FileNotFoundError(
            f"dataset '{cfg.name}': {p} not found (from {where}); set dataset.path or "
            f"dataset.data_dir, e.g. --set dataset.data_dir=/data, or ${DATA_ENV}"
        )
    return p


def _load_csv(cfg: DatasetConfig, seed: int) -> tuple[Any, Any]:
    """Your own CSV file (:func:`autobalance.data.csvfile.load_csv`): ``dataset.path`` is the
    file, ``dataset.options.label`` its label column (the other options are optional)."""
    from autobalance.data.csvfile import load_csv

    if not cfg.path or "label" not in cfg.options:
        raise ValueError(
            "dataset 'csv' needs dataset.path=FILE.csv and dataset.options.label=COLUMN "
            "(e.g. --set dataset.name=csv dataset.path=my.csv dataset.options.label=target)"
        )
    return load_csv(_located(cfg), seed=seed, **cfg.options)


def _jpeg_npz(cfg: DatasetConfig) -> Path:
    if cfg.path:
        return _located(cfg)
    folder = _located(cfg, "cifar10_jpeg_lossy")
    if folder.is_file():
        return folder
    found = sorted(folder.glob("*.npz"))
    if not found:
        raise FileNotFoundError(f"dataset '{cfg.name}': no .npz file in {folder}")
    return found[0]


# name → (accepted loader options, does it take imbalance_ratio)
_OPTIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    # your own table (autobalance.data.csvfile): dataset.path=FILE.csv, options.label=COLUMN
    "csv": (("label", "group", "test_path", "test_fraction", "categorical", "drop"), False),
    "digits_lt": (("test_per_class", "as_images", "standardize"), True),
    "gaussians_lt": (
        ("num_classes", "dim", "n_max", "separation", "n_test_per_class", "profile"),
        True,
    ),
    "waterbirds_like": (
        (
            "n",
            "dim",
            "n_test_per_cell",
            "proportions",
            "core_dim",
            "core_strength",
            "spurious_dim",
            "spurious_strength",
        ),
        False,
    ),
    "cifar10_lt": (("cache_dir", "verify", "n_max"), True),
    "cifar10_jpeg_lt": (("cache_dir", "n_max"), True),
    "cifar100_lt": (("cache_dir", "verify", "n_max"), True),
    "adult": (("group_as_feature",), False),
    "compas": (("races", "test_fraction", "group_as_feature"), False),
    "celeba": (("target", "group", "group_as_feature"), False),
    "waterbirds_features": (("features",), False),
    "imagenet_lt": (
        ("image_size", "list_dir", "num_workers", "pin_memory", "test_split", "backend"),
        False,
    ),
    "inat2018": (
        ("image_size", "ann_dir", "num_workers", "pin_memory", "test_split", "backend"),
        False,
    ),
}
# streamed dataset → (default folder under data_dir, test splits (the first is the default))
_STREAM_SPLITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "imagenet_lt": ("imagenet_lt", ("test", "val")),
    "inat2018": ("inat2018", ("val",)),
}


def dataset_options(name: str) -> tuple[str, ...]:
    """The ``dataset.options`` keys accepted for dataset ``name``."""
    if name not in _OPTIONS:
        raise ValueError(f"Unknown dataset '{name}', expected one of {DATASETS}")
    return _OPTIONS[name][0]


def load_dataset(cfg: DatasetConfig, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """(train, test) of ``cfg`` with ``cfg.seed`` (or ``seed``) for the long-tail subsampling.

    Datasets with an official validation split (CelebA, Waterbirds) return (train, test): the
    search draws its own validation set from train (Algorithm 1, line 1). ImageNet-LT and
    iNaturalist 2018 return :class:`~autobalance.data.streaming.StreamingDataset` views
    (:func:`load_streaming`).
    """
    from autobalance import data as D

    accepted, has_rho = _OPTIONS[cfg.name]
    unknown = sorted(set(cfg.options) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown dataset option(s) {unknown} for '{cfg.name}', expected a subset of {accepted}"
        )
    if cfg.imbalance_ratio is not None and not has_rho:
        raise ValueError(f"dataset '{cfg.name}' has no imbalance_ratio (it is not long-tailed)")
    if cfg.name in STREAMING_DATASETS:
        return load_streaming(cfg)
    s = seed if cfg.seed is None else cfg.seed
    o = dict(cfg.options)
    rho: dict[str, Any] = (
        {} if cfg.imbalance_ratio is None else {"imbalance_ratio": cfg.imbalance_ratio}
    )
    name = cfg.name
    if name == "csv":
        return _load_csv(cfg, s)
    if name == "digits_lt":
        return D.load_digits_lt(seed=s, **rho, **o)
    if name == "gaussians_lt":
        train = D.long_tailed_gaussians(seed=s, split="train", **rho, **o)
        return train, D.long_tailed_gaussians(seed=s, split="test", **rho, **o)
    if name == "waterbirds_like":
        train = D.waterbirds_like_features(seed=s, split="train", **o)
        return train, D.waterbirds_like_features(seed=s, split="test", **o)
    if name in ("cifar10_lt", "cifar100_lt"):
        kind = "cifar10" if name == "cifar10_lt" else "cifar100"
        return D.load_cifar_lt(_located(cfg), kind, seed=s, **rho, **o)
    if name == "cifar10_jpeg_lt":
        return D.load_cifar_lt(_jpeg_npz(cfg), "cifar10", seed=s, **rho, **o)
    if name == "adult":
        return D.load_adult(_located(cfg, "adult"), **o)
    if name == "compas":
        return D.load_compas(_located(cfg, "compas"), seed=s, **o)
    if name == "celeba":
        train, _, test = D.load_celeba_attributes(_located(cfg, "celeba"), **o)
        return train, test
    # waterbirds_features
    meta = _located(cfg, "waterbirds", "metadata.csv")
    feats = o.get("features") or str(_data_dir(cfg) / "waterbirds" / "features.npy")
    if not Path(feats).expanduser().is_file():
        raise FileNotFoundError(
            f"dataset 'waterbirds_features': feature file {feats} not found; set "
            "dataset.options.features to a (N, D) .npy or .pt aligned with metadata.csv"
        )
    train, _, test = D.load_waterbirds_features(meta, Path(feats).expanduser())
    return train, test


def _option(cfg: DatasetConfig, key: str, default: Any, kind: type) -> Any:
    """``cfg.options[key]`` checked to be a ``kind`` (``default`` when absent)."""
    value = cfg.options.get(key, default)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"dataset.options.{key} must be an integer, got {value!r}")
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"dataset.options.{key} must be true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ValueError(f"dataset.options.{key} must be a string, got {value!r}")
    return value


def _first_image(name: str, data: Any, source: Path, root: Path) -> None:
    """A clear error now, not in a ``DataLoader`` worker later, when ``source`` lists no image
    or its first image is not under ``root``."""
    if len(data) == 0:
        raise ValueError(f"dataset '{name}': {source} lists no images")
    first = root / data.paths[0]
    if not first.is_file():
        raise FileNotFoundError(
            f"dataset '{name}': image {first} not found (the first entry of {source}, relative "
            f"to the image root {root}); set dataset.path to the folder the listed paths are "
            "relative to"
        )


def load_streaming(cfg: DatasetConfig) -> tuple[StreamingDataset, StreamingDataset]:
    """(train, test) of ImageNet-LT or iNaturalist 2018 as streamed image datasets.

    The image root is ``dataset.path``, else ``<data_dir>/imagenet_lt`` or
    ``<data_dir>/inat2018``; the list files (``ImageNet_LT_{train,test,val}.txt``, option
    ``list_dir``) or the annotations (``train2018.json``, ``val2018.json``, option ``ann_dir``)
    default to the same folder. train: the ``train`` list with the random training crop, with
    the same list under the evaluation transform as its ``eval_dataset`` (the search's S_V
    batches and every evaluation see centre crops); test: the paper's test split, ImageNet-LT
    ``test`` (``test_split: val`` for the validation list), iNaturalist ``val``. Both are uint8
    (3, S, S) crops, S = ``image_size`` (224); :func:`build_transforms` normalises the batches.
    K: the classes of both lists (ImageNet-LT: max label + 1; iNaturalist: the categories of
    the json, which must be the same in both files). ``num_workers``, ``pin_memory``: the
    ``DataLoader`` settings (memory is pinned only where CUDA is available); ``backend``:
    ``auto`` | ``torchvision`` | ``pil`` (:mod:`autobalance.data.imagenet_lt`).
    """
    from autobalance.data.imagenet_lt import load_imagenet_lt
    from autobalance.data.inat import load_inat2018

    folder, test_splits = _STREAM_SPLITS[cfg.name]
    image_size = _option(cfg, "image_size", 224, int)
    workers = _option(cfg, "num_workers", 0, int)
    pin = _option(cfg, "pin_memory", False, bool) and torch.cuda.is_available()
    backend = _option(cfg, "backend", "auto", str)
    split = _option(cfg, "test_split", test_splits[0], str)
    if image_size < 1 or workers < 0:
        raise ValueError(
            f"dataset.options: image_size must be ≥ 1 and num_workers ≥ 0, got {image_size} "
            f"and {workers}"
        )
    if split not in test_splits:
        raise ValueError(
            f"dataset.options.test_split for '{cfg.name}' must be one of {test_splits}, "
            f"got {split!r}"
        )
    root = _located(cfg, folder)
    if not root.is_dir():
        raise NotADirectoryError(f"dataset '{cfg.name}': the image root {root} is not a folder")
    key = "list_dir" if cfg.name == "imagenet_lt" else "ann_dir"
    meta = Path(_option(cfg, key, str(root), str)).expanduser()
    if cfg.name == "imagenet_lt":
        files = [meta / f"ImageNet_LT_{s}.txt" for s in ("train", split)]
    else:
        files = [meta / f"{s}2018.json" for s in ("train", split)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        where = f"dataset.options.{key}" if key in cfg.options else f"the image root: no {key}"
        raise FileNotFoundError(
            f"dataset '{cfg.name}': {' and '.join(missing)} not found (from {where}); set "
            f"dataset.options.{key} to the folder that holds {' and '.join(f.name for f in files)}"
        )
    opts: dict[str, Any] = {"image_size": image_size, "backend": backend}
    if cfg.name == "imagenet_lt":
        train = load_imagenet_lt(root, "train", meta, num_classes=None, **opts)
        test = load_imagenet_lt(root, split, meta, num_classes=None, **opts)
    else:
        train = load_inat2018(root, "train", meta, **opts)
        test = load_inat2018(root, split, meta, **opts)
        if train.class_ids != test.class_ids:
            raise ValueError(
                f"dataset 'inat2018': {files[0]} and {files[1]} list different categories "
                f"({train.num_classes} and {test.num_classes}); the labels would not match"
            )
    for data, source in zip((train, test), files):
        _first_image(cfg.name, data, source, root)
    k = max(train.num_classes, test.num_classes)
    train.num_classes = test.num_classes = k
    stream: dict[str, Any] = {"num_classes": k, "num_workers": workers, "pin_memory": pin}
    return (
        StreamingDataset(
            train,
            labels=train.labels,
            eval_dataset=train.with_transform(False),
            name=train.name,
            **stream,
        ),
        StreamingDataset(test, labels=test.labels, name=test.name, **stream),
    )


def _norm_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from autobalance.augment import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD

    if name == "cifar100_lt":
        return CIFAR100_MEAN, CIFAR100_STD
    return CIFAR10_MEAN, CIFAR10_STD


def build_transforms(cfg: ExperimentConfig, seed: int) -> tuple[Transform, Transform]:
    """(train, eval) batch transforms: CIFAR crop + flip + normalise for image datasets
    (He et al. 2016 §4.2), the identity for feature datasets.

    ImageNet-LT / iNaturalist: their datasets already yield the (random or centre) crops as
    uint8, so both transforms only normalise, ``(x/255 − μ_c)/σ_c`` with the ImageNet mean and
    std (the CIFAR transform with augmentation off)."""
    cl = cfg.model.channels_last
    if cfg.dataset.name in STREAMING_DATASETS:
        from autobalance.augment import IMAGENET_MEAN, IMAGENET_STD, make_image_transform

        return (
            make_image_transform(False, IMAGENET_MEAN, IMAGENET_STD, seed=seed, channels_last=cl),
            make_image_transform(False, IMAGENET_MEAN, IMAGENET_STD, seed=seed, channels_last=cl),
        )
    if cfg.dataset.name not in IMAGE_DATASETS:
        if cfg.augment:
            raise ValueError(
                f"augment=true needs an image dataset {IMAGE_DATASETS}, got '{cfg.dataset.name}'"
            )
        return identity_transform, identity_transform
    from autobalance.augment import make_image_transform

    mean, std = _norm_stats(cfg.dataset.name)
    augment = True if cfg.augment is None else cfg.augment
    train_t = make_image_transform(augment, mean, std, seed=seed, channels_last=cl)
    eval_t = make_image_transform(False, mean, std, seed=seed, channels_last=cl)
    return train_t, eval_t


def input_shape(data: LabelledData) -> tuple[int, ...]:
    """The shape of one input of ``data``: ``x.shape[1:]``, or, for a streamed dataset, that of
    its first item under the evaluation transform (one image is loaded)."""
    if isinstance(data, StreamingDataset):
        if len(data) == 0:
            raise ValueError(f"{data.name}: no items, so no input shape")
        return tuple(int(d) for d in data.fetch(torch.tensor([0]), train=False)[0].shape[1:])
    return tuple(int(d) for d in data.x.shape[1:])


def model_factory(cfg: ModelConfig, train: LabelledData) -> Callable[[], nn.Module]:
    """A zero-argument builder of a fresh model for ``train``'s input shape and classes."""
    opts = dict(cfg.options)
    if cfg.hidden is not None:
        opts["hidden"] = tuple(cfg.hidden)
    if cfg.width is not None:
        opts["width"] = cfg.width
    in_shape = input_shape(train)
    num_classes = train.num_classes
    # fail now, not inside the search: build once (the result is discarded)
    make_model(cfg.name, num_classes, in_shape=in_shape, channels_last=cfg.channels_last, **opts)

    def model_fn() -> nn.Module:
        return make_model(
            cfg.name, num_classes, in_shape=in_shape, channels_last=cfg.channels_last, **opts
        )

    return model_fn


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; other names pass through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def with_error_weights(train: LabelledData, test: LabelledData, mode: str) -> LabelledData:
    """``test`` with the weights of its standard error set as ``mode`` says
    (:attr:`ExperimentConfig.error_weights`): ``train`` puts the training (class, group)
    proportions π_{y,g} on a grouped test set (AutoBalance §4, ``E(f) = Σ π_{y,g} E_{y,g}``);
    ``test`` (or class-only data) leaves the plain error rate."""
    if mode not in ERROR_WEIGHTS:
        raise ValueError(f"error_weights must be one of {ERROR_WEIGHTS}, got {mode!r}")
    if mode == "test" or train.groups is None or test.groups is None:
        return test
    counts = loss_counts(train)["group_counts"].to(torch.float64)
    if isinstance(test, StreamingDataset):
        out = test.subset(torch.arange(len(test)))
        out.error_weights = counts / counts.sum()
        return out
    return dataclasses.replace(test, error_weights=counts / counts.sum())


def experiment_from_data(
    cfg: ExperimentConfig, train: LabelledData, test: LabelledData
) -> Experiment:
    """The :class:`Experiment` of ``cfg`` on loaded data: fresh transforms (seeded by
    ``search.seed``) and model factory, and the test set's error weights. ``augment: false``
    on a streamed image dataset trains on its evaluation crops (no random crop or flip)."""
    transform, eval_transform = build_transforms(cfg, cfg.search.seed)
    if cfg.augment is False and isinstance(train, StreamingDataset):
        train = train.subset(torch.arange(len(train)))
        train.dataset = train.eval_dataset
    try:
        model_fn = model_factory(cfg.model, train)
    except TypeError as exc:  # an unknown model option
        raise ValueError(f"model '{cfg.model.name}': {exc}") from None
    test = with_error_weights(train, test, cfg.error_weights)
    return Experiment(train, test, model_fn, transform, eval_transform)


def build_experiment(cfg: ExperimentConfig) -> Experiment:
    """(train, test, model_fn, transform, eval_transform) for ``cfg``."""
    train, test = load_dataset(cfg.dataset, cfg.search.seed)
    return experiment_from_data(cfg, train, test)


def baseline_loss(cfg: ExperimentConfig, train: LabelledData, label: str) -> nn.Module:
    """The fixed training loss ``label`` (a loss name or a blend ``REG@LAM``) built from the
    training counts and ``cfg.loss_options`` (a blend takes ``loss_options[label]`` if given,
    else those of ``REG``)."""
    from autobalance.losses import make_loss, parse_blend

    opts = cfg.loss_options.get(label)
    if opts is None:
        blended = parse_blend(label)
        opts = cfg.loss_options.get(blended[0], {}) if blended else {}
    return make_loss(label, **loss_counts(train), **opts)


def loss_counts(train: LabelledData) -> dict[str, Any]:
    """``make_loss`` keywords with the training counts: class counts (K,), group counts (K, G)."""
    if train.groups is None:
        return {"class_counts": train.class_counts()}
    from autobalance.data.counts import group_counts

    table = group_counts(
        train.y.numpy(),
        train.groups.numpy(),
        num_classes=train.num_classes,
        num_groups=train.num_groups,
    )
    return {"group_counts": torch.as_tensor(table)}


__all__ = [
    "DATASETS",
    "DATA_ENV",
    "IMAGE_DATASETS",
    "STREAMING_DATASETS",
    "DatasetConfig",
    "Experiment",
    "ExperimentConfig",
    "ModelConfig",
    "build_experiment",
    "build_transforms",
    "dataset_options",
    "default_data_dir",
    "input_shape",
    "load_dataset",
    "load_streaming",
    "loss_counts",
    "model_factory",
    "resolve_device",
]
