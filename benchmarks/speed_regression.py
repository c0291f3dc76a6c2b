"""Is the training loop slower than at an earlier commit? A side-by-side throughput ratio.

Issue 11 rebuilt the data path (``as_dataset``, streaming, the distributed-aware loaders,
autocast, gradient clipping); B1's in-memory loop must not get slower. This script checks out
``--base`` (default: the commit before that work) into a temporary git worktree and runs the same
workload with the base tree's package and with the working tree's, in alternating order, each in
a fresh process (``PYTHONPATH=<tree>/src``), ``--rounds`` times. The workload is B1's θ-training
loop: ``fit`` of CIFAR ResNet-8 with cross-entropy on 4,096 random 3×32×32 uint8 images with
crop + flip, batch 128, ``--epochs`` epochs, 1 thread; its wall time excludes start-up. The
figure is the median over rounds of new / base seconds (< 1: faster now).

    python benchmarks/speed_regression.py --base 75c6ed2 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import RESULTS_DIR, environment, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]

# Runs inside each tree: only APIs both trees have (fit, TrainConfig, make_model, the
# in-memory dataset under either name, the batched image transform).
WORKLOAD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
import autobalance.data as D
from autobalance.augment import make_image_transform
from autobalance.losses import make_loss
from autobalance.models import make_model
from autobalance.train import TrainConfig, fit
Dataset = getattr(D, "InMemoryDataset", None) or D.dataset.TensorDataset
g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (4096, 3, 32, 32), generator=g, dtype=torch.uint8)
y = torch.randint(0, 10, (4096,), generator=g)
data = Dataset(x=x, y=y, num_classes=10)
tf = make_image_transform(True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), seed=0)
torch.manual_seed(0)
model = make_model("resnet8", 10, in_shape=(3, 32, 32))
cfg = TrainConfig(epochs=int(sys.argv[1]), batch_size=128, warmup_epochs=0)
t0 = time.perf_counter()
fit(model, make_loss("ce"), data, cfg, transform=tf)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _time(tree: Path, epochs: int) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(epochs)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"workload failed in {tree}:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="75c6ed2", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "speed_regression.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base],
            check=True,
            capture_output=True,
        )
        try:
            rows = []
            for r in range(args.rounds):
                order = (("base", base), ("new", ROOT))
                if r % 2:
                    order = order[::-1]
                got = {name: _time(tree, args.epochs) for name, tree in order}
                ratio = got["new"] / got["base"]
                rows.append({"round": r, **got, "ratio": ratio})
                print(
                    f"round {r}: base {got['base']:.1f} s, new {got['new']:.1f} s, "
                    f"ratio {ratio:.3f}",
                    flush=True,
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                check=False,
                capture_output=True,
            )
    median = statistics.median(r["ratio"] for r in rows)
    print(f"median new / base time = {median:.3f} (base {args.base})")
    write_json_atomic(
        args.out,
        {
            "base": args.base,
            "epochs": args.epochs,
            "rounds": rows,
            "median_ratio": median,
            "environment": environment(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
