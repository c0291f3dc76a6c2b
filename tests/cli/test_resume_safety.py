"""`search --resume` continues the run's own config and never writes before it is checked
(issue 9, defect 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import TINY, one_line, tiny

from autobalance.cli import main
from autobalance.runs import MetricsWriter, RunDir


def tiny_args(out: Path) -> list[str]:
    return tiny(out)


EPOCHS = "search.train.epochs=3"  # a --set the preset does not hold


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and modification time."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


pytestmark = pytest.mark.usefixtures("no_figures")


def search_args(out: Path) -> list[str]:
    args = tiny_args(out)
    args.insert(args.index("--out"), EPOCHS)
    return args


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search with a --set, interrupted at the first retrain epoch (after its checkpoint)."""
    out = tmp_path_factory.mktemp("resume") / "killed"
    original = MetricsWriter.on_epoch_end

    def interrupt(self: MetricsWriter, phase: str, epoch: int, record: dict[str, Any]) -> None:
        original(self, phase, epoch, record)
        if phase == "retrain":
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MetricsWriter, "on_epoch_end", interrupt)
        assert main(["search", *search_args(out)]) == 130
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / "summary.json").exists()
    return out


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from autobalance.report import write_run_report

    out = tmp_path_factory.mktemp("resume") / "train"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("autobalance.cli._report", lambda run: write_run_report(run, figures=False))
        assert main(["train", "--loss", "ce", *tiny_args(out)]) == 0
    return out


@pytest.mark.parametrize(
    ("flags", "keys"),
    [
        # the README's old example: the preset reloaded, the original --set dropped
        (["--preset", "gaussians-cpu"], ["search.train.epochs", "dataset.options.n_max"]),
        (["--set", "search.train.epochs=5"], ["search.train.epochs"]),
        (["--seed", "7"], ["search.seed"]),
        (["--preset", "gaussians-cpu", "--set", *TINY], ["search.train.epochs"]),
        (["--data-dir", "/elsewhere/data"], ["dataset.data_dir"]),  # data must not change
    ],
)
def test_a_different_config_is_refused_before_anything_is_written(
    killed_run: Path, flags: list[str], keys: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(killed_run)
    capsys.readouterr()
    assert main(["search", *flags, "--out", str(killed_run), "--resume", "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "--resume" in line and "differs" in line
    for key in keys:
        assert key in line
    if flags == ["--seed", "7"]:
        assert "search.seed (run: 0, given: 7)" in line
        assert "search.train" not in line  # --seed applies on top of the run's own config
    assert snapshot(killed_run) == before  # config.yaml and env.json not overwritten


def test_resume_without_config_flags_finishes_with_the_runs_own_config(
    killed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = (killed_run / "config.yaml").read_bytes()
    env = json.loads((killed_run / "env.json").read_text())
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(killed_run), "--quiet"]) == 0
    assert (killed_run / "config.yaml").read_bytes() == config
    metrics = [json.loads(x) for x in (killed_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["phase"] for m in metrics].count("retrain") == 3  # the --set epochs, kept
    after = json.loads((killed_run / "env.json").read_text())
    assert after["command"] == env["command"]  # the original command line is kept ...
    assert after["resumed"][-1]["command"][:3] == ["autobalance", "search", "--resume"]
    # ... and the same flags as the run's own config proceed too
    assert main(["search", *search_args(killed_run), "--resume"]) == 0


def test_resume_refuses_a_train_run_without_touching_it(
    train_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(train_run)
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(train_run), "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "`train` run" in line and "not a search" in line
    assert main(["search", *tiny_args(train_run), "--resume"]) == 2
    assert snapshot(train_run) == before


def test_resume_without_a_checkpoint_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "early"
    run.mkdir()
    (run / "config.yaml").write_text("name: x\n")
    (run / "env.json").write_text(json.dumps({"command": ["autobalance", "search"]}))
    before = snapshot(run)
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(run), "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "nothing to resume" in line and "checkpoints/last.pt" in line
    assert snapshot(run) == before
    assert main(["search", "--resume", "--out", str(tmp_path / "absent"), "--quiet"]) == 2
    assert "nothing to resume" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "absent").exists()


def test_config_diff_names_dotted_paths() -> None:
    from autobalance.runs import config_diff

    old = {"a": 1, "b": {"c": [1, 2], "d": {"e": 1}}, "f": 2, "dev": "cpu"}
    new = {"a": 1, "b": {"c": [1, 3], "d": {"e": 1, "g": 0}}, "dev": "cuda"}
    assert config_diff(old, new, ignore=("dev",)) == ["b.c", "b.d.g", "f"]
    assert config_diff(old, old) == []


def test_kind_of_a_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.kind() is None
    run.write_json("env.json", {"command": ["autobalance", "train", "--loss", "ce"]})
    assert run.kind() == "train"
    run.write_json("summary.json", {"kind": "search"})
    assert run.kind() == "search"


def test_a_resume_on_another_host_is_recorded_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    run = RunDir.create(tmp_path / "run")
    run.write_env(seed=0, device="cpu", argv=["autobalance", "search"])
    run.record_resume(device="cpu", argv=["autobalance", "search", "--resume"])
    same = json.loads(run.file("env.json").read_text())["resumed"][-1]
    assert same["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "host_changed" not in same and not caplog.records

    env = json.loads(run.file("env.json").read_text())
    run.write_json("env.json", {**env, "cpu_capability": "AVX512", "torch": "0.0.1"})
    with caplog.at_level("WARNING", logger="autobalance.runs"):
        run.record_resume(device="cpu", argv=["autobalance", "search", "--resume"])
    after = json.loads(run.file("env.json").read_text())
    assert after["resumed"][-1]["host_changed"] == ["torch", "cpu_capability"]
    assert after["cpu_capability"] == "AVX512"  # the start record is kept as it was
    assert "another host" in caplog.text and "'AVX512' →" in caplog.text
