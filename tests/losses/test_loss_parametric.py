"""Parametric CE (eq. 2.2 / 4.2): limits, hand formulas, derivatives, the module and its JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import log_softmax
from torch.autograd import gradcheck, gradgradcheck

import autobalance.losses.parametric as parametric_module
from autobalance.losses import ParametricCE, parametric_cross_entropy

N, K, G = 7, 5, 3

# torch's forward-mode AD decompositions call the deprecated torch.jit.script on first use.
forward_ad = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")


@pytest.fixture(params=["fused", "autograd"])
def path(request, monkeypatch) -> str:
    """Run a test through the fused autograd function (CPU default) and the plain-op path."""
    types = {"cpu"} if request.param == "fused" else set()
    monkeypatch.setattr(parametric_module, "FUSED_DEVICE_TYPES", types)
    return request.param


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(N, K, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, K, (N,), generator=gen)
    groups = torch.randint(0, G, (N,), generator=gen)
    return logits, targets, groups


def _params(shape: tuple[int, ...], seed: int = 1) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
    l = torch.randn(shape, generator=gen, dtype=torch.float64)
    d = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
    return w, l, d


def _np_reference(logits, targets, groups, w, l, d) -> np.ndarray:
    """Per-sample w_{y,g} · (−log softmax(Δ[:, g] ⊙ x + l[:, g])_y), one sample at a time."""
    x, y = logits.numpy(), targets.numpy()
    w, l, d = (np.asarray(a) for a in (w, l, d))
    out = np.empty(len(y))
    for i in range(len(y)):
        g = None if groups is None else int(groups[i])
        wi = w[y[i]] if g is None else w[y[i], g]
        li = l if g is None else l[:, g]
        di = d if g is None else d[:, g]
        out[i] = -wi * log_softmax(di * x[i] + li)[y[i]]
    return out


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_identity_parameters_equal_cross_entropy(batch, reduction: str) -> None:
    logits, targets, groups = batch
    expected = F.cross_entropy(logits, targets, reduction=reduction)
    got = parametric_cross_entropy(logits, targets, reduction=reduction)
    torch.testing.assert_close(got, expected)
    ones, zeros = torch.ones(K, dtype=torch.float64), torch.zeros(K, dtype=torch.float64)
    got = parametric_cross_entropy(
        logits, targets, weight=ones, additive=zeros, multiplicative=ones, reduction=reduction
    )
    torch.testing.assert_close(got, expected)
    ones_g, zeros_g = torch.ones(K, G, dtype=torch.float64), torch.zeros(K, G, dtype=torch.float64)
    got = parametric_cross_entropy(
        logits,
        targets,
        weight=ones_g,
        additive=zeros_g,
        multiplicative=ones_g,
        groups=groups,
        reduction=reduction,
    )
    torch.testing.assert_close(got, expected)


def test_class_form_matches_numpy(path, batch) -> None:
    logits, targets, _ = batch
    w, l, d = _params((K,))
    ref = _np_reference(logits, targets, None, w, l, d)
    got = parametric_cross_entropy(
        logits, targets, weight=w, additive=l, multiplicative=d, reduction="none"
    )
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    mean = parametric_cross_entropy(logits, targets, weight=w, additive=l, multiplicative=d)
    np.testing.assert_allclose(mean.item(), ref.mean(), rtol=1e-12)  # not divided by Σ w
    total = parametric_cross_entropy(
        logits, targets, weight=w, additive=l, multiplicative=d, reduction="sum"
    )
    np.testing.assert_allclose(total.item(), ref.sum(), rtol=1e-12)


def test_group_form_matches_numpy(path, batch) -> None:
    logits, targets, groups = batch
    w, l, d = _params((K, G))
    ref = _np_reference(logits, targets, groups, w, l, d)
    got = parametric_cross_entropy(
        logits, targets, weight=w, additive=l, multiplicative=d, groups=groups, reduction="none"
    )
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


def test_group_form_mixes_shared_and_per_group_tables(batch) -> None:
    logits, targets, groups = batch
    w, l, _ = _params((K, G))
    shared = torch.linspace(0.5, 1.5, K, dtype=torch.float64)
    ref = _np_reference(logits, targets, groups, w, l, shared[:, None].expand(K, G).numpy())
    got = parametric_cross_entropy(
        logits,
        targets,
        weight=w,
        additive=l,
        multiplicative=shared,
        groups=groups,
        reduction="none",
    )
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


@forward_ad
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_class_form(path, batch, reduction: str) -> None:
    logits, targets, _ = batch
    inputs = tuple(t.clone().requires_grad_() for t in (logits, *_params((K,))))

    def fn(x, w, l, d):
        return parametric_cross_entropy(
            x, targets, weight=w, additive=l, multiplicative=d, reduction=reduction
        )

    assert gradcheck(fn, inputs, check_forward_ad=True)
    assert gradgradcheck(fn, inputs, check_fwd_over_rev=True)


@forward_ad
def test_gradcheck_group_form(path, batch) -> None:
    logits, targets, groups = batch
    inputs = tuple(t.clone().requires_grad_() for t in (logits, *_params((K, G))))

    def fn(x, w, l, d):
        return parametric_cross_entropy(
            x, targets, weight=w, additive=l, multiplicative=d, groups=groups, reduction="sum"
        )

    assert gradcheck(fn, inputs, check_forward_ad=True)
    assert gradgradcheck(fn, inputs)


@forward_ad
@pytest.mark.parametrize("which", ["additive", "multiplicative", "weight"])
def test_gradcheck_single_component(path, batch, which: str) -> None:
    logits, targets, _ = batch
    value = dict(zip(("weight", "additive", "multiplicative"), _params((K,))))[which]
    inputs = (logits.clone().requires_grad_(), value.clone().requires_grad_())

    def fn(x, v):
        return parametric_cross_entropy(x, targets, reduction="none", **{which: v})

    assert gradcheck(fn, inputs, check_forward_ad=True)
    assert gradgradcheck(fn, inputs)


@forward_ad
def test_hvp_forward_over_reverse_matches_double_backward(path, batch) -> None:
    logits, targets, _ = batch
    w, l, d = _params((K,))

    def loss(x):
        return parametric_cross_entropy(x, targets, weight=w, additive=l, multiplicative=d)

    def reference(x):  # written independently with autograd primitives only
        z = x * d + l
        return (-(torch.log_softmax(z, 1)[torch.arange(N), targets]) * w[targets]).mean()

    v = torch.randn(N, K, dtype=torch.float64)
    _, hv_func = torch.func.jvp(torch.func.grad(loss), (logits,), (v,))
    _, hv_double = torch.autograd.functional.hvp(loss, logits, v)
    _, hv_ref = torch.autograd.functional.hvp(reference, logits, v)
    torch.testing.assert_close(hv_func, hv_ref)
    torch.testing.assert_close(hv_double, hv_ref)


def test_backward_twice_with_retained_graph(batch) -> None:
    logits, targets, _ = batch
    x = logits.clone().requires_grad_()
    w, l, d = (t.clone().requires_grad_() for t in _params((K,)))
    loss = parametric_cross_entropy(x, targets, weight=w, additive=l, multiplicative=d)
    first = torch.autograd.grad(loss, (x, w, l, d), retain_graph=True)
    second = torch.autograd.grad(loss, (x, w, l, d))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)


def test_float32_gradients_match_autograd_reference(batch) -> None:
    logits, targets, _ = batch
    x = logits.float().requires_grad_()
    w, l, d = (t.float().requires_grad_() for t in _params((K,)))
    parametric_cross_entropy(x, targets, weight=w, additive=l, multiplicative=d).backward()
    x2, w2, l2, d2 = (t.detach().clone().requires_grad_() for t in (x, w, l, d))
    z = x2 * d2 + l2
    (-(torch.log_softmax(z, 1)[torch.arange(N), targets]) * w2[targets]).mean().backward()
    for a, b in ((x, x2), (w, w2), (l, l2), (d, d2)):
        torch.testing.assert_close(a.grad, b.grad)


# -- module --------------------------------------------------------------------------------------


def test_module_default_is_cross_entropy(batch) -> None:
    logits, targets, _ = batch
    loss = ParametricCE(K).double()
    torch.testing.assert_close(loss(logits, targets), F.cross_entropy(logits, targets))
    assert loss.delta_logit is not None
    torch.testing.assert_close(loss.effective_multiplicative, torch.ones(K, dtype=torch.float64))


def test_module_initialisation_inverts_the_maps() -> None:
    w, l, d = (t.float() for t in _params((K, G)))
    d = d.clamp(max=1.9)
    loss = ParametricCE(K, G, weight=w, additive=l, multiplicative=d)
    torch.testing.assert_close(loss.log_weight.detach(), w.log())
    # Δ = 2σ(d) ⇔ d = log(Δ / (2 − Δ))
    torch.testing.assert_close(loss.delta_logit.detach(), torch.log(d / (2 - d)))
    torch.testing.assert_close(loss.effective_weight.detach(), w)
    torch.testing.assert_close(loss.effective_additive.detach(), l)
    torch.testing.assert_close(loss.effective_multiplicative.detach(), d)
    assert {n for n, _ in loss.named_parameters()} == {"log_weight", "additive_raw", "delta_logit"}


def test_module_clamps_delta_at_the_scale_and_broadcasts() -> None:
    loss = ParametricCE(K, G, multiplicative=2.0, additive=torch.arange(K, dtype=torch.float64))
    eff = loss.effective_multiplicative.detach()
    assert eff.shape == (K, G) and bool((eff < 2).all()) and bool((eff > 2 - 1e-5).all())
    torch.testing.assert_close(
        loss.effective_additive.detach(), torch.arange(K).float()[:, None].expand(K, G)
    )


def test_module_frozen_components_are_buffers(batch) -> None:
    logits, targets, _ = batch
    loss = ParametricCE(K, additive=torch.ones(K), learn=("multiplicative",)).double()
    assert [n for n, _ in loss.named_parameters()] == ["delta_logit"]
    assert loss.log_weight is None and "additive_raw" in dict(loss.named_buffers())
    expected = F.cross_entropy(logits + 1.0, targets)  # Δ = 2σ(0) = 1, l = 1
    torch.testing.assert_close(loss(logits, targets), expected)


def test_module_gradcheck_raw_parameters(batch) -> None:
    logits, targets, groups = batch
    w, l, d = _params((K, G))
    loss = ParametricCE(K, G, weight=w, additive=l, multiplicative=d, reduction="sum").double()
    names = [n for n, _ in loss.named_parameters()]
    raw = tuple(p.detach().clone().requires_grad_() for p in loss.parameters())

    def fn(*params):
        return torch.func.functional_call(loss, dict(zip(names, params)), (logits, targets, groups))

    assert gradcheck(fn, raw)
    # The chain rule by hand: ∂ℓ/∂log w = w ∂ℓ/∂w, ∂ℓ/∂d = 2σ(d)(1−σ(d)) ∂ℓ/∂Δ.
    eff = tuple(t.clone().requires_grad_() for t in (w, l, d))
    parametric_cross_entropy(
        logits,
        targets,
        weight=eff[0],
        additive=eff[1],
        multiplicative=eff[2],
        groups=groups,
        reduction="sum",
    ).backward()
    loss(logits, targets, groups).backward()
    sig = torch.sigmoid(loss.delta_logit.detach())
    torch.testing.assert_close(loss.log_weight.grad, w * eff[0].grad)
    torch.testing.assert_close(loss.additive_raw.grad, eff[1].grad)
    torch.testing.assert_close(loss.delta_logit.grad, 2 * sig * (1 - sig) * eff[2].grad)


def test_module_group_form_needs_groups(batch) -> None:
    logits, targets, _ = batch
    with pytest.raises(ValueError, match="groups"):
        ParametricCE(K, G).double()(logits, targets)


def test_json_round_trip(tmp_path, batch) -> None:
    logits, targets, groups = batch
    w, l, d = _params((K, G))
    loss = ParametricCE(
        K, G, weight=w, additive=l, multiplicative=d, delta_scale=3.0, learn=("additive",)
    )
    path = tmp_path / "alpha.json"
    loss.save_json(path)
    data = json.loads(path.read_text())
    assert data["num_classes"] == K and data["num_groups"] == G and data["delta_scale"] == 3.0
    np.testing.assert_allclose(np.array(data["additive"]), l.numpy(), rtol=1e-6)
    loaded = ParametricCE.load_json(path)
    assert loaded.learn == ("additive",)
    for name in ("effective_weight", "effective_additive", "effective_multiplicative"):
        torch.testing.assert_close(getattr(loaded, name), getattr(loss, name))
    torch.testing.assert_close(
        loaded.double()(logits, targets, groups), loss.double()(logits, targets, groups)
    )
    frozen = ParametricCE.load_json(path, learn=())
    assert list(frozen.parameters()) == []


def test_json_round_trip_keeps_identity_components(tmp_path) -> None:
    loss = ParametricCE(K, additive=torch.zeros(K), learn=())
    path = tmp_path / "la.json"
    loss.save_json(path)
    data = json.loads(path.read_text())
    assert data["weight"] is None and data["multiplicative"] is None
    loaded = ParametricCE.load_json(path)
    assert loaded.log_weight is None and loaded.delta_logit is None


def test_from_dict_rejects_foreign_data() -> None:
    with pytest.raises(ValueError, match="format"):
        ParametricCE.from_dict({"num_classes": 3})
    data = ParametricCE(3).to_dict()
    del data["additive"]
    with pytest.raises(ValueError, match="missing keys"):
        ParametricCE.from_dict(data)


# -- bad input -----------------------------------------------------------------------------------


def test_bad_component_shapes(batch) -> None:
    logits, targets, groups = batch
    with pytest.raises(ValueError, match=r"additive must have shape \(5,\)"):
        parametric_cross_entropy(logits, targets, additive=torch.zeros(K + 1))
    with pytest.raises(ValueError, match="groups is None"):
        parametric_cross_entropy(logits, targets, weight=torch.ones(K, G))
    with pytest.raises(ValueError, match="disagree on G"):
        parametric_cross_entropy(
            logits, targets, weight=torch.ones(K, G), additive=torch.zeros(K, G + 1), groups=groups
        )
    with pytest.raises(ValueError, match=r"group ids must lie in \[0, 3\)"):
        parametric_cross_entropy(logits, targets, weight=torch.ones(K, G), groups=groups + G)


def test_bad_module_arguments() -> None:
    with pytest.raises(ValueError, match="expected a subset of"):
        ParametricCE(K, learn=("margin",))
    with pytest.raises(ValueError, match="weight must be finite and > 0"):
        ParametricCE(K, weight=torch.zeros(K))
    with pytest.raises(ValueError, match="multiplicative must lie in"):
        ParametricCE(K, multiplicative=torch.full((K,), 2.5))
    with pytest.raises(ValueError, match="delta_scale"):
        ParametricCE(K, delta_scale=0.0)
    with pytest.raises(ValueError, match="Unknown reduction"):
        ParametricCE(K, reduction="avg")
    with pytest.raises(ValueError, match="must be a scalar"):
        ParametricCE(K, additive=torch.zeros(K + 2))
