"""`autobalance reproduce NAME --dry-run` says where the data are, or that they are missing and
how to get them, without loading them."""

from __future__ import annotations

from pathlib import Path

import pytest

from autobalance.cli import main
from autobalance.experiment import DatasetConfig
from autobalance.reproduce import data_location, data_status


def test_data_status_resolves_like_the_loader(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOBALANCE_DATA", str(tmp_path))
    assert data_status(DatasetConfig(name="digits_lt")).startswith("data: built in")
    missing = data_status(DatasetConfig(name="cifar10_lt"))
    assert missing.startswith(f"data: MISSING {tmp_path} (dataset 'cifar10_lt')")
    assert "cifar-10-python.tar.gz" in missing and "--data-dir" in missing
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "data_batch_1").write_bytes(b"")
    assert data_location(DatasetConfig(name="cifar10_lt")) == (batches, None)
    (tmp_path / "adult").mkdir()
    assert data_status(DatasetConfig(name="adult")) == f"data: found at {tmp_path / 'adult'}"
    other = tmp_path / "elsewhere"
    cfg = DatasetConfig(name="compas", data_dir=str(other))
    assert data_status(cfg).startswith(f"data: MISSING {other / 'compas'}")


@pytest.mark.parametrize("present", [True, False])
def test_dry_run_reports_the_data(tmp_path: Path, capsys, present: bool) -> None:
    data = tmp_path / "data"
    if present:
        (data / "cifar10_jpeg_lossy").mkdir(parents=True)
    out = tmp_path / "never"
    args = ["reproduce", "table1", "--dry-run", "--data-dir", str(data), "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("  data: "))
    if present:
        assert line == f"  data: found at {data / 'cifar10_jpeg_lossy'}"
    else:
        assert line.startswith(f"  data: MISSING {data / 'cifar10_jpeg_lossy'}")
    assert "paper 'AutoBalance: Δ&l, LA init' bal.err 21.15" in text  # the paper's numbers
    assert "(+ up to 48 guard epochs)" in text
    assert not out.exists()
