"""Datasets: the in-memory container, long-tail construction, splits, counts and loaders."""

from autobalance.data.bundled import load_digits_lt
from autobalance.data.cifar import (
    download_cifar,
    load_cifar,
    load_cifar10_jpeg,
    load_cifar_lt,
    read_cifar_batch,
)
from autobalance.data.counts import class_counts, class_frequencies, group_counts
from autobalance.data.dataset import TensorDataset
from autobalance.data.imagenet_lt import ImageListDataset, load_imagenet_lt, read_image_list
from autobalance.data.inat import load_inat2018, read_inat_json
from autobalance.data.loader import TensorLoader, infinite
from autobalance.data.longtail import PROFILES, long_tail_counts, make_long_tailed
from autobalance.data.splits import stratified_split
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
    "ImageListDataset",
    "TabularEncoder",
    "TensorDataset",
    "TensorLoader",
    "class_counts",
    "class_frequencies",
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
    "read_waterbirds_metadata",
    "stratified_split",
    "waterbirds_like_features",
]
