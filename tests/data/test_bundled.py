from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from autobalance.data.bundled import load_digits_lt


def test_counts_follow_the_exponential_profile() -> None:
    train, test = load_digits_lt(imbalance_ratio=50, seed=0, test_per_class=50)
    # smallest digit has 174 images → 124 left for training; n_i = int(124 · 50^(−i/9))
    expected = [int(124 * 50 ** (-i / 9)) for i in range(10)]
    assert train.class_counts().tolist() == expected
    assert test.class_counts().tolist() == [50] * 10
    assert train.x.shape == (sum(expected), 64) and train.x.dtype == torch.float32


def test_rows_are_real_digits_and_splits_are_disjoint() -> None:
    x, y = load_digits(return_X_y=True)
    train, test = load_digits_lt(seed=1, standardize=False)
    lookup = {row.tobytes(): int(label) for row, label in zip(x.astype(np.float32), y)}
    train_rows = [r.tobytes() for r in train.x.numpy()]
    test_rows = [r.tobytes() for r in test.x.numpy()]
    assert [lookup[r] for r in train_rows] == train.y.tolist()
    assert [lookup[r] for r in test_rows] == test.y.tolist()
    assert not set(train_rows) & set(test_rows)


def test_standardised_with_train_statistics_and_deterministic() -> None:
    train, _ = load_digits_lt(seed=2)
    sd = train.x.std(0, unbiased=False)
    varying = sd > 0
    assert train.x.mean(0).abs().max() < 1e-5
    assert torch.allclose(sd[varying], torch.ones(int(varying.sum())), atol=1e-5)
    again, _ = load_digits_lt(seed=2)
    assert torch.equal(train.x, again.x)
    other, _ = load_digits_lt(seed=3)
    assert not torch.equal(train.y, other.y) or not torch.equal(train.x, other.x)
    images, _ = load_digits_lt(seed=2, as_images=True)
    assert images.x.shape == (len(train), 1, 8, 8)
    assert torch.equal(images.x.reshape(len(train), 64), train.x)


def test_plain_ce_underperforms_on_the_tail() -> None:
    train, test = load_digits_lt()
    clf = LogisticRegression(max_iter=500).fit(train.x.numpy(), train.y.numpy())
    pred = clf.predict(test.x.numpy())
    acc = np.array([(pred[test.y.numpy() == k] == k).mean() for k in range(10)])
    assert acc[:3].mean() > 0.9
    assert acc[-3:].mean() < acc[:3].mean() - 0.3


def test_bad_test_size() -> None:
    with pytest.raises(ValueError, match="test_per_class"):
        load_digits_lt(test_per_class=174)
