"""Helpers shared by the benchmark scripts: CLI bits, side-by-side timing, JSON and tables.

Every speed figure of a protocol is a ratio measured in the same process (PROTOCOLS.md): the
machines are shared and noisy, so :func:`ratio_timer` interleaves the candidates round by round
and reports the median of the per-round ratios to a baseline.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def make_parser(name: str, description: str, *, repeats: int) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares.

    ``--repeats`` (timing rounds), ``--out`` (default ``benchmarks/results/<name>.json``),
    ``--seed`` and ``--threads`` (torch intra-op threads; 0 keeps torch's default).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=repeats, help="timing rounds")
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR / f"{name}.json", help="JSON results file"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)"
    )
    return parser


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads (``0`` keeps the default); return the number in use."""
    if threads < 0:
        raise ValueError(f"threads must be ≥ 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def environment() -> dict[str, Any]:
    """Versions, CPU and thread settings, and the git commit, for the results file."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), cpu)
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        # the SIMD level torch's CPU kernels dispatch to: runs of one seed agree bit for bit only
        # on hosts with the same capability (benchmarks/README.md, "Same seed, other host")
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "git_commit": commit or None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def host_signature(env: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The part of a results file's ``environment()`` that decides bit-level reproducibility.

    Runs of one seed agree to the last digit only on like hosts: every B1 and B1-fit run made
    on the ``…-fc-v669`` platform shares its seed's warm-up to the digit, every one on
    ``…-fc-v657`` shares another (benchmarks/README.md, "Same seed, other host"). Returns
    (platform, SIMD capability; "" where an older file did not record it), or None without env.
    """
    if not env:
        return None
    return str(env.get("platform", "")), str(env.get("cpu_capability", ""))


def same_host(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool | None:
    """Whether two results files ran on like hosts (None when either lacks its environment).

    The SIMD capabilities are compared only when both files recorded one.
    """
    ha, hb = host_signature(a), host_signature(b)
    if ha is None or hb is None:
        return None
    return ha[0] == hb[0] and (not ha[1] or not hb[1] or ha[1] == hb[1])


def ratio_timer(
    fns: Mapping[str, Callable[[], object]],
    baseline: str,
    *,
    repeats: int,
    warmup: int = 3,
    min_sample_s: float = 2e-3,
) -> dict[str, dict[str, float]]:
    """Time each callable against ``fns[baseline]``, interleaved, in this process.

    After ``warmup`` calls of each, every one of ``repeats`` rounds times each callable once (the
    order rotates from round to round); a sample runs it ``number`` times in a row, with
    ``number`` chosen so that a baseline sample lasts at least ``min_sample_s``. For callable c
    the per-round ratio is r_j = t_c,j / t_baseline,j, and the summary is

        ratio = median_j r_j,   ratio_q25 / ratio_q75 = quartiles of r_j,
        ratio_of_min = min_j t_c,j / min_j t_baseline,j (the least disturbed samples),
        median_s = median_j t_c,j and min_s = min_j t_c,j (seconds per call).

    Returns ``{name: {"ratio", "ratio_q25", "ratio_q75", "ratio_of_min", "median_s", "min_s",
    "number"}}``.
    """
    if baseline not in fns:
        raise ValueError(f"Unknown baseline '{baseline}', expected one of {tuple(fns)}")
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    names = list(fns)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    t0 = time.perf_counter()
    fns[baseline]()
    number = max(1, math.ceil(min_sample_s / max(time.perf_counter() - t0, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                fn = fns[name]
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                times[name].append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    out: dict[str, dict[str, float]] = {}
    for name in names:
        ratios = [t / b for t, b in zip(times[name], times[baseline])]
        q25, _, q75 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        out[name] = {
            "ratio": statistics.median(ratios),
            "ratio_q25": q25,
            "ratio_q75": q75,
            "ratio_of_min": min(times[name]) / min(times[baseline]),
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "number": number,
        }
    return out


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, creating the parent folder; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    return path


def write_json_atomic(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write JSON to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, allow_nan=False, default=_jsonable)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run_path(folder: Path, method: str, seed: int) -> Path:
    """Where the B1 scripts keep one run: ``<folder>/<method>__s<seed>.json``."""
    return folder / f"{method}__s{seed}.json"


def load_run(folder: Path, method: str, seed: int) -> Any:
    """The per-run file :func:`run_path` of the B1 scripts, or None when it does not exist."""
    path = run_path(folder, method, seed)
    return read_json(path) if path.is_file() else None


SUMMARY_METRICS = ("balanced_error", "error", "worst_class_error", "seconds")


def update_summary(
    protocol: str,
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str] = RESULTS_DIR / "summary.json",
    metrics: Sequence[str] = SUMMARY_METRICS,
) -> dict[str, Any]:
    """Merge per-seed rows into ``summary.json``: ``{protocol: {method: {metric: [per seed]}}}``.

    Each row needs ``method`` and ``seed``; a method's lists are ordered by seed (the seeds are
    under ``"seeds"``) and a rerun seed replaces its earlier value. Other protocols and methods
    are kept; a metric that none of a method's seeds has is left out. The file is locked while
    it is read and rewritten, so concurrent benchmark processes can update it.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        summary = read_json(path) if path.is_file() else {}
        block = summary.setdefault(protocol, {})
        for method in sorted({str(r["method"]) for r in rows}):
            entry = block.get(method, {})
            by_seed: dict[int, dict[str, Any]] = {}
            for i, seed in enumerate(entry.get("seeds", [])):
                by_seed[int(seed)] = {m: entry[m][i] for m in metrics if m in entry}
            for r in rows:
                if r["method"] == method:
                    by_seed[int(r["seed"])] = {m: r[m] for m in metrics if m in r}
            seeds = sorted(by_seed)
            columns = {m: [by_seed[s].get(m) for s in seeds] for m in metrics}
            # a metric none of this method's seeds has (a fixed loss's guard verdict) is left out
            block[method] = {"seeds": seeds} | {
                m: v for m, v in columns.items() if any(x is not None for x in v)
            }
        write_json_atomic(path, summary)
    return summary


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats are printed with 2 decimals."""

    def cell(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# the guard's S_V scores that a run row keeps (``SearchResult.guard``): enough to replay any
# keep/fall-back rule offline (benchmarks/guard_rule.py)
GUARD_SCORES = (
    "final_val_score",
    "reference_val_score",
    "reference_paired_se",
    "from_scratch_val_score",
    "from_scratch_paired_se",
)


def train_acc_at_hyper_start(cfg: Any, result: Any) -> float | None:
    """Running training accuracy of the last epoch before the hyper-steps begin (the epoch
    ``round(hyper_start · E)``) of a search ``result`` run with ``cfg``; None when they start at
    epoch 0."""
    start = round(cfg.hyper_start * cfg.train.epochs)
    if not start:
        return None
    history = [r for r in result.history if r["phase"] in ("warmup", "search")]
    return history[start - 1]["train_acc"]


__all__ = [
    "GUARD_SCORES",
    "RESULTS_DIR",
    "environment",
    "format_table",
    "make_parser",
    "ratio_timer",
    "read_json",
    "set_threads",
    "train_acc_at_hyper_start",
    "update_summary",
    "write_json",
    "write_json_atomic",
]
