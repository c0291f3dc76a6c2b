"""The learned loss as a drop-in for nn.CrossEntropyLoss: keywords, no host reads, compile, JSON."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autobalance.losses import ParametricCE
from autobalance.provenance import ProvenanceWarning, data_fingerprint, provenance_mismatch

K, G, N, D = 4, 2, 24, 6


def _loss(groups: int = 1, **kwargs) -> ParametricCE:
    torch.manual_seed(0)
    shape = (K,) if groups == 1 else (K, groups)
    return ParametricCE(
        K,
        groups,
        weight=torch.rand(shape) + 0.5,
        additive=torch.randn(shape),
        multiplicative=torch.rand(shape) + 0.5,
        **kwargs,
    )


def _batch(seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=gen)
    y = torch.randint(0, K, (N,), generator=gen)
    g = torch.randint(0, G, (N,), generator=gen)
    return x, y, g


def test_keywords_of_cross_entropy_and_positional_use_agree() -> None:
    logits, y, g = torch.randn(N, K), *_batch()[1:]
    loss = _loss()
    assert torch.equal(loss(input=logits, target=y), loss(logits, y))
    group_loss = _loss(G)
    assert torch.equal(group_loss(input=logits, target=y, groups=g), group_loss(logits, y, g))


def test_identity_loss_replaces_cross_entropy_in_a_training_step() -> None:
    x, y, _ = _batch()
    for criterion in (nn.CrossEntropyLoss(), ParametricCE(K, learn=())):
        torch.manual_seed(1)
        model = nn.Linear(D, K)
        criterion(input=model(x), target=y).backward()
        if isinstance(criterion, nn.CrossEntropyLoss):
            reference = model.weight.grad.clone()
    assert torch.allclose(model.weight.grad, reference, atol=1e-6)


@contextmanager
def _no_host_reads() -> Iterator[None]:
    """Every Tensor → Python read (item, tolist, bool, int, float) raises while active."""

    def refuse(self: Tensor, *args: object) -> None:
        raise AssertionError("a host read in the loss's forward/backward")

    names = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    try:
        for name in names:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


@pytest.mark.parametrize("groups", [1, G])
def test_forward_and_backward_read_nothing_back_without_value_checks(groups: int) -> None:
    logits = torch.randn(N, K, requires_grad=True)
    _, y, g = _batch()
    kw = {"groups": g} if groups > 1 else {}
    loss = _loss(groups, check_values=False)
    with _no_host_reads():
        loss(input=logits, target=y, **kw).backward()
    assert logits.grad is not None
    # the value checks are the only reads: with them on, the guard fires
    checked = _loss(groups, check_values=True)
    with pytest.raises(AssertionError, match="host read"), _no_host_reads():
        checked(logits, y, **kw)


def test_check_values_false_skips_the_label_range_check() -> None:
    logits, y = torch.randn(N, K), torch.full((N,), K + 3)
    with pytest.raises(ValueError, match="targets must lie"):
        _loss()(logits, y)
    with pytest.raises(IndexError):  # torch's own error (CPU), not ours
        _loss(check_values=False)(logits, y)


class _Net(nn.Module):
    def __init__(self, loss: ParametricCE) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, K))
        self.loss = loss

    def forward(self, x: Tensor, y: Tensor, g: Tensor | None = None) -> Tensor:
        return self.loss(input=self.body(x), target=y, groups=g)


def _compiled_step_matches_eager(backend: str, groups: int) -> None:
    x, y, g = _batch()
    gg = g if groups > 1 else None
    torch.manual_seed(0)
    eager = _Net(_loss(groups))  # value checks on (the default): skipped while compiling
    torch.manual_seed(0)
    compiled_net = _Net(_loss(groups))
    torch._dynamo.reset()
    step = torch.compile(compiled_net, backend=backend, fullgraph=True)  # a graph break fails
    out_eager, out_compiled = eager(x, y, gg), step(x, y, gg)
    out_eager.backward()
    out_compiled.backward()
    assert torch.allclose(out_compiled, out_eager, atol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), compiled_net.parameters()):
        assert q.grad is not None and torch.allclose(p.grad, q.grad, atol=1e-5), name


@pytest.mark.parametrize("groups", [1, G])
def test_torch_compile_traces_model_and_loss_as_one_graph(groups: int) -> None:
    """fullgraph=True: no graph break, so no host read, in model + loss, forward and backward.
    ``aot_eager`` traces exactly what inductor would get, without its C++ compile (seconds)."""
    _compiled_step_matches_eager("aot_eager", groups)


@pytest.mark.slow
@pytest.mark.skipif(
    not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")),
    reason="torch.compile's inductor backend needs a C compiler on CPU; none is on PATH",
)
def test_torch_compile_inductor_backward_step_on_cpu() -> None:
    """The default backend, compiled to C++ (about 20 s on 2 cores with a cold cache)."""
    _compiled_step_matches_eager("inductor", 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_no_device_sync_on_cuda_without_value_checks() -> None:
    logits = torch.randn(N, K, device="cuda", requires_grad=True)
    y = torch.randint(0, K, (N,), device="cuda")
    loss = _loss(check_values=False).cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss(input=logits, target=y).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert logits.grad is not None


def test_json_carries_the_dataset_and_old_files_warn(tmp_path) -> None:
    loss = _loss()
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    loss.provenance = data_fingerprint(y, num_classes=K, name="toy")
    path = tmp_path / "alpha.json"
    loss.save_json(path)
    again = ParametricCE.load_json(path, learn=())
    assert again.provenance == loss.provenance and again.provenance["class_counts"] == [3, 2, 1, 1]
    logits, y = torch.randn(N, K), _batch()[1]
    assert torch.allclose(again(logits, y), loss(logits, y).detach(), atol=1e-6)
    data = json.loads(path.read_text())
    data.pop("data")
    data["version"] = 1
    path.write_text(json.dumps(data))
    with pytest.warns(ProvenanceWarning, match="without the dataset"):
        old = ParametricCE.load_json(path)
    assert old.provenance is None
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        ParametricCE.load_json(path)


def test_provenance_mismatch_names_both_datasets() -> None:
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    a = data_fingerprint(y, num_classes=K, name="toy")
    shuffled = data_fingerprint(y.flip(0), num_classes=K, name="toy")
    assert shuffled["labels_sha256"] != a["labels_sha256"]
    assert provenance_mismatch(a, shuffled) is None  # another draw, same counts and name
    other = data_fingerprint(y[1:], num_classes=K, name="toy")
    assert "class counts [3, 2, 1, 1]" in provenance_mismatch(a, other)
    renamed = data_fingerprint(y, num_classes=K, name="other")
    assert "'other'" in provenance_mismatch(a, renamed)
    g = torch.tensor([0, 1, 0, 1, 0, 1, 0])
    grouped = data_fingerprint(y, g, num_classes=K, num_groups=2, name="toy")
    assert grouped["group_counts"] == [[2, 1], [1, 1], [0, 1], [1, 0]]
    assert provenance_mismatch(a, grouped) is not None


def test_cross_entropy_limit_by_keyword() -> None:
    logits, y = torch.randn(N, K), _batch()[1]
    expected = F.cross_entropy(logits, y)
    assert torch.allclose(ParametricCE(K)(input=logits, target=y), expected)
