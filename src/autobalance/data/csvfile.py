"""Your own table: a CSV file with a header row, one column of class labels (and optionally one
of group labels), every other column a feature.

Numeric columns are standardised and the others one-hot encoded, both fitted on the training
rows only (:class:`~autobalance.data.tabular.TabularEncoder`). Labels may be any strings or
numbers; classes are numbered in sorted order (numerically when every label is a number), and
their names are kept. Without ``test_path`` a seeded split, stratified by class (and group),
holds out ``test_fraction`` of the rows for testing. Empty cells are refused: impute them first.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autobalance.data import dataset as _dataset
from autobalance.data.tabular import TabularEncoder, _stratified_split

Table = dict[str, np.ndarray]


def in_memory_dataset(**fields: Any) -> Any:
    """The library's in-memory dataset of ``fields`` (x, y, num_classes, groups, ...):
    ``InMemoryDataset``, called ``TensorDataset`` before 0.2 (either name works here)."""
    cls: Any = getattr(_dataset, "InMemoryDataset", None) or _dataset.TensorDataset
    return cls(**fields)


def read_csv_table(path: str | os.PathLike[str]) -> Table:
    """The columns of a CSV file with a header row, as arrays of stripped strings."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path}: empty file; expected a header row of column names")
        names = [h.strip() for h in header]
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: repeated column names in the header {names}")
        rows = []
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(names):
                raise ValueError(
                    f"{path}:{lineno}: {len(row)} fields, but the header has {len(names)}"
                )
            rows.append([v.strip() for v in row])
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    cells = np.asarray(rows, dtype=str)
    return {name: cells[:, j] for j, name in enumerate(names)}


def _is_numeric(values: np.ndarray) -> bool:
    try:
        values.astype(np.float64)
    except ValueError:
        return False
    return True


def _label_names(values: np.ndarray) -> list[str]:
    names = np.unique(values)
    if _is_numeric(names):
        names = names[np.argsort(names.astype(np.float64), kind="stable")]
    return [str(v) for v in names]


def _ids(values: np.ndarray, names: list[str], what: str, path: Path) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(values.tolist()) - set(lookup))
    if unknown:
        raise ValueError(f"{path}: {what} {unknown[:5]} do not occur in the training rows")
    return np.asarray([lookup[v] for v in values.tolist()], dtype=np.int64)


def _column(table: Table, name: str | None, what: str, path: Path) -> np.ndarray | None:
    if name is None:
        return None
    if name not in table:
        raise ValueError(f"{path}: no {what} column {name!r}; the columns are {list(table)}")
    return table[name]


def load_csv(
    path: str | os.PathLike[str],
    *,
    label: str,
    group: str | None = None,
    test_path: str | os.PathLike[str] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    categorical: Sequence[str] | None = None,
    drop: Sequence[str] = (),
) -> tuple[Any, Any]:
    """(train, test) from a CSV file (see the module docstring).

    Args:
        path: the CSV file (header row; comma-separated).
        label: the column of class labels.
        group: the column of a sensitive attribute, or None (then no groups).
        test_path: a second CSV file with the same columns to test on; None: split ``path``.
        test_fraction: the share of each class (cell) held out for testing when there is no
            ``test_path``; every class (cell) keeps at least one training row.
        seed: the split's seed.
        categorical: the columns to one-hot encode; None: every column whose values are not
            all numbers.
        drop: columns to ignore (identifiers, leaks).
    """
    path = Path(path).expanduser()
    table = read_csv_table(path)
    y_raw = _column(table, label, "label", path)
    g_raw = _column(table, group, "group", path)
    assert y_raw is not None
    missing = [c for c in drop if c not in table]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} to drop; the columns are {list(table)}")
    features = [c for c in table if c not in {label, group, *drop}]
    if not features:
        raise ValueError(f"{path}: no feature columns besides the label (and group)")
    for c in features:
        empty = np.flatnonzero(table[c] == "")
        if empty.size:
            rows = (empty[:3] + 2).tolist()
            raise ValueError(f"{path}: column {c!r} has empty cells (lines {rows}); impute them")
    cats = (
        [c for c in features if not _is_numeric(table[c])]
        if categorical is None
        else list(categorical)
    )
    unknown = [c for c in cats if c not in features]
    if unknown:
        raise ValueError(f"{path}: categorical column(s) {unknown} are not feature columns")
    nums = [c for c in features if c not in cats]
    if test_path is None:
        strata = _ids(y_raw, _label_names(y_raw), "labels", path)
        if g_raw is not None:
            g_ids = _ids(g_raw, _label_names(g_raw), "groups", path)
            strata = strata * (int(g_ids.max()) + 1) + g_ids
        tr, te = _stratified_split(strata, test_fraction, seed)
        parts = {"train": {c: v[tr] for c, v in table.items()}}
        parts["test"] = {c: v[te] for c, v in table.items()}
    else:
        test_table = read_csv_table(test_path)
        absent = [c for c in table if c not in test_table and c not in drop]
        if absent:
            raise ValueError(f"{test_path}: missing column(s) {absent} of {path}")
        parts = {"train": table, "test": test_table}
    class_names = _label_names(parts["train"][label])
    group_names = _label_names(parts["train"][group]) if group is not None else []
    encoder = TabularEncoder(categorical=cats, numerical=nums).fit(parts["train"])
    out = []
    for split in ("train", "test"):
        part = parts[split]
        where = Path(test_path) if split == "test" and test_path is not None else path
        groups = None if group is None else _ids(part[group], group_names, "groups", where)
        out.append(
            in_memory_dataset(
                x=torch.from_numpy(encoder.transform(part)),
                y=torch.from_numpy(_ids(part[label], class_names, "labels", where)),
                num_classes=len(class_names),
                groups=None if groups is None else torch.from_numpy(groups),
                num_groups=max(1, len(group_names)),
                class_names=class_names,
                group_names=group_names,
                name=path.stem,
            )
        )
    return out[0], out[1]


__all__ = ["in_memory_dataset", "load_csv", "read_csv_table"]
