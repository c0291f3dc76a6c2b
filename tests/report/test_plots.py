"""Every figure is a non-empty PNG with the expected content; reports embed them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autobalance.report import markdown, plots
from autobalance.runs import RunDir, trajectory_csv

PNG = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path, min_size: tuple[int, int] = (300, 200)) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG
    with Image.open(path) as im:
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5  # not a blank canvas
    return pixels


def trajectory_rows(k: int = 4, epochs: int = 5) -> list[dict]:
    rows = []
    for e in range(-1, epochs):
        phase = "init" if e < 0 else ("warmup" if e < 2 else "search")
        for c in range(k):
            rows.append(
                {
                    "epoch": e,
                    "phase": phase,
                    "class": c,
                    "group": None,
                    "cluster": c // 2,
                    "w": 1.0,
                    "l": -c - 0.1 * max(e, 0),
                    "delta": 1.0 - 0.02 * c * max(e, 0),
                }
            )
    return rows


def test_alpha_trajectory(tmp_path: Path) -> None:
    out = plots.plot_alpha_trajectory(
        trajectory_rows(), tmp_path / "a.png", cluster_counts={0: 100, 1: 10}
    )
    check_png(out)
    with pytest.raises(ValueError, match="empty"):
        plots.plot_alpha_trajectory([], tmp_path / "b.png")


def test_per_class_accuracy(tmp_path: Path) -> None:
    counts = [100, 40, 10, 3]
    accs = {"ce": [0.99, 0.9, 0.5, 0.1], "la": [0.97, 0.92, 0.7, 0.5]}
    out = plots.plot_per_class_accuracy(
        counts, accs, tmp_path / "p.png", stds={"ce": [0.0, 0.01, 0.1, 0.05]}
    )
    check_png(out)
    with pytest.raises(ValueError, match="3 accuracies for 4 classes"):
        plots.plot_per_class_accuracy(counts, {"x": [1, 1, 1]}, tmp_path / "q.png")


def test_error_curves(tmp_path: Path) -> None:
    hist = [
        {
            "phase": "warmup" if e < 2 else "search",
            "epoch": e,
            "train_loss": 1 / (e + 1),
            "val/balanced_error": 0.5 - 0.05 * e,
            "test/balanced_error": 0.55 - 0.05 * e,
        }
        for e in range(5)
    ]
    hist += [
        {
            "phase": "retrain",
            "epoch": e,
            "train_loss": 1 / (e + 1),
            "test/balanced_error": 0.5 - 0.06 * e,
        }
        for e in range(5)
    ]
    check_png(plots.plot_error_curves(hist, tmp_path / "e.png"))


def test_pareto(tmp_path: Path) -> None:
    points = [
        {"label": f"λ={lam}", "method": "ce_deo", "error": 0.1 + lam / 5, "deo": 0.3 - lam / 4}
        for lam in (0.0, 0.4, 0.8)
    ]
    points.append({"label": "ce", "method": "ce", "error": 0.3, "deo": 0.3, "balanced_error": 0.0})
    check_png(plots.plot_pareto(points, tmp_path / "f.png"))
    with pytest.raises(ValueError, match="no run has finite"):
        plots.plot_pareto([{"label": "x", "error": 0.1}], tmp_path / "g.png")


def fake_run(root: Path, method: str, seed: int, counts: list[int]) -> RunDir:
    run = RunDir.create(root / f"{method}-seed{seed}")
    (run.path / "config.yaml").write_text("{}\n")
    errs = [0.05 * k + 0.01 * seed for k in range(len(counts))]
    summary = {
        "method": method,
        "name": "t",
        "dataset": "d",
        "model": "m",
        "seed": seed,
        "seconds": 1.0 + seed,
        "class_counts": counts,
        "class_names": [],
        "test": {
            "error": float(np.mean(errs)),
            "balanced_error": float(np.mean(errs)),
            "worst_class_error": max(errs),
            "class_errors": errs,
        },
    }
    run.write_json("summary.json", summary)
    hist = [
        {
            "phase": "train",
            "epoch": e,
            "train_loss": 1.0 / (e + 1),
            "test/balanced_error": 0.5 / (e + 1),
        }
        for e in range(3)
    ]
    run.write_records("metrics.jsonl", hist)
    if method == "autobalance":
        traj = [
            {
                "phase": "init" if e < 0 else "search",
                "epoch": e,
                "weight": [1.0] * len(counts),
                "additive": [-float(k) for k in range(len(counts))],
                "multiplicative": [1.0 - 0.01 * k * (e + 1) for k in range(len(counts))],
            }
            for e in range(-1, 3)
        ]
        (run.path / "alpha_trajectory.csv").write_text(trajectory_csv(traj, range(len(counts))))
    return run


def test_run_report_embeds_existing_pngs(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "autobalance", 0, [50, 10, 2])
    text = markdown.write_run_report(run).read_text()
    for png in ("error_curves.png", "alpha_trajectory.png", "per_class_accuracy.png"):
        assert f"]({png})" in text
        check_png(run.path / png)
    assert "| balanced error | 0.050 |" in text  # mean of (0, 0.05, 0.1)


def test_reports_say_when_matplotlib_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(plots, "plots_available", lambda: False)
    run = fake_run(tmp_path, "ce", 0, [50, 10, 2])
    text = markdown.write_run_report(run).read_text()
    assert "matplotlib is not installed" in text and ".png" not in text


def test_comparison_report_aggregates_over_seeds(tmp_path: Path) -> None:
    counts = [50, 10, 2]
    summaries, dirs = {}, {}
    for m in ("ce", "autobalance"):
        for seed in (0, 1):
            run = fake_run(tmp_path / "runs", m, seed, counts)
            summaries.setdefault(m, []).append(json.loads((run.path / "summary.json").read_text()))
            dirs.setdefault(m, []).append(run.path)
    path = markdown.write_comparison_report(tmp_path / "report.md", summaries, dirs, title="T")
    text = path.read_text()
    # balanced errors 0.05 and 0.06 over the seeds: mean 0.055, sample std 0.00707
    assert "| ce | 0.055 ± 0.007 |" in text
    assert "[ce-seed1](runs/ce-seed1/report.md)" in text
    for png in (
        "per_class_accuracy.png",
        "alpha_trajectory_autobalance.png",
        "error_curves.png",
    ):
        check_png(tmp_path / png)
    agg = markdown.aggregate(summaries)
    np.testing.assert_allclose(agg["ce"]["class_accuracy"]["mean"], [0.995, 0.945, 0.895])
    np.testing.assert_allclose(agg["ce"]["class_accuracy"]["std"], [np.std([0, 0.01], ddof=1)] * 3)
