"""Every script in examples/ runs, at tiny size (``--tiny``), as a user would start it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOBALANCE_EXAMPLE_TINY": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args, "--tiny"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_every_example_is_tested() -> None:
    names = {p.name for p in EXAMPLES.glob("*.py")}
    assert names == {"tabular_csv.py", "image_folder.py", "reuse_loss.py"}


@pytest.mark.slow
def test_tabular_csv_example_writes_a_report(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    proc = run_example("tabular_csv.py", "--demo", "--out", "report", cwd=tmp_path)
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "| AutoBalance (MLP) |" in report and "| c4 | 6 |" in report
    assert "report.md" in proc.stdout
    data = json.loads((tmp_path / "report" / "alpha.json").read_text())["data"]
    assert data["class_counts"] == [300, 112, 45, 18, 6]


@pytest.mark.slow
def test_image_folder_example_on_a_folder_of_pngs(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for k, n in enumerate((12, 6, 3)):  # a long-tailed folder of 8×8 PNGs
        folder = tmp_path / "images" / f"kind{k}"
        folder.mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 80, (8, 8, 3)) + 60 * k
            image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    proc = run_example("image_folder.py", "images", "--out", "run", cwd=tmp_path)
    # 21 images, a stratified 20 % held out for testing
    assert "16 training images, per class [9, 5, 2]" in proc.stdout and "kind2" in proc.stdout
    data = json.loads((tmp_path / "run" / "alpha.json").read_text())
    assert data["num_classes"] == 3


@pytest.mark.slow
def test_reuse_loss_example_and_its_data_check(tmp_path: Path) -> None:
    proc = run_example("reuse_loss.py", "--out", "reuse", cwd=tmp_path)
    assert "learned loss α*" in proc.stdout and "cross-entropy" in proc.stdout
    # an α* learned on other data is refused unless --force
    other = tmp_path / "other.json"
    saved = json.loads((tmp_path / "reuse" / "alpha.json").read_text())
    saved["data"]["class_counts"] = [1] * len(saved["data"]["class_counts"])
    other.write_text(json.dumps(saved))
    refused = run_example("reuse_loss.py", "--alpha", str(other), cwd=tmp_path, ok=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
