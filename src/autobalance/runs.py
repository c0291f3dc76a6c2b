"""Run directories and the callbacks that fill them.

A run directory holds everything needed to read, re-evaluate or resume one run::

    config.yaml            the resolved ExperimentConfig (every field)
    env.json               versions, platform, device, seed and command line (no host name)
    metrics.jsonl          one JSON line per epoch (the loop's ``on_epoch_end`` records)
    hyper_steps.jsonl      one JSON line per hyper-step on α (search runs)
    alpha.json             α* as a ParametricCE (reload with ``ParametricCE.load_json``), with
                           the training data's counts and fingerprint (``provenance``)
    alpha_rejected.json    only when the guard fell back: the loss the search had found and the
                           guard rejected (alpha.json then holds the init), same format, so
                           ``train --alpha alpha_rejected.json`` can still use it; its policy,
                           if any, is ``augment_policy_rejected.json``
    search_space.json      the search space: clusters D_π, raw α′ and effective (w, l, Δ)
    alpha_trajectory.csv   epoch, phase, class, group, cluster, w, l, Δ
    checkpoints/last.pt    the engine's end-of-epoch checkpoint (resume; SHA-256 checked)
    checkpoints/prev.pt    the checkpoint before it (the fallback when last.pt is damaged)
    checkpoints/journal.jsonl  the search's history, trajectory and hyper-steps, pinned by
                           each checkpoint (size + SHA-256)
    .lock                  advisory lock held while a search or a training writes the run
    model.pt               final model state_dict (atomic; load with weights_only=True)
    augment_policy.json    the learned augmentation policy (``search.augment``), named by
                           alpha.json's ``augment_policy`` key (``autobalance.augment.io``)
    augment_trajectory.csv epoch, phase, cluster, operation, probability, magnitude
    summary.json           method, final test metrics, class counts, timings
    report.md              the run's report with its plots

The loops only emit events (``autobalance.events``); :class:`MetricsWriter`,
:class:`~autobalance.progress.ProgressBar` and :class:`~autobalance.progress.EpochLogger`
(``autobalance.progress``, re-exported here) observe them. ``summary.json``'s test metrics
hold the K × K test ``confusion`` counts (up to 200 classes) for the report.

While :func:`run_search` / :func:`run_train` write a run they hold ``.lock``
(:meth:`RunDir.lock`, ``fcntl.flock``): a second process on the same directory fails at once
with one line. Holding it, they delete the temp files a killed atomic write left behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autobalance.checkpoint import (
    atomic_save,
    atomic_write_text,
    latest_checkpoint,
    remove_orphan_temps,
    safe_load,
)
from autobalance.csvio import read_typed_csv
from autobalance.events import Callback
from autobalance.experiment import Experiment, ExperimentConfig, loss_counts
from autobalance.presets import dump_config, read_config_file
from autobalance.progress import (  # re-exported: the run callbacks' historical home
    EpochLogger,
    ProgressBar,
    plan_progress,
    progress_callbacks,
    search_plan,
)

log = logging.getLogger(__name__)

# folder → [fd, depth] of the run-directory locks this process holds (RunDir.lock)
_HELD_LOCKS: dict[str, list[int]] = {}
CONFIG = "config.yaml"
ENV = "env.json"
METRICS = "metrics.jsonl"
HYPER_STEPS = "hyper_steps.jsonl"
ALPHA = "alpha.json"
ALPHA_REJECTED = "alpha_rejected.json"
POLICY_REJECTED = "augment_policy_rejected.json"
SPACE = "search_space.json"
TRAJECTORY = "alpha_trajectory.csv"
CHECKPOINTS = "checkpoints"
MODEL = "model.pt"
SUMMARY = "summary.json"
REPORT = "report.md"
LOCK = ".lock"
# the columns of alpha_trajectory.csv, in order, each with its parser (read_trajectory)
_TRAJECTORY_TYPES: dict[str, Any] = {
    "epoch": int,
    "phase": str,
    "class": int,
    "group": int,
    "cluster": int,
    "w": float,
    "l": float,
    "delta": float,
}
TRAJECTORY_COLUMNS = tuple(_TRAJECTORY_TYPES)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data: tensors/arrays → lists, NaN/±inf → None (strict JSON has no NaN)."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().tolist()
    elif isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_line(obj: Any) -> str:
    """One strict-JSON line (no NaN) for a ``.jsonl`` file."""
    return json.dumps(to_jsonable(obj), allow_nan=False) + "\n"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``.jsonl`` file (empty list when it does not exist)."""
    p = Path(path)
    if not p.is_file():
        return []
    with open(p, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


_MISSING = object()


def config_diff(
    old: dict[str, Any], new: dict[str, Any], *, ignore: Iterable[str] = (), prefix: str = ""
) -> list[str]:
    """Dotted paths of the keys whose values differ between two nested config dicts.

    Mappings are compared key by key (a key on one side only counts as a difference), every
    other value as a whole; ``ignore`` lists dotted paths left out of the comparison.
    """
    skip = set(ignore)
    out: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        path = f"{prefix}{key}"
        if path in skip:
            continue
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(config_diff(a, b, ignore=skip, prefix=path + "."))
        elif a != b:
            out.append(path)
    return out


def default_run_path(name: str, method: str, root: str | Path = "runs") -> Path:
    """``runs/<name>-<method>-<YYYYmmdd-HHMMSS>`` (a suffix is added if it exists)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{method}-{stamp}"
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{i}")
        i += 1
    return path


class RunLockedError(ValueError):
    """Another process holds the run directory's lock (reported in one line, exit status 2)."""


def _host_record() -> dict[str, Any]:
    """torch build, platform, SIMD level and CUDA version: a seed reproduces bit for bit only
    where all four agree (CPU kernels differ by SIMD level; benchmarks/README.md)."""
    return {
        "torch": torch.__version__,
        "platform": f"{platform.system()}-{platform.machine()}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.version.cuda,
    }


class RunDir:
    """One run's folder and its files (see the module docstring for the layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINTS

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | Path, *, resume: bool = False, overwrite: bool = False) -> RunDir:
        """Make the folder. An existing run is refused unless ``resume`` or ``overwrite``."""
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise ValueError(f"run directory {run.path} exists and is not a directory")
        holds_run = run.file(CONFIG).is_file()
        if resume:
            if not holds_run:
                raise FileNotFoundError(f"nothing to resume: {run.file(CONFIG)} does not exist")
        elif holds_run and not overwrite:
            raise ValueError(
                f"{run.path} already holds a run; pass --resume to continue it or choose "
                "another --out"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        if overwrite and not resume:
            for name in (METRICS, HYPER_STEPS, SUMMARY, REPORT, TRAJECTORY, ALPHA, SPACE, MODEL):
                run.file(name).unlink(missing_ok=True)
            (run.checkpoint_dir / "last.pt").unlink(missing_ok=True)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (it must hold ``config.yaml``)."""
        run = cls(path)
        if not run.file(CONFIG).is_file():
            raise FileNotFoundError(f"not a run directory (no {CONFIG}): {run.path}")
        return run

    @classmethod
    def check_new(cls, path: str | Path) -> RunDir:
        """Refuse now what :meth:`create` would refuse for a new run, writing nothing.

        Checked before a command loads data or builds a model, so that a run directory is
        created only once every input is known to be good (a corrected command is then not
        refused with "already holds a run"). Raises ``ValueError`` when ``path`` holds a run or
        is a file, ``NotADirectoryError`` when a parent is a file and ``PermissionError`` when
        the folder cannot be created or written.
        """
        run = cls(path)
        if run.path.exists():
            if not run.path.is_dir():
                raise ValueError(f"run directory {run.path} exists and is not a directory")
            if run.file(CONFIG).is_file():
                raise ValueError(
                    f"{run.path} already holds a run; pass --resume to continue it or choose "
                    "another --out"
                )
            target = run.path
        else:
            target = run.path.absolute().parent
            while not target.exists() and target != target.parent:
                target = target.parent
            if not target.is_dir():
                raise NotADirectoryError(
                    f"cannot create run directory {run.path}: {target} is not a directory"
                )
        if not os.access(target, os.W_OK | os.X_OK):
            raise PermissionError(
                f"cannot create run directory {run.path}: {target} is not writable"
            )
        return run

    @classmethod
    def open_for_resume(cls, path: str | Path) -> RunDir:
        """An existing *search* run with a checkpoint to continue from; reads only.

        ``FileNotFoundError`` when there is no run or no ``checkpoints/last.pt``; ``ValueError``
        when the folder holds a run of another kind (a ``train`` run has nothing to resume).
        """
        run = cls(path)
        if not run.path.is_dir():
            raise FileNotFoundError(f"nothing to resume: {run.path} is not a directory")
        if not run.file(CONFIG).is_file():
            raise FileNotFoundError(f"nothing to resume: {run.path} holds no run (no {CONFIG})")
        kind = run.kind()
        if kind != "search":
            what = f"a `{kind}` run" if kind else "a run of unknown kind"
            raise ValueError(
                f"cannot resume {run.path}: it holds {what}, not a search (--resume continues "
                "only `autobalance search` runs); choose another --out"
            )
        if latest_checkpoint(run.checkpoint_dir) is None:  # last.pt, or prev.pt after a kill
            raise FileNotFoundError(
                f"nothing to resume in {run.path}: no {CHECKPOINTS}/last.pt (the search "
                "stopped before its first epoch ended); remove the folder and start the "
                "search again without --resume"
            )
        return run

    def kind(self) -> str | None:
        """``search`` or ``train``: from ``summary.json``, else the command in ``env.json``,
        else ``search`` when a checkpoint exists; ``None`` when it cannot be told."""
        for name, key in ((SUMMARY, "kind"), (ENV, "command")):
            try:
                data = self.read_json(name) if self.file(name).is_file() else None
            except (OSError, ValueError):
                data = None
            if not isinstance(data, dict):
                continue
            value = data.get(key)
            if key == "command":
                value = value[1] if isinstance(value, list) and len(value) > 1 else None
            if value in ("search", "train"):
                return str(value)
        if (self.checkpoint_dir / "last.pt").is_file():
            return "search"
        return None

    def record_resume(self, *, device: str, argv: Iterable[str] | None = None) -> Path:
        """Append a ``resumed`` entry (command, device, host, time) to ``env.json``, keeping the
        original start record.

        A resume on another host or torch build (a :func:`_host_record` key differs from the
        start record's) continues exactly from the checkpoint, but its later epochs need not
        match an uninterrupted run to the last digit (CPU kernels differ by SIMD level): it is
        logged as a warning and the entry's ``host_changed`` names the keys."""
        env: dict[str, Any] = {}
        if self.file(ENV).is_file():
            try:
                loaded = self.read_json(ENV)
            except ValueError:  # unreadable JSON: start the record again
                loaded = None
            env = loaded if isinstance(loaded, dict) else {}
        resumed = env.get("resumed")
        entries: list[Any] = list(resumed) if isinstance(resumed, list) else []
        host = _host_record()
        changed = [k for k, v in host.items() if k in env and env[k] != v]
        entry: dict[str, Any] = {
            "command": list(sys.argv if argv is None else argv),
            "device": device,
            "torch_threads": torch.get_num_threads(),
            **host,
            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if changed:
            entry["host_changed"] = changed
            log.warning(
                "resuming %s on another host or build (%s): it continues from its checkpoint, "
                "but need not match an uninterrupted run to the last digit",
                self.path,
                ", ".join(f"{k} {env[k]!r} → {host[k]!r}" for k in changed),
            )
        entries.append(entry)
        env["resumed"] = entries
        return self.write_json(ENV, env)

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Hold the advisory lock ``.lock`` (``fcntl.flock``) while writing this run.

        Raises :class:`RunLockedError` at once when another process holds it. Re-entrant within
        this process for the same folder (any :class:`RunDir` object of it); a no-op where
        ``fcntl`` does not exist. The lock goes with the process: a killed run leaves the file
        but not the lock.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield self
            return
        key = str(self.path.resolve())
        held = _HELD_LOCKS.get(key)
        if held is None:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.file(LOCK), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip()
                os.close(fd)
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise RunLockedError(
                    f"{self.path} is being written by another autobalance process{who}; "
                    "wait for it to end or choose another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            held = _HELD_LOCKS[key] = [fd, 0]
        held[1] += 1
        try:
            yield self
        finally:
            held[1] -= 1
            if held[1] == 0:
                del _HELD_LOCKS[key]
                fcntl.flock(held[0], fcntl.LOCK_UN)
                os.close(held[0])

    def remove_temp_files(self) -> list[Path]:
        """Delete the temp files of killed atomic writes (call with :meth:`lock` held)."""
        return [*remove_orphan_temps(self.path), *remove_orphan_temps(self.checkpoint_dir)]

    # ------------------------------------------------------------------ files
    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_text(json.dumps(to_jsonable(obj), indent=2) + "\n", self.file(name))

    def read_json(self, name: str) -> Any:
        p = self.file(name)
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found")
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)

    def write_config(self, cfg: ExperimentConfig) -> Path:
        return atomic_write_text(dump_config(cfg), self.file(CONFIG))

    def read_config(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(read_config_file(self.file(CONFIG)))

    def write_env(self, *, seed: int, device: str, argv: Iterable[str] | None = None) -> Path:
        """Versions, platform, device, seed and the command line; the host name is left out."""
        from autobalance import __version__

        env: dict[str, Any] = {
            "autobalance": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            **_host_record(),
            "device": device,
            "seed": seed,
            "command": list(sys.argv if argv is None else argv),
            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if device.startswith("cuda") and torch.cuda.is_available():
            env["device_name"] = torch.cuda.get_device_name(torch.device(device))
        return self.write_json(ENV, env)

    def write_records(self, name: str, records: Iterable[dict[str, Any]]) -> Path:
        """Rewrite a ``.jsonl`` file atomically (used at the end of a run, after a resume)."""
        return atomic_write_text("".join(json_line(r) for r in records), self.file(name))

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.file(METRICS))

    def hyper_steps(self) -> list[dict[str, Any]]:
        return read_jsonl(self.file(HYPER_STEPS))

    def save_model(self, model: nn.Module) -> Path:
        """The final ``state_dict`` as ``model.pt``, written atomically."""
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return atomic_save(state, self.file(MODEL))

    def load_model_state(self) -> dict[str, torch.Tensor]:
        return safe_load(self.file(MODEL))

    def write_trajectory(
        self, trajectory: list[dict[str, Any]], clusters: list[int] | torch.Tensor
    ) -> Path:
        """α per epoch as CSV rows (epoch, phase, class, group, cluster, w, l, Δ)."""
        atomic_write_text(trajectory_csv(trajectory, clusters), self.file(TRAJECTORY))
        return self.file(TRAJECTORY)

    def trajectory(self) -> list[dict[str, Any]]:
        return read_trajectory(self.file(TRAJECTORY))


def trajectory_csv(trajectory: list[dict[str, Any]], clusters: list[int] | torch.Tensor) -> str:
    """CSV text of a search trajectory (``SearchResult.trajectory``).

    Each record holds the effective ``weight``/``additive``/``multiplicative`` as (K,) or (K, G)
    lists; ``clusters`` maps each flattened class/cell to its cluster of D_π.
    """
    cl = [int(c) for c in (clusters.tolist() if isinstance(clusters, torch.Tensor) else clusters)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRAJECTORY_COLUMNS)
    for rec in trajectory:
        w = np.asarray(rec["weight"], dtype=np.float64)
        l = np.asarray(rec["additive"], dtype=np.float64)
        d = np.asarray(rec["multiplicative"], dtype=np.float64)
        grouped = w.ndim == 2
        n_groups = w.shape[1] if grouped else 1
        for k in range(w.shape[0]):
            for g in range(n_groups):
                idx = (k, g) if grouped else (k,)
                writer.writerow(
                    [
                        rec["epoch"],
                        rec["phase"],
                        k,
                        g if grouped else "",
                        cl[k * n_groups + g] if cl else "",
                        f"{w[idx]:.8g}",
                        f"{l[idx]:.8g}",
                        f"{d[idx]:.8g}",
                    ]
                )
    return buf.getvalue()


def read_trajectory(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``alpha_trajectory.csv`` with numbers parsed (``group``, ``cluster`` None when
    absent)."""
    return read_typed_csv(path, _TRAJECTORY_TYPES)


# ---------------------------------------------------------------------- callbacks


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    # α per epoch goes to alpha_trajectory.csv, not to every metrics line
    return {k: v for k, v in record.items() if k != "alpha"}


def _position(phase: str, epoch: Any) -> tuple[int, int]:
    """Where an epoch's record falls in a run: warm-up/search (or train) epochs, then retrain."""
    return (1 if phase == "retrain" else 0, int(epoch) if isinstance(epoch, int) else -1)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a ``.jsonl`` file, without a line torn by a kill."""
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


class MetricsWriter(Callback):
    """Appends one JSON line per epoch to ``metrics.jsonl`` and per hyper-step to
    ``hyper_steps.jsonl``, flushed at once so a live run can be followed (``tail -f``).

    A resumed run replays the epochs after its checkpoint: before its first line, the writer
    drops the lines of that epoch and of every later one (and a line torn by the kill), so no
    epoch or hyper-step appears twice.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._trimmed = False

    def _trim(self, start: tuple[int, int]) -> None:
        """Keep only the records before position ``start`` (once, at the first event)."""
        if self._trimmed:
            return
        self._trimmed = True
        for name in (METRICS, HYPER_STEPS):
            path = self.run.file(name)
            if not path.is_file():
                continue
            records = _read_lines(path)
            if name == METRICS:
                keep = [r for r in records if _position(r.get("phase", ""), r.get("epoch")) < start]
            else:  # hyper-steps are taken in search epochs
                keep = [r for r in records if _position("search", r.get("epoch")) < start]
            if len(keep) != len(records) or not path.read_text(encoding="utf-8").endswith("\n"):
                self.run.write_records(name, keep)

    def _append(self, name: str, obj: dict[str, Any]) -> None:
        with open(self.run.file(name), "a", encoding="utf-8") as fh:
            fh.write(json_line(obj))

    def on_epoch_end(self, phase: str, epoch: int, record: dict[str, Any]) -> None:
        self._trim(_position(phase, epoch))
        self._append(METRICS, {"phase": phase, "epoch": epoch, **_strip(record)})

    def on_hyper_step(self, phase: str, step: int, info: dict[str, Any]) -> None:
        self._trim(_position(phase, info.get("epoch")))
        self._append(HYPER_STEPS, {"phase": phase, "step": step, **info})


# ---------------------------------------------------------------------- executing runs


CONFUSION_MAX_CLASSES = 200  # summary.json keeps the K × K test confusion up to this K


def confusion_counts(exp: Experiment, model: nn.Module, device: str) -> list[list[int]] | None:
    """Test confusion counts ``C[k][j] = #{test samples with y = k and ŷ = j}`` (argmax of the
    raw logits), for the run report's confusion matrix; None for a streamed test set or more
    than :data:`CONFUSION_MAX_CLASSES` classes."""
    from autobalance.train import predict

    data = exp.test
    x = getattr(data, "x", None)
    k = int(data.num_classes)
    if not isinstance(x, torch.Tensor) or k > CONFUSION_MAX_CLASSES:
        return None
    pred = predict(model, x, transform=exp.eval_transform, device=device).cpu().long()
    cells = data.y.cpu().long() * k + pred
    return torch.bincount(cells, minlength=k * k).reshape(k, k).tolist()


def _final_metrics(exp: Experiment, model: nn.Module, device: str) -> dict[str, Any]:
    from autobalance.train import evaluate

    test = evaluate(model, exp.test, transform=exp.eval_transform, device=device)
    confusion = confusion_counts(exp, model, device)
    if confusion is not None:
        test["confusion"] = confusion
    return test


def _summary(
    cfg: ExperimentConfig,
    exp: Experiment,
    method: str,
    kind: str,
    test: dict[str, Any],
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": method,
        "kind": kind,
        "name": cfg.name,
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "seed": cfg.search.seed,
        "class_counts": exp.train.class_counts().tolist(),
        "class_names": list(exp.train.class_names or []),
        "test": test,
        "seconds": seconds,
    }
    if exp.train.groups is not None:
        out.update(loss_counts(exp.train))
        out["group_names"] = list(exp.train.group_names or [])
    out.update(extra or {})
    return out


def search_engine(cfg: ExperimentConfig, exp: Experiment, **kwargs: Any) -> Any:
    """The :class:`~autobalance.search.AutoBalanceSearch` of an experiment (its data, model and
    transforms); ``kwargs`` go to the engine (callbacks, checkpoint_dir)."""
    from autobalance.search import AutoBalanceSearch

    return AutoBalanceSearch(
        cfg.search,
        exp.model_fn,
        exp.train,
        test_data=exp.test,
        transform=exp.transform,
        eval_transform=exp.eval_transform,
        **kwargs,
    )


def run_search(
    cfg: ExperimentConfig,
    exp: Experiment,
    run: RunDir,
    *,
    resume: bool = False,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Algorithm 1 (``AutoBalanceSearch``) into ``run``; returns the run's summary.

    Holds the run's lock throughout (:class:`RunLockedError` if another process writes it).
    """
    with run.lock():
        run.remove_temp_files()
        return _run_search(cfg, exp, run, resume=resume, callbacks=callbacks)


def _run_search(
    cfg: ExperimentConfig,
    exp: Experiment,
    run: RunDir,
    *,
    resume: bool,
    callbacks: list[Callback] | None,
) -> dict[str, Any]:
    from autobalance.augment.io import link_policy, save_policy, write_policy_files
    from autobalance.provenance import fingerprint_of
    from autobalance.search import loss_from_alpha

    t0 = time.perf_counter()
    engine = search_engine(
        cfg,
        exp,
        callbacks=[MetricsWriter(run), *(callbacks or [])],
        checkpoint_dir=run.checkpoint_dir,
    )
    plan_progress(callbacks or [], search_plan(engine))  # θ-steps per phase: the run's ETA
    result = engine.run(resume=resume)
    seconds = time.perf_counter() - t0
    run.write_records(METRICS, [_strip(r) for r in result.history])
    run.write_records(HYPER_STEPS, [{"phase": "search", **h} for h in result.hyper_steps])
    learned = loss_from_alpha(result.alpha)
    learned.provenance = fingerprint_of(exp.train)  # `train --alpha` checks it (provenance.py)
    learned.save_json(run.file(ALPHA))
    run.write_json(SPACE, result.space.to_dict())
    run.write_trajectory(result.trajectory, result.space.clusters.cpu())
    if result.policy is not None:  # the learned augmentation policy, named in alpha.json
        write_policy_files(run.path, result.policy, result.trajectory)
        link_policy(run.file(ALPHA))
    guard = dict(result.guard)
    rejected = result.rejected_loss_module()
    if rejected is not None:  # the guard's fallback does not lose what the search found
        rejected.provenance = learned.provenance
        rejected.save_json(run.file(ALPHA_REJECTED))
        if result.rejected_policy is not None:
            save_policy(result.rejected_policy, run.file(POLICY_REJECTED))
            link_policy(run.file(ALPHA_REJECTED), POLICY_REJECTED)
        guard["rejected_alpha_file"] = ALPHA_REJECTED
    run.save_model(result.model)
    test = _final_metrics(exp, result.model, cfg.search.device)
    applied = sum(1 for h in result.hyper_steps if h.get("applied"))
    summary = _summary(
        cfg,
        exp,
        "autobalance",
        "search",
        test,
        seconds,
        {
            "timings": dict(result.timings),
            "hyper_steps": {"applied": applied, "skipped": len(result.hyper_steps) - applied},
            "alpha": {k: v.detach().cpu() for k, v in result.alpha.items()},
            "guard": guard,
        },
    )
    if result.rejected_alpha is not None:
        summary["rejected_alpha"] = {k: v.detach().cpu() for k, v in result.rejected_alpha.items()}
    run.write_json(SUMMARY, summary)
    return summary


def run_train(
    cfg: ExperimentConfig,
    exp: Experiment,
    run: RunDir,
    loss: nn.Module,
    method: str,
    *,
    callbacks: list[Callback] | None = None,
    augment: Any = None,
) -> dict[str, Any]:
    """Train one model with a fixed ``loss`` (``train.fit``) into ``run``; returns the summary.
    The schedule is the final model's, ``search.retrain_train`` when set (else ``search.train``),
    as in the search's retrain phase.
    ``augment``: a learned augmentation policy (``autobalance.augment``) applied, frozen, to
    every training batch after the experiment's transform.

    Holds the run's lock throughout (:class:`RunLockedError` if another process writes it).
    """
    with run.lock():
        run.remove_temp_files()
        return _run_train(cfg, exp, run, loss, method, callbacks=callbacks, augment=augment)


def _run_train(
    cfg: ExperimentConfig,
    exp: Experiment,
    run: RunDir,
    loss: nn.Module,
    method: str,
    *,
    callbacks: list[Callback] | None,
    augment: Any = None,
) -> dict[str, Any]:
    from autobalance.augment.factory import as_batch_augment
    from autobalance.events import CallbackList
    from autobalance.train import fit

    device = cfg.search.device
    torch.manual_seed(cfg.search.seed)  # same initial θ as the search's models
    model = exp.model_fn().to(device)
    eval_sets = {"train": exp.train, "test": exp.test} if cfg.eval_train else {"test": exp.test}
    # a fixed loss trains the final model, like the search's retrain phase: same schedule, so
    # that a baseline and AutoBalance's retrained model are compared at equal budget
    train_cfg = cfg.search.retrain_config()
    plan_progress(
        callbacks or [], {"train": train_cfg.epochs * train_cfg.steps_per_epoch(len(exp.train))}
    )
    t0 = time.perf_counter()
    records = fit(
        model,
        loss,
        exp.train,
        train_cfg,
        seed=cfg.search.seed,
        eval_sets=eval_sets,
        transform=exp.transform,
        eval_transform=exp.eval_transform,
        device=device,
        callbacks=CallbackList([MetricsWriter(run), *(callbacks or [])]),
        augment=as_batch_augment(None if augment is None else augment.to(device)),
    )
    seconds = time.perf_counter() - t0
    run.write_records(METRICS, records)
    run.save_model(model)
    test = _final_metrics(exp, model, device)
    summary = _summary(cfg, exp, method, "train", test, seconds, {"timings": {"train": seconds}})
    run.write_json(SUMMARY, summary)
    return summary


__all__ = [
    "ALPHA",
    "CONFIG",
    "ENV",
    "HYPER_STEPS",
    "METRICS",
    "MODEL",
    "REPORT",
    "SUMMARY",
    "TRAJECTORY",
    "EpochLogger",
    "MetricsWriter",
    "ProgressBar",
    "RunDir",
    "RunLockedError",
    "config_diff",
    "confusion_counts",
    "default_run_path",
    "json_line",
    "progress_callbacks",
    "read_jsonl",
    "read_trajectory",
    "run_search",
    "run_train",
    "search_engine",
    "to_jsonable",
    "trajectory_csv",
]
