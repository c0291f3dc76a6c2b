"""Reuse a learned loss in your own PyTorch training loop ("train once, reuse the loss").

AutoBalance's α* is a plain ``nn.Module`` loss, ``ParametricCE``: a drop-in for
``nn.CrossEntropyLoss`` (``criterion(input=logits, target=y)``). This example

1. gets α*: from ``--alpha FILE`` (a run's alpha.json, ``AutoBalanceClassifier.loss_``), or by
   a short search on long-tailed Gaussian data;
2. checks that α* was learned on this dataset (its saved class counts and fingerprint);
3. trains a fresh model in a hand-written loop with α* frozen, optionally under
   ``torch.compile`` (``--compile``), and the same loop with ``nn.CrossEntropyLoss``;
4. prints the balanced test accuracy of both.

    python examples/reuse_loss.py                   # learn α* first (about 20 s on a CPU)
    python examples/reuse_loss.py --alpha runs/ab/alpha.json --force
    python examples/reuse_loss.py --tiny            # seconds (CI; or AUTOBALANCE_EXAMPLE_TINY=1)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autobalance import ParametricCE, SearchConfig, make_model, search
from autobalance.data import long_tailed_gaussians
from autobalance.metrics import balanced_error
from autobalance.provenance import fingerprint_of, provenance_mismatch


def train_loop(
    criterion: nn.Module, train: Any, epochs: int, compile_step: bool = False
) -> nn.Module:
    """A plain mini-batch SGD loop: the loss is the only thing AutoBalance changes."""
    x, y = train.x, train.y
    torch.manual_seed(0)
    model = make_model("mlp", train.num_classes, in_features=x.shape[1], hidden=(64,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = criterion(input=model(xb), target=yb)
        loss.backward()
        return loss

    run = torch.compile(step) if compile_step else step
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(64):
            optimizer.zero_grad()
            run(x[idx], y[idx])
            optimizer.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alpha", type=Path, help="a saved loss (alpha.json)")
    parser.add_argument("--force", action="store_true", help="use an α* of another dataset")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    parser.add_argument("--out", type=Path, default=Path("reuse-run"))
    parser.add_argument("--tiny", action="store_true", help="2 epochs (CI)")
    args = parser.parse_args()
    epochs = 2 if args.tiny or os.environ.get("AUTOBALANCE_EXAMPLE_TINY") == "1" else 30

    train = long_tailed_gaussians(num_classes=6, imbalance_ratio=50, split="train", seed=0)
    test = long_tailed_gaussians(num_classes=6, imbalance_ratio=50, split="test", seed=0)

    if args.alpha is None:  # 1. learn α* once
        cfg = SearchConfig()
        cfg.train.epochs = epochs
        result = search(cfg, lambda: make_model("mlp", 6, in_features=train.x.shape[1]), train)
        criterion = result.loss_module()
        criterion.provenance = fingerprint_of(train)  # what `autobalance search` saves too
        args.out.mkdir(parents=True, exist_ok=True)
        args.alpha = args.out / "alpha.json"
        criterion.save_json(args.alpha)
    criterion = ParametricCE.load_json(args.alpha, learn=())  # frozen: no gradients to α

    # 2. was α* learned on this dataset?
    if criterion.provenance is not None:
        reason = provenance_mismatch(criterion.provenance, fingerprint_of(train))
        if reason is not None and not args.force:
            raise SystemExit(f"{args.alpha}: {reason} (--force to use it anyway)")

    # 3. your loop, twice: with α* and with plain cross-entropy
    scores = {}
    for name, loss in (("learned loss α*", criterion), ("cross-entropy", nn.CrossEntropyLoss())):
        model = train_loop(loss, train, epochs, compile_step=args.compile)
        with torch.no_grad():
            pred = model(test.x).argmax(1)
        scores[name] = 1.0 - balanced_error(test.y, pred)
    for name, score in scores.items():  # 4.
        print(f"{name:<16} balanced test accuracy {score:.3f}")


if __name__ == "__main__":
    main()
