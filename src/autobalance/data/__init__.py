"""Datasets: the in-memory container, long-tail construction, splits, counts and loaders."""

from autobalance.data.adapters import LabelledData, as_dataset
from autobalance.data.bundled import load_digits_lt
from autobalance.data.cifar import (
    download_cifar,
    load_cifar,
    load_cifar10_jpeg,
    load_cifar_lt,
    read_cifar_batch,
)
from autobalance.data.counts import class_counts, class_frequencies, group_counts
from autobalance.data.dataset import InMemoryDataset
from autobalance.data.imagenet_lt import ImageListDataset, load_imagenet_lt, read_image_list
from autobalance.data.inat import load_inat2018, read_inat_json
from autobalance.data.loader import TensorLoader, infinite
from autobalance.data.longtail import PROFILES, long_tail_counts, make_long_tailed
from autobalance.data.samplers import ClassBalancedSampler, class_index
from autobalance.data.splits import stratified_split
from autobalance.data.streaming import StreamingDataset, StreamLoader, read_labels
from autobalance.data.synthetic import (
    SPLITS,
    WATERBIRDS_PROPORTIONS,
    long_tailed_gaussians,
    waterbirds_like_features,
)
from autobalance.data.tabular import (
    TabularEncoder,
    load_adult,
    load_celeba_attributes,
    load_compas,
)
from autobalance.data.waterbirds import (
    load_waterbirds_features,
    load_waterbirds_images,
    read_waterbirds_metadata,
)

__all__ = [
    "PROFILES",
    "SPLITS",
    "WATERBIRDS_PROPORTIONS",
    "ClassBalancedSampler",
    "ImageListDataset",
    "InMemoryDataset",
    "LabelledData",
    "StreamLoader",
    "StreamingDataset",
    "TabularEncoder",
    "TensorLoader",
    "as_dataset",
    "class_counts",
    "class_frequencies",
    "class_index",
    "download_cifar",
    "group_counts",
    "infinite",
    "load_adult",
    "load_celeba_attributes",
    "load_cifar",
    "load_cifar10_jpeg",
    "load_cifar_lt",
    "load_compas",
    "load_digits_lt",
    "load_imagenet_lt",
    "load_inat2018",
    "load_waterbirds_features",
    "load_waterbirds_images",
    "long_tail_counts",
    "long_tailed_gaussians",
    "make_long_tailed",
    "read_cifar_batch",
    "read_image_list",
    "read_inat_json",
    "read_labels",
    "read_waterbirds_metadata",
    "stratified_split",
    "waterbirds_like_features",
]


def __getattr__(name: str) -> object:
    if name == "TensorDataset":  # the pre-0.2 name, with its DeprecationWarning
        from autobalance.data import dataset

        return dataset.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
