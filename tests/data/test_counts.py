from __future__ import annotations

import numpy as np
import pytest
import torch

from autobalance.data.counts import class_counts, class_frequencies, group_counts


def test_class_counts_and_frequencies_match_bincount() -> None:
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.arange(5), rng.integers(0, 5, 200)])
    expected = np.array([(labels == k).sum() for k in range(5)])
    np.testing.assert_array_equal(class_counts(labels), expected)
    np.testing.assert_array_equal(class_counts(torch.from_numpy(labels)), expected)
    np.testing.assert_array_equal(class_counts(labels.tolist(), num_classes=5), expected)
    freqs = class_frequencies(labels)
    np.testing.assert_allclose(freqs, expected / labels.size)
    assert freqs.sum() == pytest.approx(1.0)
    assert class_counts(labels).dtype == np.int64


def test_empty_class_rejected_unless_allowed() -> None:
    with pytest.raises(ValueError, match=r"classes \[1, 3\] have no samples"):
        class_counts([0, 2, 2], num_classes=4)
    np.testing.assert_array_equal(class_counts([0, 2, 2], 4, allow_empty=True), [1, 0, 2, 0])
    np.testing.assert_allclose(
        class_frequencies([0, 2, 2], 4, allow_empty=True), [1 / 3, 0, 2 / 3, 0]
    )


def test_group_counts_table() -> None:
    labels = [0, 0, 1, 1, 1, 2]
    groups = [0, 1, 1, 1, 0, 1]
    np.testing.assert_array_equal(
        group_counts(labels, groups, allow_empty=True), [[1, 1], [1, 2], [0, 1]]
    )
    with pytest.raises(ValueError, match=r"\(2, 0\)"):
        group_counts(labels, groups)
    rng = np.random.default_rng(1)
    y, g = rng.integers(0, 3, 500), rng.integers(0, 4, 500)
    table = group_counts(y, g, num_classes=3, num_groups=4)
    expected = np.array([[np.sum((y == a) & (g == b)) for b in range(4)] for a in range(3)])
    np.testing.assert_array_equal(table, expected)


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        ([0, 1, 5], {"num_classes": 3}, r"\[0, 3\)"),
        ([0, -1], {}, "non-negative"),
        ([0.0, 1.0], {}, "integer"),
        ([0, float("nan")], {}, "NaN"),
        ([0, 1], {"num_classes": 0}, "positive integer"),
        ([], {}, "empty"),
    ],
)
def test_class_counts_validation(labels, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        class_counts(labels, **kwargs)


def test_group_counts_validation() -> None:
    with pytest.raises(ValueError, match="3 entries"):
        group_counts([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        group_counts([0, 1], [0, 2], num_groups=2)
