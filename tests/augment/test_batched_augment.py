from __future__ import annotations

import numpy as np
import pytest
import torch

from autobalance.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    Normalize,
    make_image_transform,
    random_crop,
    random_flip,
)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def test_crop_matches_numpy_pad_and_slice() -> None:
    x = images()
    out = random_crop(x, 4, torch.Generator().manual_seed(7))
    offsets = torch.randint(0, 9, (2, 6), generator=torch.Generator().manual_seed(7)).numpy()
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(6):
        a, b = offsets[:, i]
        assert np.array_equal(out[i].numpy(), padded[i, :, a : a + 32, b : b + 32])
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_crop_zero_border_size() -> None:
    x = torch.full((64, 3, 32, 32), 255, dtype=torch.uint8)
    out = random_crop(x, 4, torch.Generator().manual_seed(0))
    offsets = torch.randint(0, 9, (2, 64), generator=torch.Generator().manual_seed(0))
    dy, dx = (offsets - 4).abs()
    zeros = 3 * (32 * 32 - (32 - dy) * (32 - dx))  # pixels shifted in from the padding
    assert torch.equal((out == 0).sum(dim=(1, 2, 3)), zeros)
    assert torch.equal(random_crop(x, 0), x)


def test_flip_matches_mask() -> None:
    x = images(50)
    out = random_flip(x, 0.5, torch.Generator().manual_seed(3))
    mask = torch.rand(50, generator=torch.Generator().manual_seed(3)) < 0.5
    for i in range(50):
        want = np.flip(x[i].numpy(), axis=2) if mask[i] else x[i].numpy()
        assert np.array_equal(out[i].numpy(), want)
    assert torch.equal(random_flip(x, 0.0), x)
    assert torch.equal(random_flip(x, 1.0), x.flip(3))


def test_normalize_formula() -> None:
    x = images(2)
    out = Normalize(CIFAR10_MEAN, CIFAR10_STD)(x)
    ref = (x.numpy() / 255.0 - np.array(CIFAR10_MEAN)[:, None, None]) / np.array(CIFAR10_STD)[
        :, None, None
    ]
    assert out.dtype == torch.float32
    assert np.allclose(out.numpy(), ref, atol=1e-5)
    with pytest.raises(ValueError, match="expected 3 channels"):
        Normalize(CIFAR10_MEAN, CIFAR10_STD)(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize((0.0,), (0.0,))


def test_make_image_transform_train_eval_and_resume() -> None:
    x = images(8)
    norm = Normalize(CIFAR10_MEAN, CIFAR10_STD)
    assert torch.equal(make_image_transform(train=False)(x), norm(x))
    t1 = make_image_transform(train=True, seed=11)
    ref = norm(random_flip(random_crop(x, 4, g := torch.Generator().manual_seed(11)), 0.5, g))
    assert torch.equal(t1(x), ref)
    # resuming from state_dict reproduces the next batch exactly
    t2 = make_image_transform(train=True, seed=0)
    t2.load_state_dict(t1.state_dict())
    assert torch.equal(t1(x), t2(x))
    cl = make_image_transform(train=False, channels_last=True)(x)
    assert cl.is_contiguous(memory_format=torch.channels_last)


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_crop(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="padding"):
        random_crop(torch.zeros(1, 3, 4, 4), -1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    x = images(16)
    cpu = make_image_transform(train=True, seed=4)(x)
    gpu = make_image_transform(train=True, seed=4)(x.cuda())
    assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu, atol=1e-6)
