"""AutoBalanceClassifier: scikit-learn's estimator checks, labels, DataFrames, groups, the loss.

``parametrize_with_checks`` runs every check scikit-learn has for a classifier; none is
skipped by us. scikit-learn itself skips ``check_array_api_input`` unless the environment sets
``SCIPY_ARRAY_API=1`` (the estimator converts its input to numpy, as most estimators do).
Settings are tiny (3 epochs, a 32-unit MLP, one torch thread: on a busy 2-core machine torch's
thread pool costs far more than these tiny matrices), so the whole battery takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from autobalance import AutoBalanceClassifier, ParametricCE

TINY = {"epochs": 3, "batch_size": 32, "hidden": (32,)}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@parametrize_with_checks([AutoBalanceClassifier(**TINY, random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    check(estimator)


def _long_tailed(seed: int = 0, n: tuple[int, ...] = (120, 40, 12)) -> tuple[np.ndarray, ...]:
    centers = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X, y = make_blobs(n_samples=list(n), centers=centers, cluster_std=1.0, random_state=seed)
    return X, y


def test_string_labels_probabilities_and_learned_loss() -> None:
    X, y = _long_tailed()
    names = np.array(["cat", "dog", "eel"])[y]
    clf = AutoBalanceClassifier(**TINY, random_state=0).fit(X, names)
    assert list(clf.classes_) == ["cat", "dog", "eel"] and clf.n_features_in_ == 2
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1.0)
    assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))
    assert isinstance(clf.loss_, ParametricCE) and clf.loss_.shape == (3,)
    assert clf.loss_.provenance["class_counts"] == [120, 40, 12]
    assert not any(p.requires_grad for p in clf.loss_.parameters())
    # the learned loss starts from logit adjustment (l = τ log π): tail offsets are the largest
    l = clf.alpha_["additive"]
    assert l[2] < l[0]
    assert 0.0 <= clf.score(X, names) <= 1.0


def test_dataframe_input_keeps_feature_names() -> None:
    pd = pytest.importorskip("pandas")
    X, y = _long_tailed()
    frame = pd.DataFrame(X, columns=["age", "income"])
    clf = AutoBalanceClassifier(**TINY, random_state=0).fit(frame, pd.Series(y))
    assert list(clf.feature_names_in_) == ["age", "income"]
    assert clf.predict(frame).shape == (len(frame),)
    with pytest.raises(ValueError, match=r"could not convert|numeric"):
        clf.fit(frame.assign(city="x"), y)


def test_groups_give_a_class_group_loss() -> None:
    X, y = _long_tailed()
    groups = np.empty(len(y), dtype=object)
    for k in range(3):  # every (class, group) cell needs samples
        rows = np.flatnonzero(y == k)
        groups[rows] = np.array(["a", "b"])[np.arange(rows.size) % 2]
    clf = AutoBalanceClassifier(**TINY, objective="ce_deo", random_state=0)
    clf.fit(X, y, groups=groups)
    assert clf.loss_.shape == (3, 2) and list(clf.groups_) == ["a", "b"]
    assert clf.loss_.provenance["group_counts"] is not None
    with pytest.raises(ValueError, match="groups must have shape"):
        clf.fit(X, y, groups=groups[:-1])


def test_model_factory_and_reproducibility() -> None:
    X, y = _long_tailed()
    calls: list[tuple[int, int]] = []

    def model_fn(n_features: int, n_classes: int) -> nn.Module:
        calls.append((n_features, n_classes))
        return nn.Linear(n_features, n_classes)

    state = torch.get_rng_state()
    a = AutoBalanceClassifier(model_fn=model_fn, **TINY, random_state=3).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is untouched
    assert set(calls) == {(2, 3)} and isinstance(a.model_, nn.Linear)
    b = clone(a).fit(X, y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_pipeline_cross_validation_and_unfitted_errors() -> None:
    X, y = _long_tailed()
    pipe = make_pipeline(StandardScaler(), AutoBalanceClassifier(**TINY, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=2, scoring="balanced_accuracy")
    assert scores.shape == (2,) and np.all(scores > 0.5)
    with pytest.raises(NotFittedError):
        AutoBalanceClassifier().predict(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        AutoBalanceClassifier(**TINY).fit(X, np.zeros(len(X)))


def test_balanced_accuracy_on_long_tailed_blobs() -> None:
    X, y = _long_tailed(n=(300, 60, 12))
    Xt, yt = _long_tailed(seed=1, n=(100, 100, 100))
    clf = AutoBalanceClassifier(epochs=10, hidden=(32,), random_state=0).fit(X, y)
    assert balanced_accuracy_score(yt, clf.predict(Xt)) > 0.8


def test_guard_fallback_is_visible_and_keeps_the_rejected_loss() -> None:
    from autobalance.config import SearchConfig

    X, y = _long_tailed()
    settings = {**TINY, "epochs": 6, "random_state": 0}
    demanding = SearchConfig()
    demanding.guard.keep_z = 1000.0  # a gain of 1000 paired SEs: every searched α* is reset
    reset = AutoBalanceClassifier(**settings, config=demanding).fit(X, y)
    assert reset.fell_back_ and reset.search_.guard["fell_back"]
    rejected = reset.rejected_loss_
    assert isinstance(rejected, ParametricCE) and rejected.provenance == reset.loss_.provenance
    l_rejected = rejected.effective_additive
    assert torch.allclose(l_rejected, reset.search_.rejected_alpha["additive"])
    assert not torch.equal(l_rejected, reset.loss_.effective_additive)  # the search moved α
    kept = AutoBalanceClassifier(**settings).fit(X, y)  # the default's harm-only rule
    assert not kept.fell_back_ and kept.rejected_loss_ is None
    # the searched α* is the same search, kept: the rejected loss is what `kept` hands back
    assert torch.allclose(kept.loss_.effective_additive, l_rejected)
