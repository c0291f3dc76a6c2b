"""Checkpoint integrity (issue 9): checksums, prev.pt fallback, one-line errors, the journal,
the checkpoint interval, and exact resume across the end of the search."""

from __future__ import annotations

import importlib
import json
import logging
import random
from pathlib import Path

import pytest
import torch

from autobalance import SearchConfig, make_model
from autobalance.checkpoint import (
    LAST,
    PREV,
    atomic_write_text,
    read_checkpoint,
    safe_load,
    save_checkpoint,
)
from autobalance.data import long_tailed_gaussians
from autobalance.events import Callback
from autobalance.losses import ParametricCE
from autobalance.search import AutoBalanceSearch, SearchResult
from autobalance.train import TrainConfig


def _engine(ckpt_dir: Path, *, fallback: bool = False, **cfg_kw) -> AutoBalanceSearch:
    train = long_tailed_gaussians(num_classes=4, dim=8, n_max=60, imbalance_ratio=10, seed=1)
    cfg = SearchConfig(seed=3, **cfg_kw)
    cfg.train = TrainConfig(epochs=4, batch_size=32, lr=0.05, warmup_epochs=0)
    cfg.hyper.interval = 2
    cfg.hyper_start = 0.25
    if fallback:  # a large α step and literal guard rules: this search falls back to the init
        cfg.alpha.lr = 50.0
        cfg.guard.margin = 0.0
        cfg.guard.z = 0.0
    return AutoBalanceSearch(
        cfg,
        lambda: make_model("mlp", 4, in_features=8, hidden=(16,)),
        train,
        checkpoint_dir=ckpt_dir,
    )


class _Kill(Callback):
    """Interrupts the run at the end of (phase, epoch), before that epoch's checkpoint."""

    def __init__(self, phase: str, epoch: int) -> None:
        self.at = (phase, epoch)

    def on_epoch_end(self, phase, epoch, record):
        if (record["phase"], epoch) == self.at:
            raise KeyboardInterrupt


def _killed(ckpt_dir: Path, phase: str, epoch: int, **kw) -> None:
    eng = _engine(ckpt_dir, **kw)
    eng.callbacks.callbacks.append(_Kill(phase, epoch))
    with pytest.raises(KeyboardInterrupt):
        eng.run()


def _assert_same(a: SearchResult, b: SearchResult) -> None:
    for k in a.alpha:
        torch.testing.assert_close(a.alpha[k], b.alpha[k], rtol=0, atol=0)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert a.trajectory == b.trajectory
    assert a.history == b.history
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a.hyper_steps]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b.hyper_steps]
    assert a.guard == b.guard


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SearchResult:
    return _engine(tmp_path_factory.mktemp("ref")).run()


# ---------------------------------------------------------------------- A: damaged files


def _flip(path: Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n] = bytes(b ^ 0xFF for b in data[mid : mid + n])
    path.write_bytes(bytes(data))


def test_damaged_last_pt_falls_back_to_prev_pt(tmp_path, reference, caplog) -> None:
    _killed(tmp_path, "retrain", 1)  # last.pt: retrain epoch 0, prev.pt: the last search epoch
    assert (tmp_path / PREV).is_file()
    _flip(tmp_path / LAST)
    with pytest.raises(ValueError, match="checksum mismatch"):
        safe_load(tmp_path / LAST)
    with caplog.at_level(logging.WARNING, logger="autobalance"):
        resumed = _engine(tmp_path).run(resume=True)
    assert any("previous checkpoint" in r.getMessage() for r in caplog.records)
    assert (tmp_path / (LAST + ".damaged")).is_file()  # kept aside, out of the rotation
    _assert_same(reference, resumed)


def test_a_kill_between_the_two_renames_resumes_from_prev_pt(tmp_path, reference, caplog) -> None:
    _killed(tmp_path, "retrain", 1)
    (tmp_path / LAST).unlink()  # save_checkpoint moved last.pt to prev.pt, then was killed
    with caplog.at_level(logging.WARNING, logger="autobalance"):
        resumed = _engine(tmp_path).run(resume=True)
    assert any("last.pt is missing" in r.getMessage() for r in caplog.records)
    _assert_same(reference, resumed)


def test_no_usable_checkpoint_is_one_line(tmp_path) -> None:
    _killed(tmp_path, "retrain", 1)
    _flip(tmp_path / LAST)
    (tmp_path / PREV).write_bytes(b"")
    with pytest.raises(ValueError, match="no usable checkpoint") as err:
        _engine(tmp_path).run(resume=True)
    assert "\n" not in str(err.value) and "empty" in str(err.value)


def test_a_foreign_torch_file_is_not_a_checkpoint(tmp_path) -> None:
    torch.save({"weight": torch.zeros(2)}, tmp_path / LAST)
    with pytest.raises(ValueError, match="not an autobalance search checkpoint"):
        _engine(tmp_path).run(resume=True)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        ("truncated", r"truncated \(\d+ of \d+ payload bytes\)"),
        ("header", "truncated"),
        (b"hello, I am a text file\n", "not a torch checkpoint"),
        ("pickled", "pickled Python objects"),
        ("flipped", r"checksum mismatch \(the file is damaged\)"),
    ],
)
def test_bad_files_give_one_readable_line(tmp_path, content, reason) -> None:
    path = tmp_path / "ck.pt"
    if content == "pickled":
        torch.save({"obj": random.Random()}, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        save_checkpoint({"w": torch.arange(2000)}, path)
        data = path.read_bytes()
        if content == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif content == "header":
            path.write_bytes(data[:10])
        else:
            _flip(path)
    with pytest.raises(ValueError, match=reason) as err:
        safe_load(path)
    msg = str(err.value)
    assert msg.startswith(f"cannot read checkpoint {path}: ") and "\n" not in msg
    assert "weights_only" not in msg and "Errno" not in msg


def test_save_checkpoint_verifies_and_keeps_the_previous_one(tmp_path) -> None:
    path = tmp_path / LAST
    save_checkpoint({"v": torch.tensor(1)}, path)
    assert not (tmp_path / PREV).exists()
    save_checkpoint({"v": torch.tensor(2)}, path)
    obj, verified = read_checkpoint(path)
    assert verified and int(obj["v"]) == 2
    assert int(safe_load(tmp_path / PREV)["v"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST, PREV]  # no temp files
    torch.save({"v": torch.tensor(3)}, tmp_path / "plain.pt")  # plain torch files still load
    obj, verified = read_checkpoint(tmp_path / "plain.pt")
    assert not verified and int(obj["v"]) == 3


def test_atomic_writes_fsync_the_directory(tmp_path, monkeypatch) -> None:
    import autobalance.checkpoint as ck

    synced: list[str] = []
    monkeypatch.setattr(ck, "fsync_dir", lambda p: synced.append(str(p)))
    atomic_write_text("x", tmp_path / "a.txt")
    save_checkpoint({"v": 1}, tmp_path / LAST)
    assert synced == [str(tmp_path), str(tmp_path)]
    monkeypatch.undo()
    ck.fsync_dir(tmp_path)  # a real directory fsync works (or is skipped) without error
    ck.fsync_dir(tmp_path / "missing")


def test_alpha_json_is_written_atomically(tmp_path, monkeypatch) -> None:
    path = tmp_path / "alpha.json"
    loss = ParametricCE(3)
    loss.save_json(path)
    before = path.read_text()
    monkeypatch.setattr(ParametricCE, "to_dict", lambda self: {"a": 1, "b": object()})
    with pytest.raises(TypeError):
        loss.save_json(path)
    assert path.read_text() == before  # not truncated or half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.json"]


# ---------------------------------------------------------------------- C: leftovers (engine)


def test_resume_removes_orphan_temp_files(tmp_path, reference) -> None:
    _killed(tmp_path, "search", 2)
    orphan = tmp_path / ".last.pt.k3j2x_1.tmp"
    orphan.write_bytes(b"half a checkpoint")
    resumed = _engine(tmp_path).run(resume=True)
    assert not orphan.exists()
    _assert_same(reference, resumed)


# ---------------------------------------------------------------------- D: cost


def test_checkpoint_holds_no_history_and_stays_small(tmp_path) -> None:
    sizes: list[int] = []

    class Size(Callback):
        def on_epoch_end(self, phase, epoch, record):
            if (tmp_path / LAST).is_file():
                sizes.append((tmp_path / LAST).stat().st_size)

    eng = _engine(tmp_path)
    eng.callbacks.callbacks.append(Size())
    res = eng.run()
    ckpt = safe_load(tmp_path / LAST)
    assert not {"history", "trajectory", "hyper_log"} & set(ckpt)
    assert ckpt["journal"]["counts"] == {
        "trajectory": len(res.trajectory),
        "history": len(res.history),
        "hyper_log": len(res.hyper_steps),
    }
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert len(lines) == len(res.trajectory) + len(res.history) + len(res.hyper_steps)
    retrain = sizes[-3:]  # retrain epochs: nothing in the checkpoint grows with the epochs
    assert max(retrain) - min(retrain) < 64, sizes


def test_a_damaged_journal_is_refused(tmp_path) -> None:
    _killed(tmp_path, "retrain", 1)
    journal = tmp_path / "journal.jsonl"
    text = journal.read_text()
    journal.write_text(text.replace('"epoch": 0', '"epoch": 7', 1))
    with pytest.raises(ValueError, match=r"journal .* checksum mismatch"):
        _engine(tmp_path).run(resume=True)


@pytest.mark.parametrize("kill_at", [("search", 2), ("retrain", 1)])
def test_checkpoint_every_k_epochs_resumes_exactly(tmp_path, kill_at) -> None:
    search_mod = importlib.import_module("autobalance.search")  # the package exports search()
    saved: list[tuple[str, int]] = []
    real = search_mod.save_checkpoint

    def counting(state, path, **kw):
        saved.append((state["phase"], state["epoch"]))
        return real(state, path, **kw)

    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "save_checkpoint", counting)
        ref = _engine(ref_dir, checkpoint_every=3).run()
    # every 3rd epoch and at each phase end: search 0..3 → 2, 3; retrain 0..3 → 2, 3
    assert saved == [("search", 2), ("search", 3), ("retrain", 2), ("retrain", 3)]
    _killed(run_dir, *kill_at, checkpoint_every=3)
    resumed = _engine(run_dir, checkpoint_every=3).run(resume=True)
    _assert_same(ref, resumed)


def test_resume_after_the_search_keeps_the_guard_fallback(tmp_path) -> None:
    """Killed in retrain epoch 0 (after the last search checkpoint): the end of the search —
    the guard's fallback to the init — must run again on resume, not be skipped."""
    ref = _engine(tmp_path / "ref", fallback=True).run()
    assert ref.guard["fell_back"]
    _killed(tmp_path / "run", "retrain", 0, fallback=True)
    resumed = _engine(tmp_path / "run", fallback=True).run(resume=True)
    _assert_same(ref, resumed)


def test_journal_round_trips_floats_exactly(tmp_path) -> None:
    from autobalance.checkpoint import RecordLog

    log = RecordLog(tmp_path / "j.jsonl")
    log.reset()
    recs = [{"x": 0.1 + 0.2, "y": float("inf"), "t": [1e-310, -0.0], "n": None}]
    mark = log.sync({"a": recs, "b": []})
    extra = log.sync({"a": [*recs, {"x": 2.0}], "b": [{"z": 1}]})
    back = RecordLog(tmp_path / "j.jsonl").restore(mark)
    assert back == {"a": recs, "b": []}
    assert json.dumps(back) == json.dumps({"a": recs, "b": []})
    assert (tmp_path / "j.jsonl").stat().st_size == mark["size"] < extra["size"]
