"""Tabular fairness benchmarks from upstream files: UCI Adult, ProPublica COMPAS, CelebA attrs.

Each loader returns float32 features with one-hot categoricals (categories = those seen in the
training rows, ``?`` kept as its own category) and standardised numericals
``z = (v − μ_train) / σ_train`` (σ = 1 where a column is constant), so no test statistic leaks
into training. The sensitive attribute becomes ``groups`` and, unless ``group_as_feature``, is not
a feature.

* Adult (Kohavi 1996): ``adult.data`` (32,561 rows) / ``adult.test`` (16,281 rows, first line
  skipped, labels end in ``.``); label ``income > 50K``, group ``sex``.
* COMPAS (ProPublica "Machine Bias", 2016): ``compas-scores-two-years.csv`` filtered as in
  ProPublica's analysis (|days_b_screening_arrest| ≤ 30, is_recid ≠ −1, c_charge_degree ≠ "O",
  score_text ≠ "N/A") → 6,172 rows; by default only African-American (group 0) and Caucasian
  (group 1) defendants are kept → 5,278 rows. Label ``two_year_recid``. No names or dates are
  read into features. There is no official split: a seeded split stratified by (label, group).
* CelebA attributes (Liu et al., ICCV 2015): ``list_attr_celeba.txt[.gz]`` and
  ``list_eval_partition.txt``; label ``Blond_Hair``, group ``Male``, the other 38 attributes as ±1
  features; official partition 162,770 / 19,867 / 19,962.
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from autobalance.data.dataset import InMemoryDataset

Table = dict[str, np.ndarray]

ADULT_COLUMNS: tuple[str, ...] = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
ADULT_NUMERICAL = (
    "age",
    "fnlwgt",
    "education-num",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
)
ADULT_CATEGORICAL = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
)
COMPAS_NUMERICAL = ("age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count")
COMPAS_CATEGORICAL = ("sex", "age_cat", "race", "c_charge_degree")
COMPAS_RACES = ("African-American", "Caucasian")


class TabularEncoder:
    """One-hot categoricals and standardised numericals, fitted on training rows only.

    ``transform`` maps a categorical value ``v`` of column ``c`` to ``e_j`` with ``j`` its rank
    among the training categories of ``c`` (all-zero for a category never seen in training), and a
    numerical value to ``(v − mean_)/scale_``. Columns are given as a dict name → array of strings.
    """

    def __init__(self, *, categorical: Sequence[str] = (), numerical: Sequence[str] = ()) -> None:
        self.categorical = tuple(categorical)
        self.numerical = tuple(numerical)

    def fit(self, table: Table) -> TabularEncoder:
        self.categories_ = {c: np.unique(table[c]) for c in self.categorical}
        num = self._numbers(table)
        self.mean_ = num.mean(axis=0) if len(num) else np.zeros(num.shape[1])
        std = num.std(axis=0) if len(num) else np.ones(num.shape[1])
        self.scale_ = np.where(std > 0, std, 1.0)
        self.feature_names_ = [*self.numerical] + [
            f"{c}={v}" for c in self.categorical for v in self.categories_[c]
        ]
        return self

    def _numbers(self, table: Table) -> np.ndarray:
        cols = []
        for c in self.numerical:
            try:
                cols.append(np.asarray(table[c], dtype=np.float64))
            except ValueError as e:
                raise ValueError(f"numerical column '{c}' has a non-numeric value: {e}") from e
        n = len(next(iter(table.values()))) if table else 0
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))

    def transform(self, table: Table) -> np.ndarray:
        parts = [(self._numbers(table) - self.mean_) / self.scale_]
        for c in self.categorical:
            cats = self.categories_[c]
            pos = np.searchsorted(cats, table[c])
            pos = np.minimum(pos, max(len(cats) - 1, 0))
            known = cats[pos] == table[c] if len(cats) else np.zeros(len(table[c]), bool)
            onehot = np.zeros((len(table[c]), len(cats)))
            onehot[np.flatnonzero(known), pos[known]] = 1.0
            parts.append(onehot)
        return np.concatenate(parts, axis=1).astype(np.float32)


def _require(root: Path, files: Sequence[str], what: str) -> None:
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{what}: missing {', '.join(missing)} under {root}; expected {', '.join(files)}"
        )


def _dataset(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    group_names: list[str],
    class_names: list[str],
    name: str,
) -> InMemoryDataset:
    return InMemoryDataset(
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        y=torch.from_numpy(y.astype(np.int64)),
        num_classes=len(class_names),
        groups=torch.from_numpy(groups.astype(np.int64)),
        num_groups=len(group_names),
        class_names=class_names,
        group_names=group_names,
        name=name,
    )


# ----------------------------------------------------------------------------- Adult


def read_adult_file(path: str | os.PathLike[str]) -> Table:
    """Columns of ``adult.data`` or ``adult.test`` as string arrays (``income`` without ``.``)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f, skipinitialspace=True), 1):
            if not row or row[0].startswith("|"):
                continue
            if len(row) != len(ADULT_COLUMNS):
                raise ValueError(
                    f"{path}:{lineno}: expected {len(ADULT_COLUMNS)} fields, got {len(row)}"
                )
            rows.append([v.strip() for v in row])
    cols = np.asarray(rows, dtype=str).reshape(-1, len(ADULT_COLUMNS)).T
    table = dict(zip(ADULT_COLUMNS, cols))
    table["income"] = np.char.rstrip(table["income"], ".")
    bad = set(np.unique(table["income"]).tolist()) - {"<=50K", ">50K"}
    if bad:
        raise ValueError(f"{path}: unexpected income labels {sorted(bad)}")
    return table


def load_adult(
    root: str | os.PathLike[str], *, group_as_feature: bool = False
) -> tuple[InMemoryDataset, InMemoryDataset]:
    """(train, test) of UCI Adult: label 1 ⇔ income > 50K, group 0 Female / 1 Male."""
    root = Path(root).expanduser()
    _require(root, ("adult.data", "adult.test"), "UCI Adult")
    train, test = read_adult_file(root / "adult.data"), read_adult_file(root / "adult.test")
    cats = [c for c in ADULT_CATEGORICAL if group_as_feature or c != "sex"]
    enc = TabularEncoder(categorical=cats, numerical=ADULT_NUMERICAL).fit(train)
    groups = ["Female", "Male"]
    out = []
    for split, t in (("train", train), ("test", test)):
        unknown = set(np.unique(t["sex"]).tolist()) - set(groups)
        if unknown:
            raise ValueError(f"UCI Adult {split}: unexpected sex values {sorted(unknown)}")
        out.append(
            _dataset(
                enc.transform(t),
                (t["income"] == ">50K").astype(np.int64),
                (t["sex"] == "Male").astype(np.int64),
                groups,
                ["<=50K", ">50K"],
                f"adult-{split}",
            )
        )
    return out[0], out[1]


# ----------------------------------------------------------------------------- COMPAS


def read_compas(path: str | os.PathLike[str]) -> Table:
    """ProPublica's filter of ``compas-scores-two-years.csv``; only the columns used here.

    Keeps rows with −30 ≤ days_b_screening_arrest ≤ 30 (empty fails), is_recid ≠ −1,
    c_charge_degree ≠ "O" and score_text ≠ "N/A" (6,172 rows of the 2016 release).
    """
    wanted = (*COMPAS_NUMERICAL, *COMPAS_CATEGORICAL, "two_year_recid")
    filt = ("days_b_screening_arrest", "is_recid", "score_text")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        missing = [c for c in (*wanted, *filt) if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        idx = {c: header.index(c) for c in (*wanted, *filt)}  # first of duplicated names
        rows = [r for r in reader if r]
    col = {c: np.asarray([r[i] for r in rows], dtype=str) for c, i in idx.items()}
    days_txt = col["days_b_screening_arrest"]
    days = np.full(len(days_txt), np.nan)
    has = days_txt != ""
    days[has] = days_txt[has].astype(np.float64)
    keep = (
        has
        & (np.abs(np.nan_to_num(days, nan=1e9)) <= 30)
        & (col["is_recid"] != "-1")
        & (col["c_charge_degree"] != "O")
        & (col["score_text"] != "N/A")
    )
    return {c: col[c][keep] for c in wanted}


def _stratified_split(
    strata: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum, a seeded shuffle puts ``round(test_fraction · n_s)`` rows in the test part."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for s in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == s))
        n_test = round(test_fraction * len(rows))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_compas(
    root: str | os.PathLike[str],
    *,
    races: Sequence[str] | None = COMPAS_RACES,
    test_fraction: float = 0.2,
    seed: int = 0,
    group_as_feature: bool = False,
) -> tuple[InMemoryDataset, InMemoryDataset]:
    """(train, test) of ProPublica COMPAS: label ``two_year_recid``, group = race.

    ``races`` keeps those races, group ``j`` = ``races[j]`` (default African-American 0,
    Caucasian 1); ``None`` keeps every race, groups in sorted name order. Features: age,
    priors_count, juvenile felony/misdemeanour/other counts (standardised), sex, age_cat,
    c_charge_degree (one-hot), and race only with ``group_as_feature``.
    """
    root = Path(root).expanduser()
    file = root / "compas-scores-two-years.csv" if root.is_dir() else root
    _require(file.parent, (file.name,), "ProPublica COMPAS")
    t = read_compas(file)
    names = list(races) if races is not None else sorted(set(t["race"].tolist()))
    keep = np.isin(t["race"], names)
    t = {c: v[keep] for c, v in t.items()}
    lookup = {r: j for j, r in enumerate(names)}
    groups = np.asarray([lookup[r] for r in t["race"]], dtype=np.int64)
    y = t["two_year_recid"].astype(np.int64)
    tr, te = _stratified_split(y * len(names) + groups, test_fraction, seed)
    cats = [c for c in COMPAS_CATEGORICAL if group_as_feature or c != "race"]
    enc = TabularEncoder(categorical=cats, numerical=COMPAS_NUMERICAL)
    enc.fit({c: v[tr] for c, v in t.items()})
    out = []
    for split, rows in (("train", tr), ("test", te)):
        part = {c: v[rows] for c, v in t.items()}
        out.append(
            _dataset(
                enc.transform(part),
                y[rows],
                groups[rows],
                names,
                ["no_recid", "recid"],
                f"compas-{split}",
            )
        )
    return out[0], out[1]


# ----------------------------------------------------------------------------- CelebA


def _open_text(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return f.read()


def read_celeba_attributes(path: str | os.PathLike[str]) -> tuple[list[str], list[str], np.ndarray]:
    """``(image_names, attribute_names, values)`` of ``list_attr_celeba.txt[.gz]``, values ±1 int8.

    Fast path: after the image name each value is ``1`` or ``-1``, so every ``1`` byte is one
    value and a ``-`` just before it makes it negative.
    """
    path = Path(path)
    lines = _open_text(path).splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and an attribute-name line")
    n = int(lines[0])
    attrs = lines[1].decode().split()
    body = [ln.split(maxsplit=1) for ln in lines[2 : 2 + n] if ln.strip()]
    if len(body) != n or any(len(b) != 2 for b in body):
        raise ValueError(f"{path}: header says {n} rows, found {len(body)} well-formed rows")
    names = [b[0].decode() for b in body]
    flat = np.frombuffer(b" ".join(b[1] for b in body), dtype=np.uint8)
    ones = np.flatnonzero(flat == ord("1"))
    if ones.size != n * len(attrs):
        raise ValueError(f"{path}: expected {n}×{len(attrs)} values in {{-1, 1}}")
    negative = flat[np.maximum(ones - 1, 0)] == ord("-")
    values = np.where(negative, -1, 1).astype(np.int8).reshape(n, len(attrs))
    return names, attrs, values


def load_celeba_attributes(
    root: str | os.PathLike[str],
    *,
    target: str = "Blond_Hair",
    group: str = "Male",
    group_as_feature: bool = False,
) -> tuple[InMemoryDataset, InMemoryDataset, InMemoryDataset]:
    """(train, val, test) of CelebA attributes on the official partition 0/1/2.

    Label 1 ⇔ ``target`` = +1; group 1 ⇔ ``group`` = +1 (group names ``not_<group>``, ``group``);
    the other attributes are ±1 float features.
    """
    root = Path(root).expanduser()
    attr = next(
        (
            root / f
            for f in ("list_attr_celeba.txt", "list_attr_celeba.txt.gz")
            if (root / f).is_file()
        ),
        None,
    )
    if attr is None:
        raise FileNotFoundError(
            f"CelebA: no list_attr_celeba.txt or list_attr_celeba.txt.gz under {root}; expected "
            "it and list_eval_partition.txt"
        )
    _require(root, ("list_eval_partition.txt",), "CelebA")
    names, attrs, values = read_celeba_attributes(attr)
    for a in (target, group):
        if a not in attrs:
            raise ValueError(f"Unknown CelebA attribute '{a}', expected one of {attrs}")
    tokens = _open_text(root / "list_eval_partition.txt").decode().split()
    part_names, split = tokens[0::2], np.asarray(tokens[1::2], dtype=np.int64)
    if len(part_names) != len(names) or len(split) != len(names):
        raise ValueError(
            f"CelebA: {len(part_names)} partition rows but {len(names)} attribute rows"
        )
    if part_names != names:
        order = {n: i for i, n in enumerate(part_names)}
        missing = [n for n in names if n not in order]
        if missing:
            raise ValueError(f"CelebA: {missing[0]} has no entry in list_eval_partition.txt")
        split = split[[order[n] for n in names]]
    feat_cols = [i for i, a in enumerate(attrs) if a != target and (group_as_feature or a != group)]
    x = values[:, feat_cols].astype(np.float32)
    y = (values[:, attrs.index(target)] > 0).astype(np.int64)
    g = (values[:, attrs.index(group)] > 0).astype(np.int64)
    out = []
    for code, sname in enumerate(("train", "val", "test")):
        rows = np.flatnonzero(split == code)
        out.append(
            _dataset(
                x[rows],
                y[rows],
                g[rows],
                [f"not_{group}", group],
                [f"not_{target}", target],
                f"celeba-{sname}",
            )
        )
    return out[0], out[1], out[2]


__all__ = [
    "ADULT_COLUMNS",
    "COMPAS_RACES",
    "TabularEncoder",
    "load_adult",
    "load_celeba_attributes",
    "load_compas",
    "read_adult_file",
    "read_celeba_attributes",
    "read_compas",
]
