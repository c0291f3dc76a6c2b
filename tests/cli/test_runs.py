"""Run-directory files and the callbacks that write them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from autobalance.runs import (
    MetricsWriter,
    RunDir,
    read_trajectory,
    to_jsonable,
    trajectory_csv,
)


def test_to_jsonable_makes_strict_json() -> None:
    obj = {"a": torch.tensor([1.0, math.nan]), "b": np.float32(2.5), "c": (math.inf, 1)}
    out = to_jsonable(obj)
    assert out == {"a": [1.0, None], "b": 2.5, "c": [None, 1]}
    json.dumps(out, allow_nan=False)


def test_trajectory_csv_rows_per_class_and_per_cell(tmp_path: Path) -> None:
    traj = [
        {
            "phase": "init",
            "epoch": -1,
            "weight": [1.0, 1.0],
            "additive": [-0.5, -1.5],
            "multiplicative": [1.0, 1.0],
        },
        {
            "phase": "search",
            "epoch": 0,
            "weight": [1.0, 2.0],
            "additive": [-0.25, -2.0],
            "multiplicative": [0.9, 1.1],
        },
    ]
    text = trajectory_csv(traj, [0, 1])
    assert text.splitlines()[3] == "0,search,0,,0,1,-0.25,0.9"
    path = tmp_path / "t.csv"
    path.write_text(text)
    rows = read_trajectory(path)
    assert len(rows) == 4 and rows[3] == {
        "epoch": 0,
        "phase": "search",
        "class": 1,
        "group": None,
        "cluster": 1,
        "w": 2.0,
        "l": -2.0,
        "delta": 1.1,
    }
    cells = [
        {
            "phase": "search",
            "epoch": 3,
            "weight": [[1.0, 2.0], [3.0, 4.0]],
            "additive": [[0.0, 0.1], [0.2, 0.3]],
            "multiplicative": [[1.0, 1.0], [1.0, 1.0]],
        }
    ]
    path.write_text(trajectory_csv(cells, [0, 1, 2, 3]))
    rows = read_trajectory(path)
    # cell (k, g) is flat index k·G + g, its cluster read from that index
    assert [(r["class"], r["group"], r["cluster"], r["w"]) for r in rows] == [
        (0, 0, 0, 1.0),
        (0, 1, 1, 2.0),
        (1, 0, 2, 3.0),
        (1, 1, 3, 4.0),
    ]


def test_metrics_writer_appends_one_line_per_event(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r")
    w = MetricsWriter(run)
    w.on_epoch_end(
        "search",
        0,
        {
            "phase": "warmup",
            "epoch": 0,
            "train_loss": 1.0,
            "alpha": {"weight": [1.0]},
            "test/deo": math.nan,
        },
    )
    w.on_epoch_end("search", 1, {"phase": "search", "epoch": 1, "train_loss": 0.5})
    w.on_hyper_step("search", 20, {"applied": True, "hypergrad_norm": 0.1})
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"phase": "warmup", "epoch": 0, "train_loss": 1.0, "test/deo": None},
        {"phase": "search", "epoch": 1, "train_loss": 0.5},
    ]
    assert json.loads((run.path / "hyper_steps.jsonl").read_text()) == {
        "phase": "search",
        "step": 20,
        "applied": True,
        "hypergrad_norm": 0.1,
    }


def test_run_dir_refuses_to_clobber_a_run(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r")
    (run.path / "config.yaml").write_text("{}\n")
    with pytest.raises(ValueError, match="already holds a run"):
        RunDir.create(tmp_path / "r")
    assert RunDir.create(tmp_path / "r", resume=True).path == run.path
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        RunDir.create(tmp_path / "other", resume=True)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        RunDir.open(tmp_path / "other")


def test_model_is_saved_atomically_and_reloads_weights_only(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r")
    model = torch.nn.Linear(3, 2)
    run.save_model(model)
    state = torch.load(run.path / "model.pt", weights_only=True)
    assert torch.equal(state["weight"], model.weight.detach())
    assert [p.name for p in run.path.iterdir()] == ["model.pt"]  # no temp file left behind
