"""autobalance: optimized loss functions for imbalanced and group-sensitive classification.

Bilevel search of a parametric cross-entropy (AutoBalance, Li et al., NeurIPS 2021,
arXiv 2201.01212), the baselines it is compared against, and the metrics that judge them.
"""

from typing import TYPE_CHECKING

from autobalance.config import AlphaConfig, HyperConfig, SearchConfig, SpaceConfig
from autobalance.data import InMemoryDataset
from autobalance.hypergrad import NonFiniteHypergradient, implicit_hypergradient
from autobalance.losses import ParametricCE, make_loss, parametric_cross_entropy
from autobalance.metrics import (
    balanced_error,
    class_errors,
    deo,
    error,
    evaluate_predictions,
    group_balanced_error,
    worst_group_error,
)
from autobalance.models import make_model
from autobalance.objectives import make_objective
from autobalance.search import AutoBalanceSearch, SearchResult, loss_from_alpha, search
from autobalance.search_space import SearchSpace, frequency_clusters
from autobalance.train import TrainConfig, evaluate, fit, predict

if TYPE_CHECKING:  # imported on first use: scikit-learn is slow to import
    from autobalance.estimator import AutoBalanceClassifier


def _version() -> str:
    """The installed distribution's version (pyproject.toml is its one source)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autobalance")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
        return "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> object:
    if name == "AutoBalanceClassifier":
        from autobalance.estimator import AutoBalanceClassifier

        return AutoBalanceClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlphaConfig",
    "AutoBalanceClassifier",
    "AutoBalanceSearch",
    "HyperConfig",
    "InMemoryDataset",
    "NonFiniteHypergradient",
    "ParametricCE",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "SpaceConfig",
    "TrainConfig",
    "__version__",
    "balanced_error",
    "class_errors",
    "deo",
    "error",
    "evaluate",
    "evaluate_predictions",
    "fit",
    "frequency_clusters",
    "group_balanced_error",
    "implicit_hypergradient",
    "loss_from_alpha",
    "make_loss",
    "make_model",
    "make_objective",
    "parametric_cross_entropy",
    "predict",
    "search",
    "worst_group_error",
]
