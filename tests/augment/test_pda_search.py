"""A search with a learned augmentation policy, end to end: the API and the CLI (issue 12)."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from autobalance import AutoBalanceSearch, SearchConfig, make_model, search
from autobalance.augment import ImagePolicy, SphericalPolicy, make_image_transform
from autobalance.cli import main
from autobalance.config import apply_overrides, from_dict
from autobalance.data import InMemoryDataset

TINY = [
    "train.epochs=2",
    "train.batch_size=16",
    "train.warmup_epochs=0",
    "hyper.interval=2",
    "hyper_start=0.5",
    "space.num_clusters=2",
    "guard.enabled=false",  # keep the learned α* (the guard's fallback would reset it)
]


def tiny_images(counts: tuple[int, ...] = (40, 20, 10, 6), seed: int = 0) -> InMemoryDataset:
    """4 classes of random 8×8 RGB uint8 images, long-tailed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat(
        [torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8) for n in counts]
    )
    y = torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(counts)])
    return InMemoryDataset(x, y, num_classes=len(counts), name="tiny-images")


def config(*extra: str) -> SearchConfig:
    return from_dict(SearchConfig, apply_overrides({}, [*TINY, *extra]))


def run(cfg: SearchConfig, **kwargs: Any) -> Any:
    return search(
        cfg,
        lambda: make_model("resnet8", 4, in_shape=(3, 8, 8), width=4),
        tiny_images(),
        transform=make_image_transform(True, padding=1),
        eval_transform=make_image_transform(False),
        **kwargs,
    )


def _moved(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(not np.allclose(before[k], after[k], rtol=0, atol=1e-9) for k in before)


def test_pda_search_api_learns_the_policy_with_the_loss() -> None:
    res = run(config("augment.kind=pda", "augment.lr=0.5"))
    assert isinstance(res.policy, ImagePolicy) and res.policy is res.space.policy
    assert res.policy.num_policies == 2  # the loss's D_π clusters
    assert res.policy.clusters.tolist() == res.space.clusters.tolist()
    assert all(h["applied"] for h in res.hyper_steps) and res.hyper_steps
    rows = [r for r in res.trajectory if "augment" in r]
    assert len(rows) == len(res.trajectory) and rows[0]["phase"] == "init"
    assert _moved(rows[0]["augment"], rows[-1]["augment"])  # the policy's p and m moved
    assert _moved({"l": rows[0]["additive"]}, {"l": rows[-1]["additive"]})  # and so did l
    np.testing.assert_allclose(
        rows[-1]["augment"]["prob"], res.policy.probabilities().detach().numpy(), rtol=1e-6
    )


def test_a_fallback_keeps_the_rejected_policy_with_the_rejected_loss() -> None:
    forced = ("augment.kind=pda", "augment.lr=0.5", "guard.enabled=true")
    on = run(config(*forced, "guard.fallback_margin=-2"))  # every α* is rejected
    off = run(config(*forced, "guard.fallback_margin=-2", "guard.fallback=false"))
    assert on.guard["fell_back"] and on.rejected_policy is not None
    assert off.rejected_policy is None
    rejected = on.rejected_policy.probabilities().detach()
    torch.testing.assert_close(rejected, off.policy.probabilities().detach())
    assert not torch.allclose(rejected, on.policy.probabilities().detach())  # init is returned
    torch.testing.assert_close(on.rejected_alpha["additive"], off.alpha["additive"])


def test_the_guards_reference_and_check_do_not_change_what_the_search_finds() -> None:
    """The reference θ and the from-scratch check only score α*: with the fallback off, the
    searched α, the policy and the final model are the same without them (benchmarks' lever
    rows switch them off to save their ≈ 30 % of a run)."""
    forced = ("augment.kind=pda", "augment.lr=0.5", "guard.enabled=true", "guard.fallback=false")
    with_guard = run(config(*forced, "train.epochs=4", "hyper_start=0.25"))
    without = run(
        config(
            *forced,
            "train.epochs=4",
            "hyper_start=0.25",
            "guard.reference=false",
            "guard.check_from_scratch=false",
        )
    )
    assert "reference" in with_guard.timings and "check" in with_guard.timings
    assert "reference" not in without.timings and "check" not in without.timings
    assert len(with_guard.hyper_steps) >= 4
    for k, v in with_guard.alpha.items():
        torch.testing.assert_close(v, without.alpha[k], rtol=0, atol=0)
    torch.testing.assert_close(
        with_guard.policy.probabilities(), without.policy.probabilities(), rtol=0, atol=0
    )
    for k, v in with_guard.model.state_dict().items():
        torch.testing.assert_close(v, without.model.state_dict()[k], rtol=0, atol=0)


def test_policy_only_search_with_the_unrolled_hypergradient_keeps_the_loss_at_init() -> None:
    res = run(
        config(
            "augment.kind=single",
            "augment.search_loss=false",
            "augment.hypergrad=unrolled",
            "augment.lr=5.0",
        )
    )
    assert res.policy.num_policies == 1
    searched = [t for t in res.trajectory if t["phase"] != "final"]  # before the re-centring
    init, last = searched[0], searched[-1]
    for comp in ("weight", "additive", "multiplicative"):
        assert init[comp] == last[comp]  # the loss stays at space.init
    assert _moved(init["augment"], last["augment"])
    assert len(res.space.hparams()) == 2  # the policy's probabilities and magnitudes only


def test_default_search_has_no_policy() -> None:
    res = run(config("train.epochs=1", "retrain=false"))
    assert res.policy is None and res.space.policy is None
    assert all("augment" not in r for r in res.trajectory)


def test_spherical_search_on_features() -> None:
    g = torch.Generator().manual_seed(0)
    counts = (60, 20, 8)
    x = torch.cat([torch.randn(n, 5, generator=g) + 2.0 * k for k, n in enumerate(counts)])
    y = torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(counts)])
    data = InMemoryDataset(x, y, num_classes=3)
    cfg = config("augment.kind=spherical", "augment.per=class", "augment.lr=1.0", "retrain=false")
    res = search(cfg, lambda: make_model("mlp", 3, in_shape=(5,), hidden=(8,)), data)
    assert isinstance(res.policy, SphericalPolicy) and res.policy.num_policies == 3
    assert _moved(res.trajectory[0]["augment"], res.trajectory[-1]["augment"])


def test_image_policies_need_images_and_rgb_for_saturation() -> None:
    features = InMemoryDataset(torch.randn(40, 5), torch.arange(40) % 2, num_classes=2)
    with pytest.raises(ValueError, match=r"needs image inputs \(C, H, W\)"):
        AutoBalanceSearch(config("augment.kind=pda"), lambda: make_model("mlp", 2), features)
    grey = InMemoryDataset(torch.rand(40, 1, 8, 8), torch.arange(40) % 2, num_classes=2)
    with pytest.raises(ValueError, match="needs RGB images"):
        AutoBalanceSearch(config("augment.kind=single"), lambda: make_model("mlp", 2), grey)
    ok = config("augment.kind=single", "augment.ops=[rotate, cutout]")
    assert AutoBalanceSearch(ok, lambda: make_model("mlp", 2), grey).policy is not None


class _Stop(Exception):
    pass


def test_an_interrupted_pda_search_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4 epochs, hyper-steps from epoch 2: stopped after epoch 3, before its checkpoint; the
    # resume starts from epoch 2's (policy, α optimiser and journal mid-search)
    cfg = config("augment.kind=pda", "augment.lr=0.5", "train.epochs=4", "retrain=false")
    full = run(cfg)
    search_module = sys.modules["autobalance.search"]  # the package exports search(), too

    def stop_at(name: str) -> None:
        if name == "search:epoch:3":
            raise _Stop

    monkeypatch.setattr(search_module, "fault_point", stop_at)
    with pytest.raises(_Stop):
        run(cfg, checkpoint_dir=tmp_path)
    monkeypatch.setattr(search_module, "fault_point", lambda name: None)
    resumed = run(cfg, checkpoint_dir=tmp_path, resume=True)
    for a, b in zip(full.policy.hparams(), resumed.policy.hparams()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert full.trajectory == resumed.trajectory


# ---------------------------------------------------------------------- the CLI


def _fake_cifar10(root: Path, per_class: int = 6, n_test: int = 40) -> Path:
    """A tiny cifar-10-batches-py (official pickle layout) of random 32×32 images."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = np.repeat(np.arange(10), per_class)
    for i in range(1, 6):
        batch = labels if i == 1 else labels[:10]
        data = rng.integers(0, 256, (len(batch), 3072), dtype=np.uint8)
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump({b"data": data, b"labels": batch.tolist()}, fh)
    test = np.arange(n_test) % 10
    with open(folder / "test_batch", "wb") as fh:
        data = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
        pickle.dump({b"data": data, b"labels": test.tolist()}, fh)
    return root


def _cli_args(data: Path) -> list[str]:
    return [
        "--preset",
        "cifar10-lt-cpu",
        "--set",
        "dataset.name=cifar10_lt",
        f"dataset.path={data}",
        "dataset.options={verify: false, n_max: 7}",
        "dataset.imbalance_ratio=3",
        "model.name=mlp",
        "model.hidden=[16]",
        "search.train.epochs=2",
        "search.train.batch_size=16",
        "search.train.warmup_epochs=0",
        "search.hyper.interval=1",
        "search.hyper_start=0.5",
        "search.space.num_clusters=3",
        "search.augment.kind=pda",
        "search.augment.ops=[translate, rotate, brightness, saturation, cutout, flip]",
        "--quiet",
    ]


def test_pda_search_and_train_through_the_cli(tmp_path: Path) -> None:
    data = _fake_cifar10(tmp_path / "data")
    out = tmp_path / "search"
    assert main(["search", *_cli_args(data), "--out", str(out), "--allow-no-search"]) == 0
    alpha = json.loads((out / "alpha.json").read_text())
    assert alpha["augment_policy"] == "augment_policy.json"
    saved = json.loads((out / "augment_policy.json").read_text())
    assert saved["kind"] == "pda" and len(saved["prob"]) == 3  # one policy per cluster
    assert saved["ops"] == ["translate", "rotate", "brightness", "saturation", "cutout", "flip"]
    assert saved["mean"] is not None  # the CIFAR normalisation: ops run in pixel space
    rows = (out / "augment_trajectory.csv").read_text().splitlines()
    assert rows[0] == "epoch,phase,cluster,op,prob,magnitude" and len(rows) > 1 + 3 * 6
    report = (out / "report.md").read_text()
    assert "augment_policy.png" in report and (out / "augment_policy.png").is_file()

    trained = tmp_path / "train"
    args = ["train", *_cli_args(data), "--alpha", str(out / "alpha.json"), "--out", str(trained)]
    assert main(args) == 0
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["augment_policy"] == "pda" and summary["method"] == "learned"
