"""Where B1-paper's time goes: the cost of one θ-step and one hyper-step of ResNet-32.

B1-paper's AutoBalance run is far over its device budget (benchmarks/README.md, B1-paper). This
script times, in one process on one device, each part of it on CIFAR-shaped random images
(the timings do not depend on the pixels):

- ``bare_step``: a plain PyTorch θ-step (forward, cross-entropy, backward, SGD), batch 128;
- ``bare_step_bf16_cl``: the same under bf16 autocast with channels-last memory (the cheapest
  change a GPU run could take);
- ``fit_step``: one epoch of :func:`autobalance.fit` with the paper preset's schedule, LA loss
  and crop + flip on the device, per θ-step: the library's overhead over ``bare_step``
  (``fit_step_checks``: the same with the losses' per-step value checks on, as the CLI runs);
- ``hyper_step``: one hyper-step of the paper preset (10 training + 10 validation batches,
  Neumann series of 6 terms = 5 Hessian-vector products over the whole network);
- ``hyper_step_1x1``: the same with 1 + 1 batches (how the cost scales with the batch count);
- ``hyper_step_fused``: the paper's 10 + 10 batches in one forward each
  (``hyper.fuse_batches``; BatchNorm then normalises over the union).

Each line is printed as JSON and appended to ``--out`` as soon as it is measured, so a run cut
short by a time limit still reports what it finished. Times are medians of ``--repeats`` rounds,
after warm-up, with the device synchronised around each round.

    python benchmarks/b1_step_cost.py --device cuda --out step_cost.jsonl
    python benchmarks/b1_step_cost.py --device cpu --steps 2 --repeats 1 --hyper 1 \
        --arch resnet8 --batch 2 --n-max 200 --fit-rows 16                        # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from autobalance import fit, make_loss, make_model
from autobalance.augment import CIFAR10_MEAN, CIFAR10_STD, make_image_transform
from autobalance.config import SearchConfig
from autobalance.data import InMemoryDataset
from autobalance.data.longtail import long_tail_counts
from autobalance.losses import set_value_checks
from autobalance.presets import load_config
from autobalance.search import AutoBalanceSearch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (one warm-up call first)."""
    fn()
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def fake_cifar_lt(n_max: int, seed: int = 0) -> InMemoryDataset:
    """Random uint8 CIFAR-shaped images with CIFAR10-LT's class counts (ρ = 100)."""
    counts = long_tail_counts(n_max, 10, 100.0)
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.full((c,), k, dtype=torch.long) for k, c in enumerate(counts)])
    x = torch.randint(0, 256, (len(y), 3, 32, 32), generator=g, dtype=torch.uint8)
    return InMemoryDataset(x, y, 10, name="fake-cifar10-lt")


def bare_steps(
    device: torch.device, steps: int, batch: int, arch: str, *, bf16: bool = False
) -> Callable[[], None]:
    """``steps`` plain θ-steps of ``arch`` on one fixed device batch."""
    model = make_model(arch, 10).to(device)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, 32, 32, device=device)
    if bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def run() -> None:
        for _ in range(steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def paper_search_config(device: str, sets: list[str]) -> SearchConfig:
    """The ``cifar10-lt`` preset's search config with ``search.``-relative overrides."""
    overrides = [f"search.{kv}" for kv in (f"device={device}", *sets)]
    return load_config(preset="cifar10-lt", overrides=overrides).search


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=50, help="θ-steps per timed round")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hyper", type=int, default=3, help="hyper-steps per timed round")
    p.add_argument("--n-max", type=int, default=5000, help="CIFAR10-LT head class size")
    p.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    p.add_argument("--arch", default="resnet32", help="model (resnet8 for a CPU smoke run)")
    p.add_argument("--batch", type=int, default=128, help="θ-step and hyper-step batch size")
    p.add_argument("--fit-rows", type=int, default=None, help="rows of fit_step's epoch (all)")
    args = p.parse_args(argv)
    previous = set_value_checks(False)  # as B1 on a GPU: no host syncs for label checks
    try:
        return measure(args)
    finally:
        set_value_checks(previous)  # an in-process caller (the tests) keeps its setting


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows of :func:`main`, measured with the losses' value checks off."""
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows: list[dict[str, Any]] = []

    def emit(name: str, seconds: float, per: int, **extra: Any) -> None:
        row = {
            "name": name,
            "ms_per_unit": 1000 * seconds / per,
            "device": device_name,
            "arch": arch,
            "batch": b,
            "torch": torch.__version__,
            **extra,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out is not None:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    b, n, arch = args.batch, args.steps, args.arch
    run = bare_steps(device, n, b, arch)
    emit("bare_step", timed(run, device, args.repeats), n, unit="θ-step")
    if device.type == "cuda":
        run = bare_steps(device, n, b, arch, bf16=True)
        emit("bare_step_bf16_cl", timed(run, device, args.repeats), n, unit="θ-step")

    train = fake_cifar_lt(args.n_max)
    tf_train = make_image_transform(True, CIFAR10_MEAN, CIFAR10_STD)
    size = [f"train.batch_size={b}", f"retrain_train.batch_size={b}"]
    cfg = paper_search_config(args.device, size)
    tc = dataclasses.replace(cfg.retrain_config(), epochs=1, eval_every=10**6)
    loss = make_loss("la", class_counts=train.class_counts())
    rows_fit = train if args.fit_rows is None else train.subset(torch.arange(args.fit_rows))
    steps = tc.steps_per_epoch(len(rows_fit))

    def one_epoch() -> None:
        fit(make_model(arch, 10), loss, rows_fit, tc, transform=tf_train, device=device)

    emit("fit_step", timed(one_epoch, device, args.repeats), steps, unit="θ-step")
    # what `autobalance search/train` pays today: the losses' value checks on (a host read of
    # the labels' range per step), as nothing in the library's loops turns them off
    set_value_checks(True)
    emit("fit_step_checks", timed(one_epoch, device, args.repeats), steps, unit="θ-step")
    set_value_checks(False)

    for name, sets in (
        ("hyper_step", []),
        ("hyper_step_1x1", ["hyper.train_batches=1", "hyper.val_batches=1"]),
        ("hyper_step_fused", ["hyper.fuse_batches=true"]),
    ):
        scfg = paper_search_config(args.device, [*size, *sets])
        engine = AutoBalanceSearch(scfg, lambda: make_model(arch, 10), train, transform=tf_train)
        model = engine._new_model()
        opt = engine._alpha_optimizer()
        gen = torch.Generator().manual_seed(0)

        wd = scfg.alpha.weight_decay

        def hyper(engine=engine, model=model, opt=opt, gen=gen, wd=wd) -> None:
            for _ in range(args.hyper):
                engine.hyper_step(model, opt, gen, wd)

        h = scfg.hyper
        emit(
            name,
            timed(hyper, device, args.repeats),
            args.hyper,
            unit="hyper-step",
            batches=[h.train_batches, h.val_batches],
            hvps=h.iterations - 1,
        )
    return rows


if __name__ == "__main__":
    main()
