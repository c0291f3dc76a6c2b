"""Atomic, checksummed checkpoints and safe loading.

Every file is written to a temporary file in the target directory, flushed and fsync'ed, then
renamed over the target, and the directory is fsync'ed, so a kill at any point leaves either the
old or the new file, never a torn one (a kill can leave an orphan ``.NAME.*.tmp``:
:func:`remove_orphan_temps` clears them when a run directory is opened for writing).

Checkpoints (:func:`save_checkpoint`) carry a header with the SHA-256 and the length of their
payload, verified before anything is unpickled; the previous checkpoint is kept as ``prev.pt``
beside ``last.pt``, so a damaged ``last.pt`` falls back to it (:func:`load_latest`). The payload
is a ``torch.save`` stream read with ``torch.load(weights_only=True)``: checkpoints hold only
tensors and plain Python containers, never pickled objects. Plain ``torch.save`` files (a
``model.pt``, a checkpoint of an older version) load too, without the checksum check.

:class:`RecordLog` is the append-only journal of the search's history: a checkpoint pins its
prefix by (size, SHA-256) instead of carrying the whole history every epoch.

``AUTOBALANCE_FAULT`` is a testing hook (:func:`fault_point`): the fault-injection tests set it
to kill the process with SIGKILL at a named point (an epoch end, between a temp file's write and
its rename, half-way through a write) and check that ``--resume`` recovers exactly.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import random
import re
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch

log = logging.getLogger("autobalance")

MAGIC = b"AUTOBALANCE-CHECKPOINT 1\n"
_HEADER = re.compile(rb"sha256 ([0-9a-f]{64}) ([0-9]+)\n")
_HEADER_MAX = 128
LAST = "last.pt"
PREV = "prev.pt"
FAULT_ENV = "AUTOBALANCE_FAULT"
_fault_hits: dict[str, int] = {}


# ---------------------------------------------------------------------- testing hook
def fault_point(name: str) -> None:
    """Testing hook: SIGKILL this process when ``$AUTOBALANCE_FAULT`` names this point.

    ``AUTOBALANCE_FAULT=NAME`` kills at the first time the point ``NAME`` is reached,
    ``NAME@k`` at the k-th time in this process. Points: ``warmup:epoch:E``, ``search:epoch:E``,
    ``retrain:epoch:E`` (the epoch's end, after its metrics were written, before its
    checkpoint), ``write:FILE`` (a temp file is complete, before its rename over ``FILE``),
    ``partial:FILE`` (half of ``FILE``'s temp file is written), ``rotate:last.pt`` (``last.pt``
    moved to ``prev.pt``, the new one not yet in place). Unset, it costs one dict lookup.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------- atomic writes
def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename in it is durable (a no-op where that is impossible)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(path: Path, write: Callable[[IO[bytes]], object]) -> str:
    """A temp file beside ``path`` filled by ``write(fh)``, flushed and fsync'ed; its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600; follow the umask like open() does
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fault_point(f"write:{path.name}")
    return tmp


def _replace(tmp: str, path: Path) -> Path:
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``obj`` with ``torch.save`` to ``path`` atomically (a plain torch file: temp file,
    fsync, rename, directory fsync). Checkpoints use :func:`save_checkpoint` instead."""
    path = Path(path)

    def write(fh: IO[bytes]) -> None:
        torch.save(obj, fh)
        fault_point(f"partial:{path.name}")

    return _replace(_write_temp(path, write), path)


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    path = Path(path)
    data = memoryview(text.encode("utf-8"))

    def write(fh: IO[bytes]) -> None:
        half = len(data) // 2
        fh.write(data[:half])
        fh.flush()
        fault_point(f"partial:{path.name}")
        fh.write(data[half:])

    return _replace(_write_temp(path, write), path)


class _Hashing:
    """A write-only stream that hashes and counts what passes through it to ``fh``."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def _header(digest: str, size: int) -> bytes:
    return MAGIC + f"sha256 {digest} {size:020d}\n".encode("ascii")


def save_checkpoint(obj: Any, path: str | os.PathLike[str], *, keep_previous: bool = True) -> Path:
    """Save ``obj`` atomically behind a header with its SHA-256 and length; the file it replaces
    becomes ``prev.pt``.

    The payload is streamed (``torch.save`` through a hashing writer, no copy in memory), then
    the header is written in front of it. The new checkpoint is complete on disk (fsync'ed)
    before the old one moves: at every instant ``last.pt`` or ``prev.pt`` holds a whole,
    verifiable checkpoint (after a kill between the two renames, only ``prev.pt``).
    """
    path = Path(path)
    placeholder = len(_header("0" * 64, 0))

    def write(fh: IO[bytes]) -> None:
        fh.write(b"\0" * placeholder)
        stream = _Hashing(fh)
        torch.save(obj, stream)  # type: ignore[arg-type]
        fault_point(f"partial:{path.name}")
        fh.seek(0)
        fh.write(_header(stream.sha.hexdigest(), stream.size))

    tmp = _write_temp(path, write)
    try:
        if keep_previous and path.exists():
            os.replace(path, path.with_name(PREV))
            fault_point(f"rotate:{path.name}")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return _replace(tmp, path)


def remove_orphan_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that a killed atomic write left in ``directory``.

    Call it only while no other process writes there (a run directory's lock held).
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    removed = []
    for p in d.glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# ---------------------------------------------------------------------- loading
def _read_verified(path: Path) -> tuple[bytes | memoryview, bool]:
    """The torch payload of ``path`` and whether a checksum vouched for it; ValueError if not."""
    data = path.read_bytes()
    if not data:
        raise ValueError(f"cannot read checkpoint {path}: the file is empty")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise ValueError(f"cannot read checkpoint {path}: truncated ({len(data)} bytes)")
        return data, False
    m = _HEADER.match(data, len(MAGIC), len(MAGIC) + _HEADER_MAX)
    if m is None:
        raise ValueError(f"cannot read checkpoint {path}: damaged or truncated header")
    digest, size = m.group(1).decode("ascii"), int(m.group(2))
    payload = memoryview(data)[m.end() :]
    if len(payload) < size:
        raise ValueError(
            f"cannot read checkpoint {path}: truncated ({len(payload)} of {size} payload bytes)"
        )
    if len(payload) > size:
        raise ValueError(f"cannot read checkpoint {path}: {len(payload) - size} bytes too many")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError(f"cannot read checkpoint {path}: checksum mismatch (the file is damaged)")
    return payload, True


def _torch_load(payload: bytes | memoryview, path: Path, map_location: str | torch.device) -> Any:
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: one readable line, not torch's advice
        if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
            why = "it holds pickled Python objects, which weights-only loading refuses"
        elif bytes(payload[:4]) != b"PK\x03\x04":
            why = "not a torch checkpoint"
        else:
            first = str(exc).strip().splitlines()
            why = f"damaged or truncated torch file ({first[0] if first else type(exc).__name__})"
        raise ValueError(f"cannot read checkpoint {path}: {why}") from exc


def read_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[Any, bool]:
    """``(object, verified)``: the checkpoint at ``path`` and whether its checksum was checked.

    Raises FileNotFoundError when it is missing and ValueError (one line) when it is empty,
    truncated, damaged or foreign.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload, verified = _read_verified(path)
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    return _torch_load(payload, path, map_location), verified


def safe_load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint or torch file with ``weights_only=True`` after checking its checksum
    (when it has one); a one-line ValueError if it is empty, truncated, damaged or foreign."""
    return read_checkpoint(path, map_location)[0]


def load_latest(
    directory: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    check: Callable[[Any], None] | None = None,
) -> tuple[Any, Path] | None:
    """The newest usable checkpoint in ``directory``: ``last.pt``, else ``prev.pt``.

    ``check(obj)`` may reject a loaded checkpoint with ValueError (e.g. its journal does not
    match). A damaged ``last.pt`` is renamed ``last.pt.damaged`` (kept for inspection, and out
    of the way of the next rotation) when ``prev.pt`` is used instead, with a warning logged.
    None when neither exists; ValueError naming both when neither is usable.
    """
    d = Path(directory)
    errors: list[str] = []
    for name in (LAST, PREV):
        path = d / name
        if not path.is_file():
            continue
        try:
            obj, verified = read_checkpoint(path, map_location)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        try:
            if check is not None:
                check(obj)
        except ValueError as exc:
            errors.append(f"{path}: {exc}")
            continue
        if not verified:
            log.warning("checkpoint %s has no checksum (older format): not verified", path)
        if name == PREV:
            why = errors[0] if errors else f"{d / LAST} is missing"
            log.warning("resuming from the previous checkpoint %s: %s", path, why)
            if (d / LAST).exists():
                os.replace(d / LAST, d / (LAST + ".damaged"))
        return obj, path
    if errors:
        raise ValueError("no usable checkpoint to resume from: " + "; ".join(errors))
    return None


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """``last.pt`` in ``directory`` if it exists, else ``prev.pt`` if that does."""
    for name in (LAST, PREV):
        p = Path(directory) / name
        if p.is_file():
            return p
    return None


# ---------------------------------------------------------------------- journal
def _plain(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError(f"cannot journal a {type(obj).__name__}")


class RecordLog:
    """An append-only JSON-lines journal of named record lists (history, trajectory, …).

    A checkpoint stores :meth:`mark` — the journal's size, SHA-256 and record counts — instead
    of the records; :meth:`restore` verifies that prefix, cuts off what a killed run wrote after
    it, and returns the lists. Floats round-trip exactly (``repr``), NaN included.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._hash = hashlib.sha256()
        self._size = 0
        self._counts: dict[str, int] = {}

    def reset(self) -> None:
        """Start an empty journal (a fresh run)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as fh:
            fh.flush()
        self._hash, self._size, self._counts = hashlib.sha256(), 0, {}

    def sync(self, lists: dict[str, list[Any]]) -> dict[str, Any]:
        """Append the records of ``lists`` not journaled yet, fsync, and return the mark."""
        lines = []
        for name, records in lists.items():
            start = self._counts.get(name, 0)
            for rec in records[start:]:
                lines.append(json.dumps({"k": name, "r": rec}, default=_plain) + "\n")
            self._counts[name] = len(records)
        data = "".join(lines).encode("utf-8")
        with open(self.path, "ab") as fh:
            if data:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._hash.update(data)
        self._size += len(data)
        return self.mark()

    def mark(self) -> dict[str, Any]:
        return {"size": self._size, "sha256": self._hash.hexdigest(), "counts": dict(self._counts)}

    def read(self, mark: dict[str, Any]) -> dict[str, list[Any]]:
        """The lists pinned by ``mark`` (ValueError when the journal does not hold them)."""
        size, digest = int(mark["size"]), str(mark["sha256"])
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(size)
        except OSError as exc:
            raise ValueError(f"cannot read journal {self.path}: {exc.strerror or exc}") from exc
        if len(data) < size:
            raise ValueError(f"journal {self.path} is truncated ({len(data)} of {size} bytes)")
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"journal {self.path}: checksum mismatch (the file is damaged)")
        lists: dict[str, list[Any]] = {name: [] for name in mark["counts"]}
        for line in data.decode("utf-8").splitlines():
            item = json.loads(line)
            lists.setdefault(item["k"], []).append(item["r"])
        counts = {k: len(v) for k, v in lists.items()}
        if counts != {k: int(v) for k, v in mark["counts"].items()}:
            raise ValueError(f"journal {self.path} does not match its checkpoint: {counts}")
        return lists

    def restore(self, mark: dict[str, Any]) -> dict[str, list[Any]]:
        """:meth:`read`, then cut the journal back to ``mark`` and continue from there."""
        lists = self.read(mark)
        size = int(mark["size"])
        with open(self.path, "r+b") as fh:
            data = fh.read(size)
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())
        self._hash = hashlib.sha256(data)
        self._size = size
        self._counts = {k: len(v) for k, v in lists.items()}
        return lists


# ---------------------------------------------------------------------- RNG state
def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU, numpy, python) as weights_only-loadable data."""
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
        },
        "python": torch.tensor(
            [x for x in random.getstate()[1]], dtype=torch.int64
        ),  # Mersenne state words
        "python_version": int(random.getstate()[0]),
        "python_gauss": random.getstate()[2],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    words = tuple(int(x) for x in state["python"].tolist())
    random.setstate((state["python_version"], words, state["python_gauss"]))


__all__ = [
    "FAULT_ENV",
    "LAST",
    "PREV",
    "RecordLog",
    "atomic_save",
    "atomic_write_text",
    "fault_point",
    "fsync_dir",
    "latest_checkpoint",
    "load_latest",
    "read_checkpoint",
    "remove_orphan_temps",
    "rng_state",
    "safe_load",
    "save_checkpoint",
    "set_rng_state",
]
