from __future__ import annotations

import numpy as np
import pytest

from autobalance.data.splits import stratified_split


def _long_tailed_labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.permutation(np.repeat(np.arange(6), [500, 211, 89, 37, 7, 2]))


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.05])
def test_per_class_proportions_and_partition(fraction: float) -> None:
    labels = _long_tailed_labels()
    train, val = stratified_split(labels, val_fraction=fraction, seed=1)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(labels.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    for k in range(6):
        n_k = int(np.sum(labels == k))
        n_val = int(np.sum(labels[val] == k))
        assert abs(n_val - round(n_k * fraction)) <= 1
        assert 1 <= n_val <= n_k - 1


def test_reproducible_and_seed_dependent() -> None:
    labels = _long_tailed_labels()
    a = stratified_split(labels, seed=7)
    b = stratified_split(labels, seed=7)
    c = stratified_split(labels, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_group_cells_stratified() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 0, 1, 1], [350, 60, 20, 170])
    groups = np.repeat([0, 1, 0, 1], [350, 60, 20, 170])
    perm = rng.permutation(labels.size)
    labels, groups = labels[perm], groups[perm]
    _, val = stratified_split(labels, val_fraction=0.5, seed=0, groups=groups)
    for y in (0, 1):
        for g in (0, 1):
            n_cell = int(np.sum((labels == y) & (groups == g)))
            n_val = int(np.sum((labels[val] == y) & (groups[val] == g)))
            assert abs(n_val - n_cell / 2) <= 1


def test_singleton_cells_keep_class_in_both_parts() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    groups = np.array([0, 0, 1, 1, 0, 1])  # class 1: two singleton cells
    train, val = stratified_split(labels, val_fraction=0.5, seed=0, groups=groups)
    assert set(labels[train]) == {0, 1} and set(labels[val]) == {0, 1}


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"at least 2 samples.*\(1, 1\)"):
        stratified_split([0, 0, 0, 1])
    with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
        stratified_split([0, 0, 1, 1], val_fraction=1.0)
    with pytest.raises(ValueError, match="groups has 3"):
        stratified_split([0, 0, 1, 1], groups=[0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        stratified_split([0, 0, 1, float("nan")])
