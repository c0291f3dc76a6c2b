"""Fault injection (issue 9): real `autobalance search` processes killed with SIGKILL at chosen
points (``AUTOBALANCE_FAULT``, see ``autobalance.checkpoint.fault_point``), then resumed with
``autobalance search --resume --out DIR``; the final files must equal an uninterrupted run's,
byte for byte, timings aside. Also: the run directory's lock, and no repeated lines after a
resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import TINY as BASE

from autobalance.checkpoint import FAULT_ENV
from autobalance.cli import main
from autobalance.runs import MetricsWriter, RunDir, RunLockedError

# warm-up epochs 0-1, search epochs 2-3, retrain epochs 0-3
TINY = [*BASE, "search.train.epochs=4", "search.hyper_start=0.5"]
COMMON = ["--quiet", "--threads", "1"]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "autobalance.cli", *args]


def _env(fault: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["OMP_NUM_THREADS"] = "1"
    if fault is not None:
        env[FAULT_ENV] = fault
    return env


def _run(args: list[str], fault: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(*args), env=_env(fault), capture_output=True, text=True, timeout=120)


def _fresh(out: Path) -> list[str]:
    return ["search", "--preset", "gaussians-cpu", "--set", *TINY, "--out", str(out), *COMMON]


def _resume(out: Path) -> list[str]:
    return ["search", "--resume", "--out", str(out), *COMMON]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _no_repeats(run: Path) -> None:
    """No epoch and no hyper-step appears twice (a resumed run replays the epochs after its
    checkpoint; it must not append them again)."""
    metrics = [(m["phase"], m["epoch"]) for m in _jsonl(run / "metrics.jsonl")]
    assert len(metrics) == len(set(metrics)), metrics
    hyper = [h["step"] for h in _jsonl(run / "hyper_steps.jsonl")]
    assert hyper == sorted(set(hyper)), hyper


def _without(obj: dict, *keys: str) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))


def test_killed_and_resumed_search_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    reference = subprocess.Popen(  # runs beside the killed chain (2 cores)
        _cmd(*_fresh(ref_dir)), env=_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # 1. warm-up: killed at the end of warm-up epoch 1 (its metrics line is written, its
        #    checkpoint is not)
        p = _run(_fresh(run), "warmup:epoch:1")
        assert p.returncode == -signal.SIGKILL, p.stderr
        steps = [
            # 2. search: killed at the end of search epoch 3, the last one (its hyper-steps and
            #    metrics line are written, its checkpoint is not)
            "search:epoch:3",
            # 3. mid atomic write: the 2nd checkpoint of this process (retrain epoch 0) is
            #    complete in its temp file, not yet renamed over last.pt
            "write:last.pt@2",
            # 4. retrain: killed at the end of retrain epoch 1
            "retrain:epoch:1",
            # 5. alpha.json: killed half-way through writing it (after last.pt is damaged)
            "partial:alpha.json",
        ]
        for fault in steps:
            if fault == "partial:alpha.json":
                _flip(run / "checkpoints" / "last.pt")
            p = _run(_resume(run), fault)
            assert p.returncode == -signal.SIGKILL, (fault, p.stderr)
            _no_repeats(run)
            if fault == "write:last.pt@2":
                assert list((run / "checkpoints").glob(".last.pt.*.tmp"))  # the orphan
            if fault == "partial:alpha.json":
                assert "previous checkpoint" in p.stderr  # fell back to prev.pt, said so
                assert list(run.glob(".alpha.json.*.tmp")) and not (run / "alpha.json").exists()
        # 6. the last resume completes the run
        p = _run(_resume(run), None)
        assert p.returncode == 0, p.stderr
    finally:
        _, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err

    assert not list(run.rglob("*.tmp")), list(run.rglob("*.tmp"))  # orphans cleaned up
    _no_repeats(run)
    for name in ("alpha.json", "search_space.json", "alpha_trajectory.csv", "metrics.jsonl"):
        assert (run / name).read_bytes() == (ref_dir / name).read_bytes(), name
    assert (run / "model.pt").read_bytes() == (ref_dir / "model.pt").read_bytes()
    a = torch.load(run / "model.pt", weights_only=True)
    b = torch.load(ref_dir / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    hyper = [_without(h, "seconds") for h in _jsonl(run / "hyper_steps.jsonl")]
    assert hyper == [_without(h, "seconds") for h in _jsonl(ref_dir / "hyper_steps.jsonl")]
    summary = json.loads((run / "summary.json").read_text())
    ref_summary = json.loads((ref_dir / "summary.json").read_text())
    assert _without(summary, "seconds", "timings") == _without(ref_summary, "seconds", "timings")


def _hold_lock(run: Path) -> subprocess.Popen[str]:
    """Another process that holds ``run``'s lock until it is killed."""
    code = (
        "import sys, time; from autobalance.runs import RunDir; "
        "cm = RunDir(sys.argv[1]).lock(); cm.__enter__(); print('locked', flush=True); "
        "time.sleep(120)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True, env=_env(None)
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_fresh(out)) == 0
    env_before = (out / "env.json").read_bytes()
    holder = _hold_lock(out)
    try:
        busy = "being written by another autobalance process"
        with pytest.raises(RunLockedError, match=busy), RunDir(out).lock():
            pass
        capsys.readouterr()
        assert main(_resume(out)) == 2
        err = capsys.readouterr().err.strip()
        assert busy in err and f"pid {holder.pid}" in err and "\n" not in err
        assert (out / "env.json").read_bytes() == env_before  # refused before any write
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with RunDir(out).lock(), RunDir(out).lock():  # released; re-entrant in one process
        pass
    assert main(_resume(out)) == 0


def test_resumed_writer_drops_the_replayed_lines(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r")
    (run.path / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"phase": ph, "epoch": ep, "train_loss": 1.0}) + "\n"
            for ph, ep in (("warmup", 0), ("search", 1), ("search", 2))
        )
        + '{"phase": "retrain", "ep'  # a line torn by the kill
    )
    (run.path / "hyper_steps.jsonl").write_text(
        "".join(
            json.dumps({"phase": "search", "step": s, "epoch": s // 10}) + "\n"
            for s in (10, 12, 20)
        )
    )
    w = MetricsWriter(run)  # resumed from the checkpoint of search epoch 1: epoch 2 replays
    w.on_hyper_step("search", 20, {"epoch": 2, "applied": True})
    w.on_epoch_end("search", 2, {"phase": "search", "epoch": 2, "train_loss": 0.5})
    w.on_epoch_end("retrain", 0, {"phase": "retrain", "epoch": 0, "train_loss": 0.4})
    metrics = [(m["phase"], m["epoch"]) for m in _jsonl(run.path / "metrics.jsonl")]
    assert metrics == [("warmup", 0), ("search", 1), ("search", 2), ("retrain", 0)]
    assert [h["step"] for h in _jsonl(run.path / "hyper_steps.jsonl")] == [10, 12, 20]
