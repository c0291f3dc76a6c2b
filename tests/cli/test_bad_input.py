"""Bad input is one line and exit status 2, found before the run directory exists (issue 9,
defects 2 and 3)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import one_line, tiny

from autobalance.cli import main
from autobalance.runs import RunDir

pytestmark = pytest.mark.usefixtures("no_figures")


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


@pytest.mark.parametrize(
    ("command", "extra", "needle"),
    [
        (["search"], ["search.train.epochs=[1"], "not valid YAML"),
        (["train", "--loss", "ce"], ["search.train.epochs=[1"], "not valid YAML"),
        (["search"], ["search.device=foo"], "unknown device 'foo'"),
        pytest.param(["search"], ["search.device=cuda"], "not available", marks=NO_CUDA),
        pytest.param(["train", "--loss", "la"], ["search.device=cuda"], "cuda", marks=NO_CUDA),
        (["search"], ["search.train.eval_every=0"], "eval_every"),
        (["search"], ["search.hyper.interval=0"], "interval"),
        (["search"], ["dataset.options.dimm=8"], "dimm"),  # raised by the data loader
        (["search"], ["search.objective=deo"], "groups"),  # raised by the search engine
        (["train", "--loss", "ce"], ["dataset.options.dimm=8"], "dimm"),
    ],
)
def test_bad_input_is_one_line_and_creates_no_run_directory(
    command: list[str],
    extra: list[str],
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    assert main([*command, *tiny(out, *extra)]) == 2
    assert needle in one_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("device", ["foo", pytest.param("cuda", marks=NO_CUDA)])
def test_device_flag_is_checked_before_the_run_starts(
    device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["search", *tiny(out), "--device", device]) == 2
    assert f"device '{device}'" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_corrected_command_is_not_refused_after_a_typo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["search", *tiny(out, "dataset.options.dimm=8")]) == 2
    assert main(["train", "--loss", "ce", *tiny(out), "--device", "foo"]) == 2
    capsys.readouterr()
    assert main(["search", *tiny(out)]) == 0
    assert (out / "summary.json").is_file()
    assert "already holds a run" not in capsys.readouterr().err


def test_debug_shows_the_traceback_of_a_bad_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not valid YAML"):
        main(["search", *tiny(tmp_path / "run", "search.train.epochs=[1"), "--debug"])


def test_an_out_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ro" / "run"
    monkeypatch.setattr("autobalance.runs.os.access", lambda *a, **k: False)
    assert main(["search", *tiny(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "cannot create run directory" in line and "not writable" in line
    assert not out.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["search", *tiny(ro / "run")]) == 2
    finally:
        ro.chmod(0o755)
    assert "not writable" in one_line(capsys.readouterr().err)


def test_a_permission_error_while_writing_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: RunDir, cfg: Any) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(self.file("config.yaml")))

    monkeypatch.setattr(RunDir, "write_config", refuse)
    assert main(["train", "--loss", "ce", *tiny(tmp_path / "run")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "Permission denied" in line and "config.yaml" in line


@pytest.mark.parametrize("command", [["search"], ["train", "--loss", "ce"]])
def test_a_full_disk_is_one_line_that_says_the_state_is_intact(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def full(self: RunDir, model: Any) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.file("model.pt")))

    monkeypatch.setattr(RunDir, "save_model", full)
    out = tmp_path / "run"
    assert main([*command, *tiny(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "no space left on device" in line and "intact" in line
    if command == ["search"]:  # its checkpoint is there: continue it
        assert f"--resume --out {out}" in line
    else:
        assert f"remove {out}" in line
    if command[0] == "train":
        with pytest.raises(OSError, match="No space left"):
            main([*command, *tiny(tmp_path / "again"), "--debug"])
