"""Which dataset a learned loss belongs to: counts and a fingerprint saved with α.

AutoBalance learns α for one training distribution: its offsets and scales are functions of the
class (and (class, group)) frequencies π (Li et al. 2021, arXiv 2201.01212, §2–4). An α reused on
another dataset is a silent mistake, so ``alpha.json`` records (key ``data``)::

    dataset        the dataset's name
    num_samples    N
    class_counts   n_k, k < K
    group_counts   n_{k,g} as a (K, G) table, or null without groups
    labels_sha256  SHA-256 of the labels (and group ids) in order: the exact sample
    fingerprint    SHA-256 (16 hex digits) of (dataset, class_counts, group_counts)

Two datasets *match* when their fingerprints are equal: the same name and the same counts. The
labels' hash is recorded but not compared, because it changes with the long-tail subsampling
seed, and reusing α on another draw of the same dataset is what "train once, reuse the loss"
means. ``autobalance train --alpha`` refuses a mismatch unless ``--force``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

PROVENANCE_KEYS: tuple[str, ...] = (
    "dataset",
    "num_samples",
    "class_counts",
    "group_counts",
    "labels_sha256",
    "fingerprint",
)


class ProvenanceWarning(UserWarning):
    """A saved loss carries no record of the dataset it was learned on."""


class _Labelled(Protocol):
    """What :func:`fingerprint_of` reads from a dataset (the library's in-memory dataset)."""

    y: Tensor
    groups: Tensor | None
    num_classes: int
    num_groups: int
    name: str


def _ids(values: Any) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    return arr.astype(np.int64, copy=False).reshape(-1)


def data_fingerprint(
    y: Any,
    groups: Any = None,
    *,
    num_classes: int,
    num_groups: int = 1,
    name: str = "data",
) -> dict[str, Any]:
    """The provenance record of labels ``y`` (and ``groups``); keys as in the module docstring.

    Args:
        y: (N,) class indices in [0, K).
        groups: (N,) group ids in [0, G), or None.
        num_classes: K.
        num_groups: G (ignored without ``groups``).
        name: the dataset's name.
    """
    labels = _ids(y)
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    digest = hashlib.sha256(labels.tobytes())
    table: list[list[int]] | None = None
    if groups is not None:
        g = _ids(groups)
        cells = np.bincount(labels * num_groups + g, minlength=num_classes * num_groups)
        table = cells[: num_classes * num_groups].reshape(num_classes, num_groups).tolist()
        digest.update(g.tobytes())
    record: dict[str, Any] = {
        "dataset": str(name),
        "num_samples": int(labels.size),
        "class_counts": [int(c) for c in counts],
        "group_counts": table,
        "labels_sha256": digest.hexdigest(),
    }
    record["fingerprint"] = _fingerprint(record)
    return record


def _fingerprint(record: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex digits) of the dataset's name and its class and group counts."""
    key = [record.get("dataset"), record.get("class_counts"), record.get("group_counts")]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint_of(data: _Labelled) -> dict[str, Any]:
    """:func:`data_fingerprint` of a dataset with ``y``, ``groups``, ``num_classes``,
    ``num_groups`` and ``name`` (the library's in-memory dataset)."""
    return data_fingerprint(
        data.y,
        data.groups,
        num_classes=int(data.num_classes),
        num_groups=int(data.num_groups),
        name=str(data.name),
    )


def _counts_text(counts: Any) -> str:
    flat = torch.as_tensor(counts).reshape(-1).tolist() if counts is not None else []
    if len(flat) <= 4:
        return str(flat)
    return f"[{flat[0]}, {flat[1]}, …, {flat[-1]}] ({len(flat)} entries)"


def _describe(record: Mapping[str, Any]) -> str:
    text = f"'{record.get('dataset')}' ({record.get('num_samples')} samples"
    text += f", class counts {_counts_text(record.get('class_counts'))}"
    if record.get("group_counts") is not None:
        text += f", (class, group) counts {_counts_text(record.get('group_counts'))}"
    return text + ")"


def provenance_mismatch(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """None when ``saved`` and ``current`` describe the same dataset (the same name and
    counts, i.e. equal fingerprints, recomputed from the records), else one line saying how they
    differ."""
    if _fingerprint(saved) == _fingerprint(current):
        return None
    return f"α was learned on {_describe(saved)}, not on this dataset {_describe(current)}"


__all__ = [
    "PROVENANCE_KEYS",
    "ProvenanceWarning",
    "data_fingerprint",
    "fingerprint_of",
    "provenance_mismatch",
]
