"""torchrun / DDP on CPU with gloo: 2 processes give the α trajectory of 1 process with the same
global batch (per-sample-mean validation objective, batch and S_V shares of equal size)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")

# 4 classes, 64 per class at most (imbalance 4): S_T / S_V and every batch split evenly by 2
SETTINGS = [
    "dataset.options={num_classes: 4, dim: 8, n_max: 64, n_test_per_class: 25}",
    "dataset.imbalance_ratio=4",
    "model.hidden=[16]",
    "search.train.epochs=3",
    "search.train.batch_size=32",
    "search.train.warmup_epochs=0",
    "search.hyper.interval=2",
    "search.hyper.val_sampling=uniform",
    "search.space.num_clusters=2",
    "search.objective=ce",
]
TOLERANCE = 1e-4  # float sums in another order (DDP's all-reduce of the θ-gradients)


def _run(
    out: Path, procs: int, *, fault: str | None = None, resume: bool = False
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m"]
    if procs > 1:
        cmd += ["torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m"]
    cmd += ["autobalance", "search"]
    if resume:
        cmd += ["--resume"]
    else:
        cmd += ["--preset", "gaussians-cpu", "--set", *SETTINGS]
    cmd += ["--out", str(out), "--quiet", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("AUTOBALANCE_FAULT", None)
    if fault is not None:
        env["AUTOBALANCE_FAULT"] = fault  # every rank SIGKILLs itself there (checkpoint.py)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)


def _trajectory(path: Path) -> list[list[float]]:
    with open(path / "alpha_trajectory.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [[float(r["l"]), float(r["delta"])] for r in rows]


def test_two_processes_match_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = _run(one, 1)
    assert r1.returncode == 0, r1.stderr
    r2 = _run(two, 2)
    assert r2.returncode == 0, r2.stderr
    a, b = _trajectory(one), _trajectory(two)
    assert len(a) == len(b) > 0
    assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) < TOLERANCE
    s1 = json.loads((one / "summary.json").read_text())
    s2 = json.loads((two / "summary.json").read_text())
    assert s1["hyper_steps"] == s2["hyper_steps"]
    # rank 0 alone wrote the run directory: one config, one checkpoint folder
    assert (two / "config.yaml").is_file() and (two / "checkpoints" / "last.pt").is_file()
    assert not list(tmp_path.glob("two*/*rank*"))
    # killed at the end of search epoch 2 (before its checkpoint), then resumed by 2 processes
    # from rank 0's checkpoint: the same α trajectory as the run that was not interrupted
    killed = tmp_path / "killed"
    assert _run(killed, 2, fault="search:epoch:2").returncode != 0
    r3 = _run(killed, 2, resume=True)
    assert r3.returncode == 0, r3.stderr
    c = _trajectory(killed)
    assert len(c) == len(b)
    assert max(abs(x - y) for rb, rc in zip(b, c) for x, y in zip(rb, rc)) < 1e-6
