"""Typed rows of the small CSV files a run writes (``alpha_trajectory.csv``,
``augment_trajectory.csv``): one parser per column, an empty cell read as ``None``."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any


def read_typed_csv(
    path: str | PathLike[str], columns: Mapping[str, Callable[[str], Any]]
) -> list[dict[str, Any]]:
    """The rows of ``path`` as dicts of ``columns`` (name → parser; "" → None), in file order;
    [] when the file does not exist. Other columns are dropped."""
    p = Path(path)
    if not p.is_file():
        return []
    with open(p, newline="", encoding="utf-8") as fh:
        return [
            {k: (parse(r[k]) if r[k] != "" else None) for k, parse in columns.items()}
            for r in csv.DictReader(fh)
        ]


__all__ = ["read_typed_csv"]
