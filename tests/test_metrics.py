from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

from autobalance.metrics import (
    EmptyCellWarning,
    as_label_array,
    balanced_error,
    cell_errors,
    class_errors,
    deo,
    error,
    evaluate_predictions,
    group_balanced_error,
    per_class_accuracy,
    weighted_error,
    worst_group_error,
)


def _random_problem(seed: int, n: int = 300, k: int = 4, g: int = 3):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    # predictions correct with probability ~0.6, otherwise uniform
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    groups = rng.integers(0, g, n)
    # make sure every (class, group) cell is non-empty
    cells = np.array([(a, b) for a in range(k) for b in range(g)])
    y_true[: k * g], groups[: k * g] = cells[:, 0], cells[:, 1]
    return y_true, y_pred, groups


@pytest.mark.parametrize("seed", range(5))
def test_class_metrics_match_sklearn(seed: int) -> None:
    y_true, y_pred, _ = _random_problem(seed)
    cm = confusion_matrix(y_true, y_pred, labels=range(4))
    expected_class = 1.0 - np.diag(cm) / cm.sum(axis=1)
    np.testing.assert_allclose(class_errors(y_true, y_pred), expected_class, rtol=0, atol=1e-12)
    np.testing.assert_allclose(per_class_accuracy(y_true, y_pred), 1.0 - expected_class)
    assert error(y_true, y_pred) == pytest.approx(1.0 - accuracy_score(y_true, y_pred))
    assert balanced_error(y_true, y_pred) == pytest.approx(
        1.0 - balanced_accuracy_score(y_true, y_pred)
    )


@pytest.mark.parametrize("seed", range(3))
def test_cell_metrics_match_fairlearn(seed: int) -> None:
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    y_true, y_pred, groups = _random_problem(seed)

    def err(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.asarray(a) != np.asarray(b)))

    frame = fairlearn_metrics.MetricFrame(
        metrics=err,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
        control_features=y_true,
    )
    expected = frame.by_group.unstack().to_numpy()  # rows: class (control), cols: group
    table = cell_errors(y_true, y_pred, groups)
    np.testing.assert_allclose(table, expected, atol=1e-12)
    gaps = frame.difference(method="between_groups")
    assert deo(y_true, y_pred, groups) == pytest.approx(float(gaps.sum()))
    assert worst_group_error(y_true, y_pred, groups) == pytest.approx(
        float(frame.group_max().max())
    )
    assert group_balanced_error(y_true, y_pred, groups) == pytest.approx(float(expected.mean()))


def test_deo_two_by_two_is_eq_4_1() -> None:
    # cells (y, g): (0,0) 1/4 wrong, (0,1) 2/2 wrong, (1,0) 0/3 wrong, (1,1) 1/2 wrong
    y_true = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    groups = [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1]
    y_pred = [1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1]
    expected = abs(0.25 - 1.0) + abs(0.0 - 0.5)
    assert deo(y_true, y_pred, groups) == pytest.approx(expected)
    assert worst_group_error(y_true, y_pred, groups) == pytest.approx(1.0)
    assert group_balanced_error(y_true, y_pred, groups) == pytest.approx((0.25 + 1 + 0 + 0.5) / 4)
    assert error(y_true, y_pred) == pytest.approx(4 / 11)


def test_deo_many_classes_and_groups_by_hand() -> None:
    # K = 3, G = 3: DEO = Σ_k (max_g Err_{k,g} − min_g Err_{k,g}), the largest gap per class.
    # Cell errors (rows = classes, columns = groups), each cell with 4 samples:
    #   k=0: 0/4, 1/4, 2/4 → gap 0.5;  k=1: 3/4, 3/4, 3/4 → gap 0;  k=2: 4/4, 0/4, 1/4 → gap 1
    wrong = [[0, 1, 2], [3, 3, 3], [4, 0, 1]]
    y, g, pred = [], [], []
    for k in range(3):
        for j in range(3):
            for i in range(4):
                y.append(k)
                g.append(j)
                pred.append((k + 1) % 3 if i < wrong[k][j] else k)
    assert deo(y, pred, g) == pytest.approx(0.5 + 0.0 + 1.0)
    np.testing.assert_allclose(cell_errors(y, pred, g), np.asarray(wrong) / 4)
    assert worst_group_error(y, pred, g) == pytest.approx(1.0)
    assert group_balanced_error(y, pred, g) == pytest.approx(17 / 36)


def test_inputs_tensor_numpy_list_agree() -> None:
    y_true, y_pred, groups = _random_problem(0, n=50, k=3, g=2)
    as_np = evaluate_predictions(y_true, y_pred, groups)
    as_torch = evaluate_predictions(
        torch.from_numpy(y_true), torch.from_numpy(y_pred), torch.from_numpy(groups)
    )
    as_list = evaluate_predictions(y_true.tolist(), y_pred.tolist(), groups.tolist())
    assert as_np == as_torch == as_list
    assert balanced_error([True, False, True], [True, True, True]) == pytest.approx(0.5)


def test_empty_class_is_nan_warned_and_skipped() -> None:
    y_true = np.array([0, 0, 1, 1, 1, 3])
    y_pred = np.array([0, 1, 1, 1, 0, 3])
    with pytest.warns(EmptyCellWarning, match=r"\[2\]"):
        errs = class_errors(y_true, y_pred, num_classes=4)
    assert math.isnan(errs[2])
    np.testing.assert_allclose(errs[[0, 1, 3]], [0.5, 1 / 3, 0.0])
    with pytest.warns(EmptyCellWarning):
        value = balanced_error(y_true, y_pred, num_classes=4)
    assert value == pytest.approx((0.5 + 1 / 3 + 0.0) / 3)


def test_empty_cell_warned_and_deo_skips_single_group_class() -> None:
    y_true = np.array([0, 0, 0, 1, 1])
    groups = np.array([0, 1, 1, 0, 0])  # class 1 has only group 0
    y_pred = np.array([1, 0, 1, 1, 0])
    with pytest.warns(EmptyCellWarning, match=r"\(1, 1\)"):
        table = cell_errors(y_true, y_pred, groups)
    assert math.isnan(table[1, 1])
    np.testing.assert_allclose(table[0], [1.0, 0.5])
    with pytest.warns(EmptyCellWarning) as record:
        value = deo(y_true, y_pred, groups)
    assert value == pytest.approx(0.5)  # only class 0 contributes |1 − 0.5|
    assert any("DEO skips classes [1]" in str(w.message) for w in record)
    with pytest.warns(EmptyCellWarning):
        assert group_balanced_error(y_true, y_pred, groups) == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_deo_nan_when_no_class_has_two_groups() -> None:
    with pytest.warns(EmptyCellWarning):
        assert math.isnan(deo([0, 1], [0, 0], [0, 0], num_groups=2))


def test_evaluate_predictions_contents() -> None:
    y_true, y_pred, groups = _random_problem(3)
    out = evaluate_predictions(y_true, y_pred, groups)
    assert set(out) == {
        "error",
        "balanced_error",
        "worst_class_error",
        "class_errors",
        "group_balanced_error",
        "worst_group_error",
        "deo",
        "cell_errors",
        "empirical_error",
    }
    assert out["error"] == out["empirical_error"]
    assert out["balanced_error"] == pytest.approx(1 - balanced_accuracy_score(y_true, y_pred))
    cm = confusion_matrix(y_true, y_pred)
    assert out["worst_class_error"] == pytest.approx(np.max(1 - np.diag(cm) / cm.sum(1)))
    assert isinstance(out["class_errors"], list) and len(out["class_errors"]) == 4
    assert np.asarray(out["cell_errors"]).shape == (4, 3)
    assert set(evaluate_predictions(y_true, y_pred)) == {
        "error",
        "balanced_error",
        "worst_class_error",
        "class_errors",
    }


@pytest.mark.parametrize("seed", range(10))
def test_random_properties(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, k = int(rng.integers(20, 200)), int(rng.integers(2, 6))
    y_true = np.concatenate([np.arange(k), rng.integers(0, k, n)])
    y_pred = rng.integers(0, k, y_true.size)
    ones = np.zeros_like(y_true)
    # one group: group metrics reduce to class metrics and DEO is undefined
    assert group_balanced_error(y_true, y_pred, ones) == pytest.approx(
        balanced_error(y_true, y_pred)
    )
    assert worst_group_error(y_true, y_pred, ones) == pytest.approx(
        float(np.max(class_errors(y_true, y_pred)))
    )
    # permuting the samples changes nothing
    perm = rng.permutation(y_true.size)
    groups = rng.integers(0, 2, y_true.size)
    groups[:k] = 0
    groups[k : 2 * k] = 1
    y_true[k : 2 * k] = np.arange(k)
    a = evaluate_predictions(y_true, y_pred, groups)
    b = evaluate_predictions(y_true[perm], y_pred[perm], groups[perm])
    for key in ("error", "balanced_error", "deo", "worst_group_error"):
        assert a[key] == pytest.approx(b[key])
        assert 0.0 <= a[key] <= (k if key == "deo" else 1.0)
    # perfect predictions give zero everywhere
    perfect = evaluate_predictions(y_true, y_true, groups)
    assert perfect["error"] == perfect["deo"] == perfect["worst_group_error"] == 0.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 2], [0, 1], "3 entries"),
        ([0, -1], [0, 1], "non-negative"),
        ([0, 1], [0, float("nan")], "NaN"),
        ([0.0, 1.0], [0, 1], "integer"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([], [], "empty"),
    ],
)
def test_invalid_inputs(y_true, y_pred, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        balanced_error(y_true, y_pred)


def test_invalid_ranges() -> None:
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        class_errors([0, 1, 2], [0, 1, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        cell_errors([0, 1], [0, 1], [0, 2], num_groups=2)
    with pytest.raises(ValueError, match="groups has 1"):
        deo([0, 1], [0, 1], [0])
    with pytest.raises(ValueError, match="positive integer"):
        balanced_error([0, 1], [0, 1], num_classes=0)
    with pytest.raises(ValueError, match="NaN"):
        as_label_array(torch.tensor([0.0, float("nan")]))


def test_weighted_error_hand_computation() -> None:
    # K = 2, G = 2; test set balanced over cells (4 samples each), training π unbalanced.
    y = np.repeat([0, 0, 1, 1], 4)
    g = np.repeat([0, 1, 0, 1], 4)
    pred = y.copy()
    pred[[0]] = 1  # cell (0,0): 1/4 wrong
    pred[[4, 5]] = 1  # cell (0,1): 2/4 wrong
    pred[[12, 13, 14, 15]] = 0  # cell (1,1): 4/4 wrong
    cells = np.array([[0.25, 0.5], [0.0, 1.0]])
    pi = np.array([[0.73, 0.038], [0.012, 0.22]])  # the paper's Waterbirds-like π(y, g)
    hand = (0.73 * 0.25 + 0.038 * 0.5 + 0.012 * 0.0 + 0.22 * 1.0) / pi.sum()
    assert weighted_error(y, pred, g, pi) == pytest.approx(hand, rel=1e-12)
    assert weighted_error(y, pred, g, 1000 * pi) == pytest.approx(hand, rel=1e-12)  # counts
    out = evaluate_predictions(y, pred, g, cell_weights=pi)
    assert out["error"] == pytest.approx(hand, rel=1e-12)
    assert out["empirical_error"] == pytest.approx(cells.mean())  # balanced test set
    np.testing.assert_allclose(out["cell_errors"], cells)
    # with the test set's own cell proportions it is the plain error rate
    own = np.array([[4, 4], [4, 4]])
    assert weighted_error(y, pred, g, own) == pytest.approx(np.mean(pred != y))


def test_weighted_error_skips_empty_cells_and_checks_shape() -> None:
    y = np.array([0, 0, 1])
    g = np.array([0, 1, 0])
    pred = np.array([1, 0, 1])
    pi = np.array([[0.5, 0.2], [0.2, 0.1]])  # cell (1,1) has no test sample
    with pytest.warns(EmptyCellWarning):
        got = weighted_error(y, pred, g, pi)
    assert got == pytest.approx((0.5 * 1 + 0.2 * 0 + 0.2 * 0) / 0.9)
    with pytest.raises(ValueError, match="shape"), pytest.warns(EmptyCellWarning):
        weighted_error(y, pred, g, np.ones((3, 2)))
    with pytest.raises(ValueError, match="≥ 0"), pytest.warns(EmptyCellWarning):
        weighted_error(y, pred, g, -pi)
