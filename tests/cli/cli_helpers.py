"""Shared by the CLI tests: a tiny search config (about a second) and output checks."""

from __future__ import annotations

from pathlib import Path

TINY = [
    "dataset.options={num_classes: 4, dim: 8, n_max: 60, n_test_per_class: 25}",
    "dataset.imbalance_ratio=10",
    "model.hidden=[16]",
    "search.train.epochs=2",
    "search.train.batch_size=16",
    "search.train.warmup_epochs=0",
    "search.hyper.interval=2",
    "search.space.num_clusters=2",
]


def tiny(out: Path, *extra: str) -> list[str]:
    """CLI arguments of a tiny search/train on the gaussians-cpu preset, ``--quiet``."""
    return ["--preset", "gaussians-cpu", "--set", *TINY, *extra, "--out", str(out), "--quiet"]


def one_line(err: str) -> str:
    """The one line of an error message (fails on a traceback or several lines)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
