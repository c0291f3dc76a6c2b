"""`autobalance compare` refuses runs on different data (unless --force) and flags different
budgets; it states the θ-epochs each run trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from cli_helpers import one_line

from autobalance.cli import main
from autobalance.report.tables import budget_mismatch, dataset_identity, dataset_mismatch


def config(
    *, rho: float = 10.0, seed: int = 0, data_seed: int | None = None, epochs: int = 4, **kw: Any
) -> dict[str, Any]:
    return {
        "dataset": {
            "name": kw.get("dataset", "gaussians_lt"),
            "imbalance_ratio": rho,
            "seed": data_seed,
            "options": kw.get("options", {"num_classes": 3}),
            "path": None,
        },
        "model": {"name": kw.get("model", "mlp"), "hidden": [16], "options": {}},
        "search": {"seed": seed, "retrain": True, "train": {"epochs": epochs}},
    }


def make_run(root: Path, name: str, method: str, cfg: dict[str, Any]) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {
        "method": method,
        "seed": cfg["search"]["seed"],
        "seconds": 1.0,
        "test": {"balanced_error": 0.25, "error": 0.2, "worst_class_error": 0.5},
    }
    (path / "summary.json").write_text(json.dumps(summary))
    phases = ["search"] * 4 + ["retrain"] * 4 if method == "autobalance" else ["train"] * 4
    records = [
        json.dumps({"phase": p, "epoch": i % 4, "train_loss": 1.0}) for i, p in enumerate(phases)
    ]
    (path / "metrics.jsonl").write_text("\n".join(records) + "\n")
    return path


def test_data_identity_uses_the_search_seed_when_the_dataset_has_none() -> None:
    assert dataset_identity(config(seed=3))["data seed"] == 3
    assert dataset_identity(config(seed=3, data_seed=7))["data seed"] == 7
    labels, methods = ["a", "b"], ["ce", "la"]
    assert dataset_mismatch([config(), config()], labels, methods) is None
    why = dataset_mismatch([config(), config(rho=100)], labels, methods)
    assert why is not None and "imbalance ratio (a: 10.0; b: 100)" in why
    # seeds × methods grid: fine; a method meeting other data than its rival: refused
    grid = [config(seed=0), config(seed=0), config(seed=1), config(seed=1)]
    assert dataset_mismatch(grid, list("abcd"), ["ce", "la", "ce", "la"]) is None
    assert "data seed 0: ce; data seed 1: la" in str(dataset_mismatch(grid[1:3], labels, methods))
    budgets = budget_mismatch([config(), config(epochs=8, model="resnet8")], labels, methods)
    assert [b.split(" (")[0] for b in budgets] == ["model", "epochs"]


def test_compare_refuses_different_datasets_unless_forced(tmp_path: Path, capsys) -> None:
    a = make_run(tmp_path, "ab", "autobalance", config())
    b = make_run(tmp_path, "ce-rho100", "ce", config(rho=100, options={"num_classes": 4}))
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("autobalance compare: error: runs are on different datasets: options")
    assert "imbalance ratio (ab: 10.0; ce-rho100: 100)" in err and "--force" in err
    assert main(["compare", str(a), str(b), "--force"]) == 0
    captured = capsys.readouterr()
    assert "warning (--force): runs are on different datasets" in captured.err
    assert "note: NOT the same data (--force)" in captured.out


def test_compare_flags_budgets_and_states_epochs(tmp_path: Path, capsys) -> None:
    a = make_run(tmp_path, "ab", "autobalance", config())
    b = make_run(tmp_path, "ce-long", "ce", config(epochs=8, model="resnet8"))
    c = make_run(tmp_path, "ce", "ce", config())
    capsys.readouterr()
    assert main(["compare", str(a), str(c)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "note:" not in captured.out
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines()[2:]}
    assert captured.out.split("\n")[0].split()[-1] == "θ-epochs"
    assert rows["ab"][-1] == "8" and rows["ce"][-1] == "4"  # search 4 + retrain 4 against 4
    assert main(["compare", str(a), str(b), "--markdown"]) == 0
    captured = capsys.readouterr()
    warning = one_line(captured.err)
    assert warning.startswith("autobalance compare: warning: different budgets: model (ab: ")
    assert "epochs (ab: 4; ce-long: 8)" in warning
    assert "\nnote: different budgets: " in captured.out


def test_compare_over_seeds(tmp_path: Path, capsys) -> None:
    for seed in (0, 1):
        for m in ("ce", "la"):
            make_run(tmp_path / "grid", f"{m}-seed{seed}", m, config(seed=seed))
        make_run(tmp_path / "one", f"ce-seed{seed}", "ce", config(seed=seed))
    capsys.readouterr()
    for folder in ("grid", "one"):  # every data seed has the same methods
        assert main(["compare", str(tmp_path / folder)]) == 0
        assert "note: data seeds 0, 1, each with the same methods" in capsys.readouterr().out
    pair = [str(tmp_path / "grid" / "ce-seed0"), str(tmp_path / "grid" / "la-seed1")]
    assert main(["compare", *pair]) == 2
    assert "different data seeds" in one_line(capsys.readouterr().err)
