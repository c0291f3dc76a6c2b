"""A scikit-learn classifier that learns its own training loss: :class:`AutoBalanceClassifier`.

``fit`` runs AutoBalance (Li et al. 2021, arXiv 2201.01212, Algorithm 1) on the training data:
it splits off a stratified validation set S_V, searches the parametric cross-entropy

    ℓ(y, f(x)) = w_y · CE(Δ ⊙ f(x) + l, y)        (eq. 2.2; per (class, group) cell, eq. 4.2)

whose trained model minimises the validation ``objective`` (balanced CE by default), then
retrains the model on all the data with the learned loss. Predictions are the argmax of the raw
logits f(x); ``predict_proba`` is their softmax. The learned loss is ``loss_``, a frozen
:class:`~autobalance.losses.ParametricCE` that any PyTorch training loop can reuse.

Inputs are numeric arrays or DataFrames of numbers (one-hot encode and scale your columns
first, e.g. with a scikit-learn ``ColumnTransformer`` in a ``Pipeline``); labels may be of any
type, as in scikit-learn. The estimator follows scikit-learn's contract: the constructor only
stores its arguments, fitted attributes end in ``_``, and ``random_state`` fixes the split, the
initial weights and the batch order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from autobalance.config import SearchConfig
from autobalance.losses import ParametricCE
from autobalance.provenance import fingerprint_of

ModelFactory = Callable[[int, int], nn.Module]
"""Builds a fresh model: ``model_fn(n_features, n_classes) -> nn.Module`` returning logits."""


class AutoBalanceClassifier(ClassifierMixin, BaseEstimator):
    """A PyTorch classifier trained with a loss learned by AutoBalance, as a scikit-learn estimator.

    Args:
        model_fn: ``model_fn(n_features, n_classes) -> nn.Module``, the network (it returns
            (N, K) logits); None: an MLP with ``hidden`` layers (ReLU).
        hidden: hidden layer sizes of the default MLP.
        epochs: training epochs of each phase (``config.train.epochs``); None keeps the
            config's (30 by default).
        lr: θ's SGD learning rate (``config.train.lr``; None: the config's, 0.1).
        batch_size: θ's batch size (``config.train.batch_size``; None: the config's, 128).
        val_fraction: the share of each class (cell) held out as S_V for the search; None:
            the config's (0.2, or 0.5 with groups).
        objective: the validation objective (``autobalance.objectives``): ``balanced_ce``
            (class-balanced error's surrogate), ``ce_deo`` / ``worst_group`` /
            ``group_balanced_ce`` for fairness with ``groups``, ...; None: the config's.
        config: a :class:`~autobalance.config.SearchConfig` for everything else (search
            space, hyper-step, upper level, guard); None: ``SearchConfig()``. It is copied;
            the arguments above override its fields.
        device: ``cpu``, ``cuda``, ``cuda:1``, ``mps`` or ``auto``; None: the config's
            (``cpu`` by default).
        random_state: None, an int or a ``numpy.random.RandomState``: the seed of the split,
            the initial weights and the batches (the global torch RNG is left as it was).
        verbose: 0 silent, 1 a progress bar per phase, 2 also a log line per epoch.

    Attributes:
        classes_: the class labels, sorted (``predict`` returns these).
        n_features_in_: the number of features seen by ``fit``.
        feature_names_in_: the column names, when ``X`` was a DataFrame of named columns.
        groups_: the group labels seen by ``fit`` (None without ``groups``).
        model_: the trained ``nn.Module`` (eval mode).
        loss_: the learned loss α*, a frozen :class:`~autobalance.losses.ParametricCE` of
            shape (K,) or (K, G), whose ``provenance`` records the training counts.
        alpha_: α* as effective tensors ``{"weight": w, "additive": l, "multiplicative": Δ}``.
        fell_back_: whether the search's guard reset α* to its initial loss (then ``loss_`` is
            the init, and ``model_`` was trained with it).
        rejected_loss_: when the guard fell back, the loss the search had found, frozen as
            ``loss_`` is (its reason is ``search_.guard["fallback_reason"]``); None otherwise.
        search_: the :class:`~autobalance.search.SearchResult` (history, trajectory, guard).

    Example:
        >>> from autobalance import AutoBalanceClassifier
        >>> clf = AutoBalanceClassifier(epochs=20, random_state=0).fit(X_train, y_train)
        >>> clf.predict(X_test)
        >>> criterion = clf.loss_  # reuse α* in any PyTorch loop: criterion(logits, targets)
    """

    def __init__(
        self,
        *,
        model_fn: ModelFactory | None = None,
        hidden: Sequence[int] = (256,),
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        val_fraction: float | None = None,
        objective: str | None = None,
        config: SearchConfig | None = None,
        device: str | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.model_fn = model_fn
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.objective = objective
        self.config = config
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _search_config(self, seed: int) -> SearchConfig:
        cfg = copy.deepcopy(self.config) if self.config is not None else SearchConfig()
        if not isinstance(cfg, SearchConfig):
            raise ValueError(f"config must be a SearchConfig or None, got {type(cfg).__name__}")
        for field, value in (
            ("epochs", self.epochs),
            ("lr", self.lr),
            ("batch_size", self.batch_size),
        ):
            if value is not None:
                setattr(cfg.train, field, value)
        if self.val_fraction is not None:
            cfg.val_fraction = self.val_fraction
        if self.objective is not None:
            cfg.objective = self.objective
        from autobalance.experiment import resolve_device

        cfg.device = resolve_device(cfg.device if self.device is None else self.device)
        cfg.seed = seed
        return cfg

    def _seed(self) -> int:
        if isinstance(self.random_state, int | np.integer) and not isinstance(
            self.random_state, bool
        ):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _model_factory(self, n_features: int, n_classes: int) -> Callable[[], nn.Module]:
        if self.model_fn is not None:
            user_fn = self.model_fn

            def model_fn() -> nn.Module:
                return user_fn(n_features, n_classes)

            return model_fn
        from autobalance.models import make_model

        hidden = tuple(int(h) for h in self.hidden)

        def mlp() -> nn.Module:
            return make_model("mlp", n_classes, in_features=n_features, hidden=hidden)

        return mlp

    def fit(self, X: Any, y: Any, *, groups: Any = None) -> AutoBalanceClassifier:
        """Search the loss on (X, y) and train the model with it (Algorithm 1).

        Args:
            X: (n_samples, n_features) numbers: an array or a DataFrame.
            y: (n_samples,) class labels of any type; every class needs ≥ 2 samples (one
                goes to S_V).
            groups: optional (n_samples,) sensitive-attribute labels: the loss then has one
                (w, l, Δ) per (class, group) cell (eq. 4.2) and S_V is split per cell.

        Returns:
            self.
        """
        from autobalance.data.csvfile import in_memory_dataset
        from autobalance.search import search

        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], y_numeric=False)
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"AutoBalanceClassifier needs samples of at least 2 classes, got 1 class "
                f"({classes[0]!r})"
            )
        group_labels = None
        g_index = None
        if groups is not None:
            g = np.asarray(groups)
            if g.ndim != 1 or g.shape[0] != X.shape[0]:
                raise ValueError(
                    f"groups must have shape ({X.shape[0]},) to match X, got {tuple(g.shape)}"
                )
            group_labels, g_index = np.unique(g, return_inverse=True)
        data = in_memory_dataset(
            x=torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
            y=torch.from_numpy(y_index.astype(np.int64)),
            num_classes=len(classes),
            groups=None if g_index is None else torch.from_numpy(g_index.astype(np.int64)),
            num_groups=1 if group_labels is None else len(group_labels),
            name=type(self).__name__,
        )
        seed = self._seed()
        cfg = self._search_config(seed)
        model_fn = self._model_factory(X.shape[1], len(classes))
        devices = [cfg.device] if torch.device(cfg.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the user's torch RNG is left alone
            result = search(cfg, model_fn, data, verbose=self.verbose)
        self.classes_ = classes
        self.groups_ = group_labels
        self.model_ = result.model.eval()
        self.alpha_ = {k: v.detach().cpu() for k, v in result.alpha.items()}
        loss = result.loss_module()
        loss.provenance = fingerprint_of(data)
        self.loss_: ParametricCE = loss
        self.fell_back_ = bool(result.guard.get("fell_back", False))
        rejected = result.rejected_loss_module()
        if rejected is not None:
            rejected.provenance = loss.provenance
        self.rejected_loss_: ParametricCE | None = rejected
        self.search_ = result
        return self

    # ------------------------------------------------------------------ predict
    def _logits(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        param = next(iter(self.model_.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        self.model_.eval()
        with torch.no_grad():
            parts = [self.model_(b.to(device)).float().cpu() for b in x.split(1024)]
        return torch.cat(parts) if parts else torch.empty(0, len(self.classes_))

    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax(f(x)): (n_samples, n_classes) probabilities, columns in ``classes_`` order.

        These are the model's raw scores; the learned loss shaped the training, it is not applied
        at prediction time.
        """
        return torch.softmax(self._logits(X).double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest logit, argmax_k f_k(x), as labels from ``classes_``."""
        index = self._logits(X).argmax(dim=1).numpy()  # checks that the model is fitted first
        return self.classes_[index]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


__all__ = ["AutoBalanceClassifier", "ModelFactory"]
