"""Long-tail views of the reports: α changes per cluster (head → tail), error curves broken at the
θ reset with a hyper-step panel, confusion matrix by class frequency, many / medium / few-shot
accuracy, and each method's compute."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_plots import check_png, fake_run

from autobalance.report import markdown, plots
from autobalance.report.tables import (
    describe_epochs,
    epochs_trained,
    shot_accuracy,
    shot_label,
    shot_split,
)


def alpha_rows(counts_by_cell: dict[tuple[int, int | None], int], epochs: int = 4) -> list[dict]:
    """A trajectory with one cluster per cell (a "full" space: cluster id ≠ frequency rank);
    l of a cell moves by −0.001·(epoch) for its cluster id, from a large init offset."""
    rows = []
    cells = sorted(counts_by_cell, key=lambda c: (c[0], -1 if c[1] is None else c[1]))
    for e in range(-1, epochs):
        phase = "init" if e < 0 else ("warmup" if e < 1 else "search")
        for cid, (k, g) in enumerate(cells):
            rows.append(
                {
                    "epoch": e,
                    "phase": phase,
                    "class": k,
                    "group": g,
                    "cluster": cid,
                    "w": 1.0,
                    "l": -4.0 + cid - 0.001 * cid * max(e, 0),
                    "delta": 1.0 + 1e-5 * max(e, 0),
                }
            )
    return rows


def test_alpha_series_are_changes_since_the_init() -> None:
    rows = alpha_rows({(0, None): 50, (1, None): 10, (2, None): 2})
    xs, series, phases = plots._cluster_series(rows, "l")
    assert xs == [0, 1, 2, 3, 4] and phases[0] == "init"
    np.testing.assert_allclose(series[2], [0, 0, -0.002, -0.004, -0.006], atol=1e-12)
    xs, absolute, _ = plots._cluster_series(rows, "l", relative=False)
    assert absolute[2][0] == pytest.approx(-2.0)
    assert not plots._moves(rows, "w") and plots._moves(rows, "delta")


def test_alpha_colours_follow_the_counts_of_group_cells() -> None:
    # cells (class, group) → clusters 0..3 by cell index, not by frequency
    counts = {(0, 0): 14, (0, 1): 264, (1, 0): 876, (1, 1): 46}
    summary = {"class_counts": [278, 922], "group_counts": [[14, 264], [876, 46]]}
    rows = alpha_rows(counts)
    cl = markdown.cluster_counts(rows, summary)
    assert cl == {0: 14.0, 1: 264.0, 2: 876.0, 3: 46.0}
    order, colour, _, _ = plots._cluster_colours(sorted(cl), cl)
    assert order == [2, 1, 3, 0]  # head → tail
    # viridis_r on log counts: the head is darker (lower luminance) than the tail
    lum = {c: 0.3 * colour[c][0] + 0.6 * colour[c][1] + 0.1 * colour[c][2] for c in cl}
    assert lum[2] < lum[1] < lum[3] < lum[0]
    # a group run whose α is per class: the class counts, not one group's cell
    per_class = alpha_rows({(0, None): 0, (1, None): 0})
    assert markdown.cluster_counts(per_class, summary) == {0: 278.0, 1: 922.0}


@pytest.mark.parametrize("n_cells", [4, 30])
def test_alpha_plot_for_any_number_of_clusters(tmp_path: Path, n_cells: int) -> None:
    counts = {(k, None): int(500 * 0.9**k) for k in range(n_cells)}
    rows = alpha_rows(counts)
    rows += [dict(r, phase="final", epoch=4) for r in rows if r["epoch"] == -1]  # a fallback
    cl = {c: float(n) for c, n in enumerate(counts.values())}
    check_png(plots.plot_alpha_trajectory(rows, tmp_path / "a.png", cluster_counts=cl))
    check_png(plots.plot_alpha_trajectory(rows, tmp_path / "b.png"))  # no counts: ids


def curve_history() -> list[dict]:
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
        {"phase": "retrain", "epoch": e, "train_loss": 1 / (e + 1), "test/balanced_error": 0.5}
        for e in range(4)
    ]
    return hist


def hyper_records() -> list[dict]:
    out = []
    for e in (2, 3, 4):
        for i in range(3):
            applied = not (e == 3 and i == 1)
            rec = {"phase": "search", "epoch": e, "step": 10 * e + 3 * (i + 1), "applied": applied}
            rec |= {"val_loss": 1.0 - 0.05 * e, "hypergrad_norm": 0.1 * (i + 1)} if applied else {}
            rec |= {"spike_clipped": e == 4 and i == 2}
            out.append(rec)
    return out


def test_error_curves_break_at_the_theta_reset(tmp_path: Path) -> None:
    hist = curve_history()
    assert plots._segments(hist) == [(0, 5), (5, 9)]  # warm-up + search, then retrain
    x = plots._hyper_x(hist, hyper_records())
    # search epoch 2 is the 3rd record: its hyper-steps spread over [2.5, 3.5]
    np.testing.assert_allclose(x[:3], [2.5 + 1 / 6, 3.0, 3.5 - 1 / 6])
    assert math.isnan(plots._hyper_x(hist, [{"epoch": 9}])[0])
    check_png(plots.plot_error_curves(hist, tmp_path / "e.png", hyper_steps=hyper_records()))
    both = {"ce": hist[5:], "autobalance": hist}
    out = plots.plot_error_curves(
        both, tmp_path / "f.png", hyper_steps={"autobalance": hyper_records(), "ce": []}
    )
    check_png(out)


def test_confusion_matrix_is_row_normalised_and_ordered(tmp_path: Path) -> None:
    conf = [[8, 2, 0], [1, 3, 0], [0, 0, 0]]
    norm = plots.normalized_confusion(conf)
    np.testing.assert_allclose(norm[:2], [[0.8, 0.2, 0.0], [0.25, 0.75, 0.0]])
    assert np.isnan(norm[2]).all()  # no test samples
    check_png(plots.plot_confusion_matrix(conf, [5, 100, 20], tmp_path / "c.png"))
    with pytest.raises(ValueError, match="2 class counts"):
        plots.plot_confusion_matrix(conf, [5, 100], tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"\(K, K\)"):
        plots.normalized_confusion([[1, 2]])


def test_shot_accuracy_uses_the_usual_split_and_custom_thresholds(tmp_path: Path) -> None:
    counts = [150, 101, 100, 50, 20, 19, 5]
    acc = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, None]
    out = shot_accuracy(counts, acc)
    assert out["many"] == {"accuracy": pytest.approx(0.85), "classes": 2}  # n > 100
    assert out["medium"] == {"accuracy": pytest.approx(0.6), "classes": 3}  # 20 ≤ n ≤ 100
    assert out["few"] == {"accuracy": pytest.approx(0.4), "classes": 2}  # n < 20, None skipped
    custom = shot_accuracy(counts, acc, many=50, few=10)
    assert custom["many"]["classes"] == 3 and custom["few"]["classes"] == 1
    assert math.isnan(shot_accuracy([5], [1.0])["many"]["accuracy"])
    assert shot_split(100) == "medium" and shot_label("few", few=10) == "few-shot (< 10)"
    with pytest.raises(ValueError, match="above"):
        shot_split(5, many=10, few=20)
    accs = {"ce": {"many": 0.9, "medium": 0.6, "few": math.nan}, "ab": out_acc(out)}
    check_png(plots.plot_shot_accuracy(accs, tmp_path / "s.png", stds={"ce": {"many": 0.01}}))


def out_acc(out: dict) -> dict:
    return {k: v["accuracy"] for k, v in out.items()}


def test_epochs_trained_counts_every_theta_epoch() -> None:
    hist = curve_history()  # warm-up 2, search 3, retrain 4
    assert epochs_trained(hist) == {"warmup": 2, "search": 3, "retrain": 4, "total": 9}
    full = epochs_trained(hist, {"reference": 1.0, "check": 2.0})
    assert full["reference"] == 3 and full["check"] == 5 and full["total"] == 17
    assert describe_epochs(full) == (
        "17 θ-epochs (warm-up 2 + search 3 + guard reference 3 + from-scratch check 5 + retrain 4)"
    )
    assert describe_epochs(epochs_trained([{"phase": "train"}] * 4)) == "4 θ-epochs"


def add_search_files(run_path: Path, counts: list[int]) -> None:
    """A confusion matrix, a search history and hyper-steps for a fake run."""
    summary = json.loads((run_path / "summary.json").read_text())
    k = len(counts)
    summary["test"]["confusion"] = (np.eye(k, dtype=int) * 8 + 1).tolist()
    summary["timings"] = {"search": 1.0, "retrain": 1.0, "reference": 0.5}
    summary["hyper_steps"] = {"applied": 8, "skipped": 1}
    (run_path / "summary.json").write_text(json.dumps(summary))
    hist = curve_history()
    (run_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hist))
    lines = "".join(json.dumps(r) + "\n" for r in hyper_records())
    (run_path / "hyper_steps.jsonl").write_text(lines)


def test_run_report_has_the_long_tail_views(tmp_path: Path) -> None:
    counts = [150, 50, 10]
    run = fake_run(tmp_path, "autobalance", 0, counts)
    add_search_files(run.path, counts)
    text = markdown.write_run_report(run, shot_thresholds=(100, 20)).read_text()
    assert "compute: 12 θ-epochs (warm-up 2 + search 3 + guard reference 3 + retrain 4)" in text
    assert ", 9 hyper-steps on α" in text
    assert "## Many / medium / few-shot test accuracy" in text
    assert "many-shot (> 100), 1 classes" in text and "few-shot (< 20), 1 classes" in text
    for png in ("confusion_matrix.png", "error_curves.png", "alpha_trajectory.png"):
        assert f"]({png})" in text
        check_png(run.path / png)
    old = fake_run(tmp_path / "old", "ce", 0, counts)  # no confusion in an older summary
    assert "not in summary.json" in markdown.write_run_report(old).read_text()


def test_comparison_report_states_compute_and_shots(tmp_path: Path) -> None:
    counts = [150, 50, 10]
    summaries: dict[str, list] = {}
    dirs: dict[str, list] = {}
    for m in ("ce", "autobalance"):
        for seed in (0, 1):
            run = fake_run(tmp_path / "runs", m, seed, counts)
            if m == "autobalance":
                add_search_files(run.path, counts)
            summaries.setdefault(m, []).append(json.loads((run.path / "summary.json").read_text()))
            dirs.setdefault(m, []).append(run.path)
    text = markdown.write_comparison_report(
        tmp_path / "report.md", summaries, dirs, title="T"
    ).read_text()
    assert "| time (s) | seeds | θ-epochs |" in text
    assert (
        "): ce 3 θ-epochs; autobalance 12 θ-epochs (warm-up 2 + search 3 + guard reference 3 + "
        "retrain 4), 9 hyper-steps on α." in text
    )
    # per-class accuracies 1 − (0.05 k + 0.01 seed): many-shot is class 0 → 1.0 and 0.99
    assert "| ce | 0.995 ± 0.007 | 0.945 ± 0.007 | 0.895 ± 0.007 |" in text
    for png in ("shot_accuracy.png", "error_curves.png"):
        check_png(tmp_path / png)
    agg = markdown.aggregate(summaries)
    assert agg["ce"]["shot_accuracy"]["few"]["mean"] == pytest.approx(0.895)
