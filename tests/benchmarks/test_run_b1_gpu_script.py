"""benchmarks/run_b1_gpu.sh: the prepared paper-scale B1 launcher, run at toy size on the CPU.

The script is run as the GPU session would run it (``NPZ=... bash run_b1_gpu.sh paper 0``),
with ``EXTRA`` shrinking every run (2 epochs, n_max 200, CPU, one hyper-step per θ-step), on a
fake lossy-JPEG npz in the upstream format (concatenated JPEG files + offsets) of 8×8 images,
so ResNet-32 stays cheap. It never reads ../shared/data.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "run_b1_gpu.sh"
PAPER_METHODS = ("ce", "la", "ldam_drw", "autobalance")


def _jpeg_blobs(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated JPEG bytes as uint8, int64 offsets of N + 1) for uint8 (N, H, W, 3)."""
    from PIL import Image

    blobs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=75)
        blobs.append(buf.getvalue())
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def write_fake_cifar10_jpeg(
    path: Path, per_class: int = 200, test_per_class: int = 10, size: int = 8, seed: int = 0
) -> Path:
    """A lossy-JPEG CIFAR-10 npz in the upstream layout: ``jpeg_{train,test}`` (uint8 bytes of
    the JPEG files back to back), ``jpeg_{train,test}_offsets`` (N + 1), ``y_{train,test}``
    and ``class_names``. Class c's images are noise around a class colour, so they are
    learnable."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(10, 3))
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", per_class), ("test", test_per_class)):
        y = np.repeat(np.arange(10), n)
        noise = rng.normal(0.0, 40.0, size=(len(y), size, size, 3))
        images = np.clip(colours[y][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        arrays[f"jpeg_{split}"], arrays[f"jpeg_{split}_offsets"] = _jpeg_blobs(images)
        arrays[f"y_{split}"] = y.astype(np.uint8)
    names = np.array(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    )
    np.savez(path, class_names=names, **arrays)
    return path


def run_script(tmp_path: Path, mode: str, extra: str, **env: str) -> tuple[Path, str]:
    """``bash run_b1_gpu.sh MODE 0`` on a fake npz, as a device call would run it; returns the
    results folder and the output. ``extra``: the EXTRA arguments (toy size, CPU)."""
    pytest.importorskip("PIL")
    npz = write_fake_cifar10_jpeg(tmp_path / "fake_cifar10_jpeg.npz")
    results = tmp_path / "results"
    full_env = {
        **os.environ,
        "NPZ": str(npz),
        "RESULTS": str(results),
        "PYTHON": sys.executable,
        "AUTOBALANCE_CACHE": str(tmp_path / "cache"),
        "EXTRA": extra,
        **env,
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), mode, "0"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return results, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("bash") is None, reason="run_b1_gpu.sh needs bash")
def test_paper_mode_runs_four_concurrent_methods_at_toy_size(tmp_path: Path) -> None:
    # --set last: it applies to AutoBalance only; one hyper-step per θ-step, so the hyper-step
    # path runs within the 2 epochs
    results, out = run_script(
        tmp_path,
        "paper",
        "--epochs 2 --n-max 200 --device cpu --set hyper.interval=1 "
        "hyper.train_batches=1 hyper.val_batches=1 hyper.power_iterations=2",
    )
    folder = results / "b1" / "paper"
    for method in PAPER_METHODS:
        path = folder / f"{method}__s0.json"
        assert path.is_file(), out
        row = json.loads(path.read_text())
        assert row["method"] == method and row["seed"] == 0
        assert row["protocol"] == "b1_paper" and row["arch"] == "resnet32"
        assert row["epochs"] == 2 and row["augment"] is True
        assert row["final_epochs"] == round(200 * 2 / 300)  # the retrain schedule, scaled
        assert math.isfinite(row["balanced_error"]) and 0.0 <= row["balanced_error"] <= 1.0
        assert f"paper/{method}__s0" in out
        log = results / "logs" / f"b1_paper_s0_{method}.log"
        assert log.is_file() and "bal.err" in log.read_text()
        # the per-epoch progress lines (--log-every): a run stopped by LIMIT still shows its pace
        phase = "[retrain] epoch" if method == "autobalance" else "[train] epoch 1/1"
        assert phase in log.read_text(), log.read_text()
    ab = json.loads((folder / "autobalance__s0.json").read_text())
    assert ab["hyper_steps"] > 0  # the hyper-step path ran
    # a smoke run (--epochs / --n-max) never touches the summary
    assert not (results / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("bash") is None, reason="run_b1_gpu.sh needs bash")
def test_ablation_mode_runs_each_lever_with_the_fallback_off(tmp_path: Path) -> None:
    """MODE=ablation (issue 8's lever table): one process per (seed, lever), the default and
    autobalance+LEVER, under tag "ablation", every run keeping its own α* (fallback off)."""
    # a --set in EXTRA replaces the mode's, so it repeats guard.fallback=false
    results, out = run_script(
        tmp_path,
        "ablation",
        "--epochs 2 --n-max 200 --device cpu --set hyper.interval=1 "
        "hyper.power_iterations=2 guard.fallback=false",
        ABLATION="la_tau",
    )
    assert "b1 ablation: 2 processes" in out
    for method, kind in (("autobalance", "clusters"), ("autobalance+la_tau", "la_tau")):
        row = json.loads((results / "b1" / "cpu_ablation" / f"{method}__s0.json").read_text())
        assert row["method"] == method and row["protocol"] == "b1_cpu"
        assert row["config"]["guard"]["fallback"] is False
        assert row["config"]["space"]["kind"] == kind
        assert not row["guard"]["fell_back"]  # the lever's own α* is what was tested
    assert not (results / "summary.json").exists()  # a smoke run


def test_ldam_drw_reweights_from_the_first_lr_decay_of_the_final_schedule() -> None:
    """DRW starts at the first decay: 160 of the paper protocol's 200-epoch final schedule
    (as LDAM-DRW's own 160 of 200), 0.75·E on the CPU protocols."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import b1_cifar10_lt as b1
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    got = {
        name: b1.drw_epoch(b1.protocol_config(p, None).retrain_config())
        for name, p in b1.PROTOCOLS.items()
    }
    assert got == {"cpu": 22, "fit": 75, "paper": 160, "pda": 30, "pda_cpu": 22}


@pytest.mark.timeout(120)
def test_step_cost_script_times_every_part_at_toy_size(tmp_path: Path) -> None:
    """benchmarks/b1_step_cost.py (where B1-paper's time goes) runs on the CPU at toy size and
    writes one JSON line per part as it goes."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import b1_step_cost
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "cost.jsonl"
    args = "--device cpu --steps 1 --repeats 1 --hyper 1 --arch resnet8 --batch 2 --n-max 200"
    args += " --fit-rows 16"
    from autobalance.losses import value_checks_enabled

    assert value_checks_enabled()
    rows = b1_step_cost.main([*args.split(), "--out", str(out)])
    assert value_checks_enabled()  # restored: the suite's other tests need the checks
    names = [r["name"] for r in rows]
    assert names == [
        "bare_step",
        "fit_step",
        "fit_step_checks",
        "hyper_step",
        "hyper_step_1x1",
        "hyper_step_fused",
    ]
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == names
    assert all(r["ms_per_unit"] > 0 and r["arch"] == "resnet8" for r in rows)
    assert rows[3]["batches"] == [10, 10] and rows[3]["hvps"] == 5  # the paper's hyper-step
