"""B4's caches (trained θ, hypergradients, descent probes) load with weights_only=True."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from b4_hypergrad import load_cache, save_cache  # noqa: E402

from autobalance.config import HyperConfig  # noqa: E402
from autobalance.models import resnet8  # noqa: E402
from autobalance.train import TrainConfig, make_optimizer, make_scheduler  # noqa: E402


def test_no_script_or_module_loads_with_weights_only_false() -> None:
    files = [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "src").rglob("*.py")]
    offenders = [str(p) for p in files if "weights_only=False" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_b4_cache_entries_round_trip_weights_only(tmp_path: Path) -> None:
    model = resnet8(10)
    cfg = TrainConfig(epochs=2)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, 3)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    sched.step()
    trained = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "info": {"seconds": 1.5, "history": [{"epoch": 0, "phase": "warmup", "lr": 0.1}]},
    }
    fidelity = {
        "official": {
            "hypergrad": torch.randn(20),
            "applied": True,
            "reason": None,
            "neumann_scale": 0.25,
            "seconds": 2.0,
            "plain_step_seconds": 0.1,
            "hyper_step_ratio": 20.0,
            "hyper": dataclasses.asdict(HyperConfig.official()),
            "batches": "10+10",
        }
    }
    descent = {"none": {"balanced_ce": 1.2, "balanced_error": 0.4, "delta": [0.0] * 20}}
    for i, obj in enumerate((trained, fidelity, descent)):
        path = tmp_path / f"c{i}.pt"
        save_cache(obj, path)
        back = load_cache(path)
        assert back.keys() == obj.keys()
    back = load_cache(tmp_path / "c0.pt")
    assert all(torch.equal(back["model"][k], v) for k, v in model.state_dict().items())
    assert load_cache(tmp_path / "c1.pt")["official"]["hyper"] == fidelity["official"]["hyper"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.pt", "c1.pt", "c2.pt"]
