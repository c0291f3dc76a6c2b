"""`autobalance sweep`, `reproduce table3 / fig5`, the weighted standard error and the guard's
score for the fairness objectives: tiny Waterbirds-like runs (seconds)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line

from autobalance.cli import main
from autobalance.experiment import ExperimentConfig, build_experiment
from autobalance.guard import guard_score, guard_score_name
from autobalance.presets import load_config
from autobalance.reproduce import REPRODUCTIONS, display
from autobalance.runs import RunDir
from autobalance.sweep import (
    aggregate_points,
    dominance,
    front_labels,
    make_sweep_plan,
    parse_search_label,
    sweep_methods,
)

# Waterbirds-like features shrunk to seconds: 600 training rows, 64-d, 2 epochs.
TINY = [
    "dataset.options={n: 600, dim: 64, n_test_per_cell: 50, core_dim: 8, spurious_dim: 8}",
    "search.train.epochs=2",
    "search.hyper.interval=4",
]


def test_sweep_methods_labels_and_overrides() -> None:
    labels, overrides = sweep_methods([0, 0.5, 1], ["ce_deo", "group_la"], ["group_dro"])
    assert labels == (
        "autobalance+lam0",
        "autobalance+lam0.5",
        "autobalance+lam1",
        "ce",  # every blend at λ = 0 is plain CE: one point
        "ce_deo@0.5",
        "ce_deo@1",
        "group_la@0.5",
        "group_la@1",
        "group_dro",
    )
    assert overrides["autobalance+lam0.5"] == (
        "search.objective=ce_deo",
        "search.objective_lam=0.5",
    )
    assert parse_search_label("autobalance+lam0.5") == 0.5
    assert parse_search_label("ce_deo@0.5") is None
    assert display("ce_deo@0.9") == "0.1·CE + 0.9·CE_deo"
    assert display("autobalance+lam0.1") == "AutoBalance (λ_val = 0.1)"
    for bad, match in (
        (dict(lams=[1.5]), r"\[0, 1\]"),
        (dict(lams=[0.5, 0.5]), "repeated"),
        (dict(lams=[]), "at least one"),
        (dict(regs=["nope"]), "unknown loss"),
        (dict(regs=["ce_deo@0.5"]), "not a blend"),
        (dict(val_objective="ce"), "validation objective"),
    ):
        with pytest.raises(ValueError, match=match):
            sweep_methods(**bad)  # type: ignore[arg-type]


def test_pareto_points_front_and_dominance() -> None:
    tests = {
        "autobalance+lam0.1": [{"error": 0.10, "deo": 0.05}, {"error": 0.12, "deo": 0.07}],
        "ce": [{"error": 0.08, "deo": 0.40}, {"error": 0.08, "deo": 0.40}],
        "ce_deo@0.9": [{"error": 0.15, "deo": 0.10}, {"error": 0.15, "deo": 0.10}],
        "group_dro": [{"error": 0.20, "deo": 0.02}, {"error": 0.20, "deo": 0.04}],
    }
    points = aggregate_points(tests, metrics=("error", "deo"))
    by = {p["label"]: p for p in points}
    assert by["autobalance+lam0.1"]["error"] == pytest.approx(0.11)
    assert by["autobalance+lam0.1"]["deo_std"] == pytest.approx(np.std([0.05, 0.07], ddof=1))
    assert by["ce_deo@0.9"]["lam"] == 0.9 and by["group_dro"]["lam"] is None
    # front of (error, deo): ce (lowest error), AutoBalance, Group DRO (lowest DEO); not the blend
    assert front_labels(points, "error", "deo") == ["ce", "autobalance+lam0.1", "group_dro"]
    assert dominance(points, "error", "deo") == {"autobalance+lam0.1": ["ce_deo@0.9"]}


def test_guard_score_follows_the_objective() -> None:
    m = {
        "error": 0.1,
        "balanced_error": 0.2,
        "deo": 0.3,
        "group_balanced_error": 0.4,
        "worst_group_error": 0.5,
    }
    assert guard_score(m, "balanced_ce") == 0.2
    assert guard_score(m, "ce") == 0.1
    assert guard_score(m, "ce_deo", 0.1) == pytest.approx(0.9 * 0.1 + 0.1 * 0.3)
    assert guard_score(m, "ce_deo") == pytest.approx(0.5 * 0.1 + 0.5 * 0.3)  # default λ
    assert guard_score(m, "group_balanced_ce") == 0.4
    assert guard_score(m, "worst_group") == 0.5
    assert guard_score_name("ce_deo", 0.1) == "0.9·error + 0.1·deo"


def test_weighted_standard_error_in_a_run(tmp_path: Path) -> None:
    # The test set is balanced over cells; `error` is Σ π_train(y,g) E_{y,g}, `empirical_error`
    # the plain rate; error_weights=test makes `error` the plain rate.
    out = tmp_path / "run"
    argv = ["train", "--preset", "waterbirds-like-cpu", "--loss", "ce_deo@0.9", "--quiet"]
    assert main([*argv, "--out", str(out), "--set", *TINY]) == 0
    s = RunDir.open(out).read_json("summary.json")
    counts = np.asarray(s["group_counts"], dtype=float)
    cells = np.asarray(s["test"]["cell_errors"], dtype=float)
    pi = counts / counts.sum()
    assert s["test"]["error"] == pytest.approx(float((pi * cells).sum()), rel=1e-9)
    assert s["test"]["empirical_error"] == pytest.approx(cells.mean(), rel=1e-9)
    out2 = tmp_path / "run2"
    extra = [*TINY, "error_weights=test"]
    assert main([*argv, "--out", str(out2), "--set", *extra]) == 0
    s2 = RunDir.open(out2).read_json("summary.json")
    assert s2["test"]["error"] == pytest.approx(s2["test"]["empirical_error"])
    with pytest.raises(ValueError, match="error_weights"):
        ExperimentConfig(error_weights="uniform")


def test_blend_labels_are_config_baselines() -> None:
    cfg = load_config(preset="waterbirds-like-cpu", overrides=["baselines=[ce, ce_deo@0.9]"])
    assert cfg.baselines == ("ce", "ce_deo@0.9")
    with pytest.raises(ValueError, match="REG@LAM"):
        load_config(preset="waterbirds-like-cpu", overrides=["baselines=[ce_deo@2]"])
    exp = build_experiment(load_config(preset="waterbirds-like-cpu", overrides=TINY))
    assert exp.test.error_weights is not None and exp.train.error_weights is None


def test_sweep_runs_table_plots_and_reuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--preset",
        "waterbirds-like-cpu",
        "--lams",
        "0",
        "1",
        "--regs",
        "ce_deo",
        "--fixed",
        "group_dro",
        "--seeds",
        "0",
        "1",
        "--out",
        str(out),
        "--quiet",
        "--threads",
        "1",
        "--set",
        *TINY,
    ]
    t0 = time.perf_counter()
    assert main(argv) == 0
    assert time.perf_counter() - t0 < 30
    printed = capsys.readouterr().out
    assert "0·CE + 1·CE_deo" in printed and "Group DRO" in printed
    results = json.loads((out / "results.json").read_text())
    labels = [p["label"] for p in results["results"]["points"]]
    assert labels == ["autobalance+lam0", "autobalance+lam1", "ce", "ce_deo@1", "group_dro"]
    for p in results["results"]["points"]:
        assert len(p["deo_values"]) == 2 and 0 <= p["error"] <= 1
    for name in ("pareto_deo_vs_error.png", "pareto_group_balanced_error_vs_error.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pareto_deo_vs_error.png" in (out / "report.md").read_text()
    assert len(list((out / "runs").iterdir())) == 5 * 2
    # the front is among the points and the table marks it
    front = results["results"]["fronts"]["deo_vs_error"]
    assert front and set(front) <= set(labels)
    # a second call reuses every finished run
    argv_again = [a for a in argv if a != "--quiet"]
    assert main(argv_again) == 0
    assert capsys.readouterr().out.count("(reused") == 10


def test_sweep_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--preset", "gaussians-cpu", "--out", str(tmp_path / "x")]) == 2
    assert "has no groups" in one_line(capsys.readouterr().err)
    assert main(["sweep", "--preset", "waterbirds-like-cpu", "--lams", "2"]) == 2
    assert "[0, 1]" in one_line(capsys.readouterr().err)
    assert main(["sweep"]) == 2
    assert "--preset" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "x").exists()
    assert main(["sweep", "--preset", "waterbirds-like-cpu", "--dry-run"]) == 0
    assert "AutoBalance (λ_val = 0.1)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exactly one"):
        make_sweep_plan()


def test_table3_and_fig5_registry() -> None:
    t3 = REPRODUCTIONS["table3"]
    assert t3.methods == (
        "ce",
        "ce_bal_group",
        "group_la",
        "ce_deo",
        "ce_deo@0.9",
        "group_dro",
        "autobalance",
    )
    # Table 3 as rebuilt in ../shared/paper/README.md (DEO, balanced error, worst cell)
    pv = t3.paper_value("autobalance", "deo")
    assert pv is not None and pv.value == 4.25
    pv = t3.paper_value("group_dro", "group_balanced_error")
    assert pv is not None and pv.value == 16.47
    pv = t3.paper_value("ce_deo@0.9", "worst_group_error")
    assert pv is not None and pv.value == 31.67
    overrides = list(t3.method_overrides["autobalance"])
    cfg = load_config(preset="waterbirds-like-cpu", overrides=overrides)
    assert cfg.search.objective == "ce_deo" and cfg.search.objective_lam == 0.1
    f5 = REPRODUCTIONS["fig5"]
    assert "autobalance+lam0.1" in f5.methods and "ce_bal_group@0.5" in f5.methods
    assert f5.method_overrides["autobalance+lam0.9"][1] == "search.objective_lam=0.9"


def test_reproduce_table3_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t3"
    argv = ["reproduce", "table3", "--out", str(out), "--quiet", "--threads", "1"]
    argv += ["--methods", "ce", "ce_deo@0.9", "autobalance", "--set", *TINY]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "33.75" in printed and "4.25" in printed  # the paper's CE and AutoBalance DEO
    res = json.loads((out / "results.json").read_text())
    ours = res["results"]["methods"]["autobalance"]["ours"]["deo"]
    assert ours["n"] == 1 and 0 <= ours["mean"] <= 2
