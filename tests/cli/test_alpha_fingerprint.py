"""alpha.json records the dataset α was learned on; `train --alpha` refuses another dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import TINY, one_line, tiny

from autobalance.cli import main
from autobalance.config import apply_overrides
from autobalance.experiment import ExperimentConfig, build_experiment
from autobalance.presets import preset_dict
from autobalance.provenance import fingerprint_of


@pytest.fixture(scope="module")
def alpha_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp") / "search"
    assert main(["search", *tiny(out), "--threads", "1"]) == 0
    return out / "alpha.json"


def _train(tmp_path: Path, alpha: Path, *extra: str, name: str = "reuse") -> int:
    return main(["train", "--alpha", str(alpha), *tiny(tmp_path / name, *extra), "--threads", "1"])


def test_alpha_json_records_counts_and_fingerprint(alpha_file: Path) -> None:
    data = json.loads(alpha_file.read_text())["data"]
    cfg = ExperimentConfig.from_dict(apply_overrides(preset_dict("gaussians-cpu"), TINY))
    train = build_experiment(cfg).train
    assert data == fingerprint_of(train)
    assert data["class_counts"] == train.class_counts().tolist()
    assert data["num_samples"] == len(train) and data["group_counts"] is None
    assert len(data["fingerprint"]) == 16 and len(data["labels_sha256"]) == 64


def test_same_dataset_is_accepted(alpha_file: Path, tmp_path: Path, capsys) -> None:
    assert _train(tmp_path, alpha_file) == 0
    assert "warning" not in capsys.readouterr().err


def test_another_draw_of_the_same_dataset_is_accepted(alpha_file: Path, tmp_path: Path) -> None:
    # another long-tail seed: other samples (labels hash), same name and counts
    assert _train(tmp_path, alpha_file, "dataset.seed=5") == 0


def test_another_dataset_is_refused_in_one_line(alpha_file: Path, tmp_path: Path, capsys) -> None:
    # same K = 4, other counts (ρ = 20 instead of 10): the shape check alone would let it pass
    assert _train(tmp_path, alpha_file, "dataset.imbalance_ratio=20") == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("autobalance train: error:") and "--force" in line
    assert "class counts" in line
    assert not (tmp_path / "reuse").exists()  # refused before the run directory


def test_force_trains_with_a_foreign_alpha(alpha_file: Path, tmp_path: Path, capsys) -> None:
    assert _train(tmp_path, alpha_file, "dataset.imbalance_ratio=20", "--force") == 0
    err = capsys.readouterr().err
    assert "warning (--force)" in err and (tmp_path / "reuse" / "summary.json").is_file()


def test_alpha_from_another_kind_of_dataset_is_refused(
    alpha_file: Path, tmp_path: Path, capsys
) -> None:
    # the case: a report's hint `train --alpha alpha.json` on the default digits data
    args = ["train", "--alpha", str(alpha_file), "--out", str(tmp_path / "d"), "--quiet"]
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert "α was learned on 'long_tailed_gaussians" in line and "digits" in line


def test_old_alpha_json_loads_with_a_warning(alpha_file: Path, tmp_path: Path, capsys) -> None:
    old = json.loads(alpha_file.read_text())
    old.pop("data")
    old["version"] = 1
    path = tmp_path / "old_alpha.json"
    path.write_text(json.dumps(old))
    assert _train(tmp_path, path) == 0
    err = capsys.readouterr().err
    assert "does not say which dataset it was learned on" in err
    assert len([line for line in err.splitlines() if "warning" in line]) == 1
