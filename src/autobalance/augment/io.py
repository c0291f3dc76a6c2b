"""Saving, reloading and recording learned augmentation policies.

A search with a policy writes it next to α*: ``augment_policy.json`` (:func:`save_policy`),
referenced from ``alpha.json`` by the key ``"augment_policy"`` (a path relative to the
``alpha.json`` folder), so ``autobalance train --alpha alpha.json`` finds and reuses it
(:func:`load_alpha_policy`). The raw parameters are stored as float64 lists of float32 values,
so a reload is exact. ``augment_trajectory.csv`` holds the policy over the epochs: one row per
(epoch, phase, cluster, operation) with the probability and the magnitude (fraction of the
operation's maximum; the radius ε for the spherical policy).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from autobalance.augment.policy import POLICY_FORMAT, BatchPolicy, ImagePolicy
from autobalance.augment.spherical import SphericalPolicy
from autobalance.csvio import read_typed_csv

POLICY_FILE = "augment_policy.json"
POLICY_TRAJECTORY = "augment_trajectory.csv"
ALPHA_KEY = "augment_policy"
TRAJECTORY_KEY = "augment"
# the columns of augment_trajectory.csv, in order, each with its parser
_POLICY_TYPES: dict[str, Any] = {
    "epoch": int,
    "phase": str,
    "cluster": int,
    "op": str,
    "prob": float,
    "magnitude": float,
}
POLICY_COLUMNS = tuple(_POLICY_TYPES)


def policy_from_dict(data: dict[str, Any]) -> BatchPolicy:
    """Rebuild a policy from :meth:`BatchPolicy.to_dict` output."""
    if not isinstance(data, dict) or data.get("format") != POLICY_FORMAT:
        raise ValueError(f"not an augmentation policy (expected format {POLICY_FORMAT!r})")
    if data.get("kind") == "spherical":
        return SphericalPolicy.from_dict(data)
    return ImagePolicy.from_dict(data)


def save_policy(policy: BatchPolicy, path: str | PathLike[str]) -> Path:
    """Write ``policy.to_dict()`` as JSON, atomically (temp file, fsync, rename)."""
    from autobalance.checkpoint import atomic_write_text

    return atomic_write_text(json.dumps(policy.to_dict(), indent=2), path)


def load_policy(path: str | PathLike[str]) -> BatchPolicy:
    """The policy saved at ``path`` by :func:`save_policy`, frozen (no gradients)."""
    with open(path, encoding="utf-8") as fh:
        policy = policy_from_dict(json.load(fh))
    policy.requires_grad_(False)
    return policy


def link_policy(alpha_path: str | PathLike[str], policy_file: str = POLICY_FILE) -> Path:
    """Add ``"augment_policy": policy_file`` (relative to its folder) to an ``alpha.json``,
    atomically: the learned loss then names its policy, and ``train --alpha`` reuses both."""
    from autobalance.checkpoint import atomic_write_text

    alpha_path = Path(alpha_path)
    with open(alpha_path, encoding="utf-8") as fh:
        data = json.load(fh)
    data[ALPHA_KEY] = str(policy_file)
    return atomic_write_text(json.dumps(data, indent=2), alpha_path)


def load_alpha_policy(alpha_path: str | PathLike[str]) -> BatchPolicy | None:
    """The policy an ``alpha.json`` refers to (key ``"augment_policy"``), or None."""
    alpha_path = Path(alpha_path)
    with open(alpha_path, encoding="utf-8") as fh:
        ref = json.load(fh).get(ALPHA_KEY)
    if not ref:
        return None
    target = Path(ref) if Path(ref).is_absolute() else alpha_path.parent / ref
    if not target.is_file():
        raise FileNotFoundError(f"{alpha_path} refers to the augmentation policy {target}, missing")
    return load_policy(target)


def policy_trajectory_csv(trajectory: Sequence[dict[str, Any]], policy: BatchPolicy) -> str:
    """CSV text of the policy entries (key ``"augment"``) of a search trajectory."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(POLICY_COLUMNS)
    for rec in trajectory:
        values = rec.get(TRAJECTORY_KEY)
        if not values:
            continue
        if "radius" in values:
            for c, eps in enumerate(values["radius"]):
                writer.writerow([rec["epoch"], rec["phase"], c, "sphere", "", f"{eps:.8g}"])
            continue
        assert isinstance(policy, ImagePolicy)
        for c, probs in enumerate(values["prob"]):
            mags = values["magnitude"][c]
            for j, op in enumerate(policy.ops):
                k = policy.magnitude_ops.index(op) if op in policy.magnitude_ops else None
                mag = "" if k is None else f"{mags[k]:.8g}"
                writer.writerow([rec["epoch"], rec["phase"], c, op, f"{probs[j]:.8g}", mag])
    return buf.getvalue()


def write_policy_files(
    folder: str | PathLike[str], policy: BatchPolicy, trajectory: Sequence[dict[str, Any]]
) -> tuple[Path, Path]:
    """``augment_policy.json`` and ``augment_trajectory.csv`` in ``folder``."""
    from autobalance.checkpoint import atomic_write_text

    folder = Path(folder)
    json_path = save_policy(policy, folder / POLICY_FILE)
    csv_path = atomic_write_text(
        policy_trajectory_csv(trajectory, policy), folder / POLICY_TRAJECTORY
    )
    return json_path, csv_path


def read_policy_trajectory(path: str | PathLike[str]) -> list[dict[str, Any]]:
    """Rows of ``augment_trajectory.csv`` (a file or its run folder) with numbers parsed
    (``prob``/``magnitude`` None when empty); [] when there is none."""
    p = Path(path)
    if p.is_dir():
        p = p / POLICY_TRAJECTORY
    return read_typed_csv(p, _POLICY_TYPES)


__all__ = [
    "ALPHA_KEY",
    "POLICY_COLUMNS",
    "POLICY_FILE",
    "POLICY_TRAJECTORY",
    "TRAJECTORY_KEY",
    "link_policy",
    "load_alpha_policy",
    "load_policy",
    "policy_from_dict",
    "policy_trajectory_csv",
    "read_policy_trajectory",
    "save_policy",
    "write_policy_files",
]
