"""B7: scale-out throughput, 2 processes (torchrun, DDP) against 1, measured side by side.

Each round runs the same ``autobalance search`` once with 1 process and once with N processes
(``torchrun --standalone --nproc_per_node=N -m autobalance search``), in alternating order, and
reads the search and retrain wall time from each run's ``summary.json`` (``timings``; process
start-up and data loading are not counted). Throughput is training samples per second over the
search and retrain epochs. The reported figure is the median over rounds of the per-round ratio
N-process / 1-process throughput (PROTOCOLS: a speed target is a ratio measured in one run).

On a CPU each process gets ``--threads`` torch threads (default 1), so N processes use N cores
against the single process's one: the ratio is the scale-out a user gets from N cores this way.
On GPUs, run it with ``--device cuda`` on a machine with N GPUs (one process per GPU, NCCL).

    python benchmarks/b7_ddp.py --procs 2 --rounds 3          # CPU, gloo

The workload: B1's CIFAR10-LT (ρ = 100) at n_max = 1,000 (2,480 images), ResNet-8 (a
compute-heavy, 78k-parameter model: little to all-reduce per step), global batch 128, no
augmentation, 2 search epochs (hyper-steps from 40 %) and 2 retrain epochs, guard reference off.
It needs the lossy-JPEG CIFAR-10 in ``$AUTOBALANCE_DATA``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS_DIR, environment, update_summary, write_json_atomic

SETTINGS = [
    "dataset.options={n_max: 1000}",
    "search.train.epochs=2",
    "search.train.batch_size=128",
    "search.train.warmup_epochs=0",
    "search.hyper.interval=10",
    "search.guard.reference=false",
    "search.guard.check_from_scratch=false",
    "augment=false",
]
PRESET = "cifar10-lt-cpu"  # lossy-JPEG CIFAR-10 from $AUTOBALANCE_DATA (../shared/data here)


def run_once(procs: int, threads: int, device: str, out: Path) -> dict:
    cmd = [sys.executable, "-m"]
    if procs > 1:
        cmd += ["torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m"]
    cmd += ["autobalance", "search", "--preset", PRESET, "--set", *SETTINGS]
    cmd += [f"search.device={device}", "--out", str(out), "--quiet", "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    t = summary["timings"]
    seconds = float(t["search"]) + float(t.get("retrain", 0.0))
    n = sum(summary["class_counts"])
    epochs = 4  # 2 search + 2 retrain
    return {"seconds": seconds, "wall": wall, "samples_per_s": epochs * n / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "b7_ddp.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = (1, args.procs) if r % 2 == 0 else (args.procs, 1)
            got = {}
            for p in order:
                got[p] = run_once(p, args.threads, args.device, Path(tmp) / f"r{r}-p{p}")
            ratio = got[args.procs]["samples_per_s"] / got[1]["samples_per_s"]
            rows.append({"round": r, "one": got[1], "many": got[args.procs], "ratio": ratio})
            print(
                f"round {r}: 1 process {got[1]['samples_per_s']:.0f} samples/s, "
                f"{args.procs} processes {got[args.procs]['samples_per_s']:.0f} samples/s, "
                f"ratio {ratio:.2f}",
                flush=True,
            )
    median = statistics.median(r["ratio"] for r in rows)
    print(f"median throughput ratio {args.procs} : 1 processes = {median:.2f}")
    payload = {
        "protocol": "B7",
        "procs": args.procs,
        "threads_per_process": args.threads,
        "device": args.device,
        "settings": SETTINGS,
        "rounds": rows,
        "median_ratio": median,
        "environment": environment(),
    }
    write_json_atomic(args.out, payload)
    update_summary(
        "b7",
        [
            {
                "method": "autobalance",
                "seed": r["round"],
                "samples_per_s": r["one"]["samples_per_s"],
            }
            for r in rows
        ]
        + [
            {
                "method": f"autobalance+ddp{args.procs}",
                "seed": r["round"],
                "samples_per_s": r["many"]["samples_per_s"],
                "ratio": r["ratio"],
            }
            for r in rows
        ],
        metrics=("samples_per_s", "ratio"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
