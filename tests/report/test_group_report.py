"""Reports of grouped (class, group) runs: cell heat-map, DEO / worst-group curves, cell table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_plots import PNG, fake_run

from autobalance.report import cell_rows, markdown, plots
from autobalance.runs import RunDir, trajectory_csv

# K = 3 classes, G = 2 groups; cell (b, minority) has no test samples
CELLS = [[0.1, 0.3], [0.05, math.nan], [0.2, 0.25]]
COUNTS = [[100, 10], [50, 5], [20, 2]]
DEO = 0.2 + 0.05  # Σ_k (max_g − min_g), class b skipped (one non-empty cell)
WORST = 0.3


def assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == PNG


def group_history() -> list[dict]:
    hist = []
    for e in range(4):
        hist.append(
            {
                "phase": "warmup" if e < 1 else "search",
                "epoch": e,
                "train_loss": 1 / (e + 1),
                "val/deo": 0.4 - 0.05 * e,
                "val/worst_group_error": 0.5 - 0.04 * e,
                "val/error": 0.3 - 0.03 * e,
                "test/deo": 0.45 - 0.05 * e,
                "test/worst_group_error": 0.55 - 0.04 * e,
                "test/error": 0.32 - 0.03 * e,
                "test/balanced_error": 0.35 - 0.03 * e,
            }
        )
    for e in range(3):
        hist.append(
            {
                "phase": "retrain",
                "epoch": e,
                "train_loss": 1 / (e + 1),
                "test/deo": 0.3 - 0.02 * e,
                "test/worst_group_error": 0.4 - 0.03 * e,
                "test/error": None if e == 0 else 0.2 - 0.01 * e,  # a missing value
                "test/balanced_error": 0.25 - 0.02 * e,
            }
        )
    return hist


def alpha_tables() -> dict[str, list[list[float]]]:
    return {
        "weight": [[1.0, 1.5], [1.0, 2.0], [1.25, 3.0]],
        "additive": [[0.0, -0.5], [-0.25, -1.0], [-0.75, -2.0]],
        "multiplicative": [[1.0, 0.9], [0.95, 0.8], [0.85, 0.7]],
    }


def grouped_run(root: Path, *, searched: bool = True) -> RunDir:
    run = RunDir.create(root / ("autobalance" if searched else "ce"))
    (run.path / "config.yaml").write_text("{}\n")
    summary = {
        "method": "autobalance" if searched else "ce",
        "kind": "search" if searched else "train",
        "name": "g",
        "dataset": "d",
        "model": "m",
        "seed": 0,
        "seconds": 2.0,
        "class_counts": [110, 55, 22],
        "class_names": ["a", "b", "c"],
        "group_counts": COUNTS,
        "group_names": ["majority", "minority"],
        "test": {
            "error": 0.12,
            "balanced_error": 0.18,
            "worst_class_error": 0.225,
            "class_errors": [0.2, 0.05, 0.225],
            "group_balanced_error": float(np.nanmean(CELLS)),
            "worst_group_error": WORST,
            "deo": DEO,
            "cell_errors": CELLS,  # NaN → null in summary.json, as a real run writes it
            "empirical_error": 0.15,
        },
    }
    if searched:
        summary["alpha"] = alpha_tables()
        summary["hyper_steps"] = {"applied": 3, "skipped": 0}
        traj = [
            {
                "phase": "init" if e < 0 else "search",
                "epoch": e,
                "weight": [[1.0, 1.0]] * 3,
                "additive": [[-0.1 * (e + 1) * g for g in range(2)]] * 3,
                "multiplicative": [[1.0 - 0.02 * (e + 1) * g for g in range(2)]] * 3,
            }
            for e in range(-1, 3)
        ]
        (run.path / "alpha_trajectory.csv").write_text(trajectory_csv(traj, [0, 1] * 3))
    run.write_json("summary.json", summary)
    run.write_records("metrics.jsonl", group_history())
    return run


def test_cell_heatmap_is_a_png_and_survives_nan(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = plots.plot_cell_errors(
        CELLS,
        tmp_path / "cells.png",
        counts=COUNTS,
        class_names=["a", "b", "c"],
        group_names=["majority", "minority"],
    )
    assert_png(out)
    # None (a NaN read back from summary.json) and a table with no finite cell at all
    assert_png(plots.plot_cell_errors([[0.1, None], [None, 0.4]], tmp_path / "none.png"))
    assert_png(plots.plot_cell_errors([[math.nan, math.nan]], tmp_path / "all_nan.png"))
    with pytest.raises(ValueError, match="counts have shape"):
        plots.plot_cell_errors(CELLS, tmp_path / "x.png", counts=[[1, 2]])
    with pytest.raises(ValueError, match="2 names for 3 classes"):
        plots.plot_cell_errors(CELLS, tmp_path / "y.png", class_names=["a", "b"])


def test_group_curves_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert_png(plots.plot_group_curves(group_history(), tmp_path / "g.png"))
    test_only = [{k: v for k, v in r.items() if not k.startswith("val/")} for r in group_history()]
    assert_png(plots.plot_group_curves(test_only, tmp_path / "t.png"))
    with pytest.raises(ValueError, match="empty"):
        plots.plot_group_curves([], tmp_path / "e.png")
    with pytest.raises(ValueError, match="no split has DEO"):
        plots.plot_group_curves([{"phase": "train", "test/error": 0.1}], tmp_path / "n.png")


def test_cell_rows_of_a_searched_run(tmp_path: Path) -> None:
    summary = grouped_run(tmp_path).read_json("summary.json")
    headers, rows = cell_rows(summary)
    assert headers == ["class", "group", "train samples", "test error", "w", "l", "Δ"]
    assert len(rows) == 6
    assert rows[1] == ["a", "minority", 10, 0.3, 1.5, -0.5, 0.9]
    assert rows[3] == ["b", "minority", 5, None, 2.0, -1.0, 0.8]  # no test samples
    del summary["group_counts"], summary["alpha"]
    headers, rows = cell_rows(summary)
    assert headers == ["class", "group", "test error"]
    assert rows[4] == ["c", "majority", 0.2]


def test_grouped_report_has_the_cell_table_and_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = grouped_run(tmp_path)
    text = markdown.write_run_report(run).read_text()
    assert "## Per (class, group) cell" in text
    assert "| class | group | train samples | test error | w | l | Δ |" in text
    assert "| a | majority | 100 | 0.100 | 1.000 | 0.000 | 1.000 |" in text
    assert "| a | minority | 10 | 0.300 | 1.500 | -0.500 | 0.900 |" in text
    assert "| b | minority | 5 | n/a | 2.000 | -1.000 | 0.800 |" in text
    assert "| c | minority | 2 | 0.250 | 3.000 | -2.000 | 0.700 |" in text
    assert "(eq. 4.1) = 0.250" in text and "= 0.300." in text
    assert "| empirical error | 0.150 |" in text
    for png in ("cell_errors.png", "group_curves.png", "alpha_trajectory.png"):
        assert f"]({png})" in text
        assert_png(run.path / png)


def test_grouped_train_run_has_no_alpha_columns(tmp_path: Path) -> None:
    run = grouped_run(tmp_path, searched=False)
    text = markdown.write_run_report(run, figures=False).read_text()
    assert "| class | group | train samples | test error |\n" in text
    assert "| c | majority | 20 | 0.200 |" in text


def test_class_only_report_has_no_cell_section(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = fake_run(tmp_path, "autobalance", 0, [50, 10, 2])
    text = markdown.write_run_report(run).read_text()
    assert "Per (class, group) cell" not in text
    assert "empirical error" not in text
    assert "cell_errors.png" not in text and "group_curves.png" not in text
    assert not (run.path / "cell_errors.png").exists()
    assert not (run.path / "group_curves.png").exists()
