from __future__ import annotations

import itertools

import numpy as np
import pytest

from autobalance.data.longtail import long_tail_counts, make_long_tailed


def test_cifar10_lt_counts_exact() -> None:
    counts = long_tail_counts(5000, 10, 100)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(counts) == 12406


def test_cifar100_lt_counts_exact() -> None:
    counts = long_tail_counts(500, 100, 100)
    assert sum(counts) == 10847
    assert counts[0] == 500 and counts[-1] == 5
    assert all(a >= b for a, b in itertools.pairwise(counts))
    # independent closed form with the LDAM-DRW imbalance factor 1/ρ
    assert counts == [int(500 * 0.01 ** (i / 99)) for i in range(100)]


def test_other_profiles_and_edge_cases() -> None:
    assert long_tail_counts(5000, 10, 100, profile="step") == [5000] * 5 + [50] * 5
    assert long_tail_counts(100, 5, 10, profile="step", mu=0.4) == [100] * 3 + [10] * 2
    assert long_tail_counts(300, 4, 1) == [300] * 4
    assert long_tail_counts(7, 1, 50) == [7]
    assert long_tail_counts(1000, 3, 10) == [1000, int(1000 / 10**0.5), 100]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5000, 10, 0.5), {}, "imbalance_ratio"),
        ((5000, 0, 100), {}, "num_classes"),
        ((0, 10, 100), {}, "n_max"),
        ((5000, 10, 100), {"profile": "linear"}, "Unknown profile 'linear'"),
        ((10, 10, 100), {}, "tail classes empty"),
        ((10, 4, 2), {"profile": "step", "mu": 1.5}, "mu"),
    ],
)
def test_long_tail_counts_validation(args, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        long_tail_counts(*args, **kwargs)


def test_make_long_tailed_reproduces_recipe() -> None:
    rng = np.random.default_rng(42)
    labels = rng.permutation(np.repeat(np.arange(4), 60))
    idx = make_long_tailed(labels, imbalance_ratio=10, seed=3)
    wanted = [int(60 * 10 ** (-i / 3)) for i in range(4)]
    np.testing.assert_array_equal(np.bincount(labels[idx]), wanted)
    # the recipe written out: one generator, classes in order, permute, keep the first n_i
    gen = np.random.default_rng(3)
    expected = [
        np.sort(gen.permutation(np.flatnonzero(labels == k))[:n]) for k, n in enumerate(wanted)
    ]
    np.testing.assert_array_equal(idx, np.concatenate(expected))
    np.testing.assert_array_equal(idx, make_long_tailed(labels, 10, seed=3))
    assert not np.array_equal(idx, make_long_tailed(labels, 10, seed=4))
    assert idx.dtype == np.int64 and np.unique(idx).size == idx.size


def test_make_long_tailed_cifar10_size() -> None:
    labels = np.tile(np.arange(10), 5000)
    idx = make_long_tailed(labels, 100, seed=0)
    assert idx.size == 12406
    np.testing.assert_array_equal(np.bincount(labels[idx]), long_tail_counts(5000, 10, 100))


def test_make_long_tailed_errors() -> None:
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match="fewer samples"):
        make_long_tailed(labels, 2, n_max=10)
    with pytest.raises(ValueError, match="no samples"):
        make_long_tailed(labels, 2, num_classes=3)
    # default n_max is the smallest class: [3, int(3/2)] = [3, 1]
    np.testing.assert_array_equal(np.bincount(labels[make_long_tailed(labels, 2)]), [3, 1])
