"""B1: CIFAR10-LT (ρ=100) — CE, LA, LDAM-DRW, CDT, VS and AutoBalance side by side.

Protocol: ../shared/PROTOCOLS.md, B1. The data are the LOSSY-JPEG CIFAR-10 copy in
``../shared/data`` (relative comparisons only; not comparable to published CIFAR-10 numbers).

    python benchmarks/b1_cifar10_lt.py [--seeds 0 1 2] [--scale cpu|paper] [--epochs E]
                                       [--device cpu|cuda] [--methods ce la ...]

Writes ``benchmarks/results/b1_cifar10_lt[_<tag>].json`` and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from autobalance import SearchConfig, evaluate, fit, make_loss, make_model, search
from autobalance.augment import CIFAR10_MEAN, CIFAR10_STD, make_image_transform
from autobalance.data import load_cifar_lt
from autobalance.presets import load_config
from autobalance.train import TrainConfig

HERE = Path(__file__).resolve().parent
METHODS = ("ce", "la", "ldam_drw", "cdt", "vs", "autobalance")


def default_npz() -> Path:
    root = Path(os.environ.get("AUTOBALANCE_DATA", HERE.parents[1] / "shared" / "data"))
    return root / "cifar10_jpeg_lossy" / "cifar10_jpeg_yoongikim.npz"


def train_config(scale: str, epochs: int | None) -> TrainConfig:
    """The θ schedule of the matching preset (cifar10-lt-cpu / cifar10-lt), optionally shortened."""
    preset = "cifar10-lt" if scale == "paper" else "cifar10-lt-cpu"
    tc = load_config(preset=preset).search.train
    e = epochs or tc.epochs
    return dataclasses.replace(
        tc, epochs=e, eval_every=max(1, e // (10 if scale == "paper" else 5))
    )


def autobalance_config(seed: int, tc: TrainConfig, device: str, overrides: dict) -> SearchConfig:
    cfg = SearchConfig(seed=seed, train=tc, device=device)
    cfg.space.init = "la"
    cfg.space.search = ("additive", "multiplicative")
    cfg.warmup_fraction = 0.4
    for key, value in overrides.items():
        obj, _, attr = key.rpartition(".")
        setattr(getattr(cfg, obj) if obj else cfg, attr, value)
    return cfg


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=default_npz(), help="lossy-JPEG CIFAR-10 .npz")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--scale", choices=("cpu", "paper"), default="cpu")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--set", nargs="*", default=[], help="AutoBalance overrides key=value (YAML)")
    p.add_argument("--tag", default="")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    if not args.data.is_file():
        raise SystemExit(f"B1 needs the lossy-JPEG CIFAR-10 npz; not found: {args.data}")
    tc = train_config(args.scale, args.epochs)
    arch = "resnet32" if args.scale == "paper" else "resnet8"
    dev = args.device
    tf_train = make_image_transform(True, CIFAR10_MEAN, CIFAR10_STD)
    tf_eval = make_image_transform(False, CIFAR10_MEAN, CIFAR10_STD)
    results: dict = {
        "protocol": "B1",
        "data": "LOSSY JPEG CIFAR-10 (relative only)",
        "arch": arch,
        "epochs": tc.epochs,
        "device": dev,
        "device_name": torch.cuda.get_device_name()
        if dev.startswith("cuda")
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "overrides": overrides,
        "runs": [],
    }
    out = args.out or HERE / "results" / f"b1_cifar10_lt{('_' + args.tag) if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.json")
    train, test = load_cifar_lt(args.data, imbalance_ratio=100, seed=0)  # the LT subset: seed 0
    counts = train.class_counts()
    for seed in args.seeds:

        def model_fn() -> torch.nn.Module:
            return make_model(arch, 10)

        for method in args.methods:
            t0 = time.perf_counter()
            extra: dict = {}
            if method == "autobalance":
                cfg = autobalance_config(seed, tc, dev, overrides)
                res = search(
                    cfg, model_fn, train, test_data=None, transform=tf_train, eval_transform=tf_eval
                )
                model = res.model
                extra = {
                    "alpha": {k: v.tolist() for k, v in res.alpha.items()},
                    "timings": res.timings,
                    "hyper_steps": len(res.hyper_steps),
                }
            else:
                opts = {"drw_epoch": int(0.75 * tc.epochs)} if method == "ldam_drw" else {}
                if method == "vs":
                    opts = {"gamma": 0.2, "tau": 1.2}
                if method == "cdt":
                    opts = {"gamma": 0.2}
                torch.manual_seed(seed)
                # LDAM's s=30 scales cosine logits: its paper and code use a normed head.
                model = make_model(arch, 10, norm_head=method == "ldam_drw")
                fit(
                    model,
                    make_loss(method, class_counts=counts, **opts),
                    train,
                    tc,
                    seed=seed,
                    transform=tf_train,
                    eval_transform=tf_eval,
                    device=dev,
                )
            wall = time.perf_counter() - t0
            m = evaluate(model, test, transform=tf_eval, device=dev)
            row = {
                "method": method,
                "seed": seed,
                "balanced_error": m["balanced_error"],
                "error": m["error"],
                "class_accuracy": [1 - e for e in m["class_errors"]],
                "seconds": wall,
                **extra,
            }
            results["runs"].append(row)
            partial.write_text(json.dumps(results, indent=1))  # survives a kill mid-run
            print(
                f"seed {seed} {method:12s} bal.err {m['balanced_error']:.4f}  {wall:7.1f}s",
                flush=True,
            )

    summary = {}
    for method in args.methods:
        rows = [r for r in results["runs"] if r["method"] == method]
        errs = [r["balanced_error"] for r in rows]
        summary[method] = {
            "balanced_error_mean": statistics.mean(errs),
            "balanced_error_std": statistics.stdev(errs) if len(errs) > 1 else 0.0,
            "seconds_mean": statistics.mean(r["seconds"] for r in rows),
        }
    if "ce" in summary and "autobalance" in summary:
        summary["time_ratio_autobalance_to_ce"] = (
            summary["autobalance"]["seconds_mean"] / summary["ce"]["seconds_mean"]
        )
    results["summary"] = summary
    out.write_text(json.dumps(results, indent=1))
    print(f"\nB1 ({arch}, E={tc.epochs}, {results['device_name']}; lossy-JPEG CIFAR-10)")
    print(f"{'method':12s} {'bal.err mean':>12s} {'std':>7s} {'time s':>8s}")
    for method in args.methods:
        s = summary[method]
        print(
            f"{method:12s} {s['balanced_error_mean']:12.4f} {s['balanced_error_std']:7.4f} "
            f"{s['seconds_mean']:8.1f}"
        )
    if "time_ratio_autobalance_to_ce" in summary:
        print(f"AutoBalance total time / CE time: {summary['time_ratio_autobalance_to_ce']:.2f}")
    partial.unlink(missing_ok=True)
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
