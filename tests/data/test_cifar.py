from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autobalance.data import cifar
from autobalance.data.cifar import (
    decode_jpeg_blobs,
    download_cifar,
    load_cifar,
    load_cifar10_jpeg,
    load_cifar_lt,
    read_cifar_batch,
)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def shared_data() -> Path:
    env = os.environ.get("AUTOBALANCE_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def _write_batch(path: Path, data: np.ndarray, labels: list[int], key: bytes = b"labels") -> None:
    batch = {
        b"batch_label": b"training batch 1 of 5",
        key: labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def make_cifar10(root: Path, per_batch: int = 20, n_test: int = 30, seed: int = 0) -> dict:
    """Tiny cifar-10-batches-py in the official layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written: dict = {"train_x": [], "train_y": []}
    for b in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in (np.arange(per_batch) + b) % 10]
        _write_batch(folder / f"data_batch_{b}", data, labels)
        written["train_x"].append(data)
        written["train_y"] += labels
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_y = [i % 10 for i in range(n_test)]
    _write_batch(folder / "test_batch", test, test_y)
    written.update(test_x=test, test_y=test_y, train_x=np.concatenate(written["train_x"]))
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": per_batch}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def test_pixel_layout_and_labels(tmp_path: Path) -> None:
    w = make_cifar10(tmp_path)
    train = load_cifar(tmp_path, "cifar10", train=True, verify=False)
    test = load_cifar(tmp_path / "cifar-10-batches-py", "cifar10", train=False, verify=False)
    assert train.x.shape == (100, 3, 32, 32) and train.x.dtype == torch.uint8
    assert test.x.shape == (30, 3, 32, 32)
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each row-major 32×32
    flat = w["train_x"]
    for i, c, h, col in [(0, 0, 0, 0), (7, 1, 5, 31), (99, 2, 31, 17), (42, 2, 0, 9)]:
        assert int(train.x[i, c, h, col]) == int(flat[i, c * 1024 + h * 32 + col])
    assert train.y.tolist() == w["train_y"]
    assert test.y.tolist() == w["test_y"]
    assert train.class_names == CLASSES and train.num_classes == 10


def test_md5_verification_rejects_non_official_files(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    with pytest.raises(ValueError, match="MD5 mismatch"):
        load_cifar(tmp_path, "cifar10", verify=True)


def test_md5_of_known_file_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    table = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in os.listdir(folder)}
    monkeypatch.setitem(cifar.CIFAR_MD5, "cifar10", table)
    assert len(load_cifar(tmp_path, "cifar10", train=False, verify=True)) == 30


def test_published_md5_table() -> None:
    assert cifar.CIFAR_MD5["cifar10"]["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert cifar.CIFAR_MD5["cifar100"]["train"] == "16019d7e3df5f24257cddd939b257f8d"
    assert cifar.CIFAR_ARCHIVES["cifar10"][2] == "c58f30108f718f92721af3b95e74349a"


def test_python2_style_pickle_is_read(tmp_path: Path) -> None:
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    raw = pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2)
    # the official files were written by numpy 1 / Python 2: they reference numpy.core.multiarray
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    (tmp_path / "b").write_bytes(raw)
    x, y = read_cifar_batch(tmp_path / "b")
    assert np.array_equal(x.reshape(2, -1), data) and y.tolist() == [3, 4]


def test_pickle_with_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (os.getcwd, ())

    (tmp_path / "b").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_cifar_batch(tmp_path / "b")


def test_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py/\{data_batch_1"):
        load_cifar(tmp_path, "cifar10")
    with pytest.raises(ValueError, match="Unknown CIFAR name 'cifar1000'"):
        load_cifar(tmp_path, "cifar1000")


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 8), ("test", 5)):
        fine = [int(v) for v in rng.integers(0, 100, n)]
        batch = {
            b"filenames": [b"x.png"] * n,
            b"batch_label": split.encode(),
            b"fine_labels": fine,
            b"coarse_labels": [f // 5 for f in fine],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
        ds = load_cifar(tmp_path, "cifar100", train=split == "train", verify=False)
        assert ds.y.tolist() == fine and ds.num_classes == 100
    names = [f"c{i}".encode() for i in range(100)]
    meta = {b"fine_label_names": names, b"coarse_label_names": [b"s"] * 20}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    assert load_cifar(tmp_path, "cifar100", verify=False).class_names[7] == "c7"


def test_download_from_file_url_with_checksum(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_cifar10(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="wrong MD5"):
        download_cifar(dest, "cifar10", url=archive.as_uri(), md5="0" * 32)
    folder = download_cifar(dest, "cifar10", url=archive.as_uri(), md5=md5)
    assert folder == dest / "cifar-10-batches-py"
    assert len(load_cifar(dest, verify=False)) == 100
    # already present: nothing is fetched, even from a dead URL
    assert download_cifar(dest, "cifar10", url="file:///nonexistent/x.tgz") == folder


def test_download_failure_names_expected_files(tmp_path: Path) -> None:
    with pytest.raises(ConnectionError, match=r"cifar-100-python/\{train, test, meta\}"):
        download_cifar(tmp_path, "cifar100", url=(tmp_path / "missing.tgz").as_uri(), timeout=1)
    assert not list(tmp_path.glob("*.part"))


def test_cifar_lt_counts(tmp_path: Path) -> None:
    make_cifar10(tmp_path)  # 10 images per class in train
    train, test = load_cifar_lt(tmp_path, "cifar10", imbalance_ratio=10, seed=0, verify=False)
    expected = [int(10 * 10 ** (-i / 9)) for i in range(10)]
    assert train.class_counts().tolist() == expected
    assert test.class_counts().tolist() == [3] * 10
    # the kept images are real rows of the train set with their own labels
    full = load_cifar(tmp_path, verify=False)
    flat = full.x.reshape(100, -1)
    for row, label in zip(train.x.reshape(len(train), -1)[:5], train.y[:5]):
        match = (flat == row).all(dim=1).nonzero().flatten()
        assert full.y[match].tolist() == [int(label)]


def _jpeg_npz(path: Path, n_train: int = 9, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {"class_names": np.asarray(CLASSES)}
    for split, n in (("train", n_train), ("test", n_test)):
        blobs = []
        for _ in range(n):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            img[8:24, 8:24] = 200  # some structure for the codec
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=75)
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
        arrays[f"jpeg_{split}"] = np.concatenate(blobs)
        arrays[f"jpeg_{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
        arrays[f"y_{split}"] = np.arange(n, dtype=np.int64) % 10
    np.savez_compressed(path, **arrays)
    return arrays


def _pil_decode(buf: np.ndarray, off: np.ndarray, i: int) -> np.ndarray:
    raw = buf[off[i] : off[i + 1]].tobytes()
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")).transpose(2, 0, 1)


def test_jpeg_npz_decode_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    npz = tmp_path / "c.npz"
    arrays = _jpeg_npz(npz)
    monkeypatch.setenv("AUTOBALANCE_CACHE", str(tmp_path / "cache"))
    train, test = load_cifar10_jpeg(npz)
    assert train.x.shape == (9, 3, 32, 32) and train.x.dtype == torch.uint8
    for i in (0, 4, 8):
        ref = _pil_decode(arrays["jpeg_train"], arrays["jpeg_train_offsets"], i)
        assert np.array_equal(train.x[i].numpy(), ref)
    assert np.array_equal(
        test.x[3].numpy(), _pil_decode(arrays["jpeg_test"], arrays["jpeg_test_offsets"], 3)
    )
    assert test.y.tolist() == [0, 1, 2, 3] and train.class_names == CLASSES
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert cached == ["x_test.npy", "x_train.npy"]

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(cifar, "decode_jpeg_blobs", no_decode)
    again, _ = load_cifar10_jpeg(npz, cache_dir=tmp_path / "cache")
    assert torch.equal(again.x, train.x)


def test_jpeg_npz_lt_and_errors(tmp_path: Path) -> None:
    npz = tmp_path / "c.npz"
    _jpeg_npz(npz, n_train=40, n_test=10)  # 4 per class
    train, _ = load_cifar_lt(npz, imbalance_ratio=4, cache_dir=tmp_path / "cache")
    assert train.class_counts().tolist() == [int(4 * 4 ** (-i / 9)) for i in range(10)]
    with pytest.raises(ValueError, match="CIFAR-10 only"):
        load_cifar_lt(npz, name="cifar100")
    with pytest.raises(FileNotFoundError, match="jpeg_train_offsets"):
        load_cifar10_jpeg(tmp_path / "absent.npz")
    np.savez(tmp_path / "bad.npz", y_train=np.zeros(3))
    with pytest.raises(ValueError, match="missing keys"):
        load_cifar10_jpeg(tmp_path / "bad.npz", cache_dir=tmp_path / "cache")


@pytest.mark.data
def test_shared_lossy_cifar10_npz() -> None:
    path = shared_data() / "cifar10_jpeg_lossy" / "cifar10_jpeg_yoongikim.npz"
    if not path.is_file():
        pytest.skip(f"shared CIFAR-10 JPEG npz not found at {path} (set AUTOBALANCE_DATA)")
    with np.load(path) as z:
        assert np.bincount(z["y_train"]).tolist() == [5000] * 10
        assert np.bincount(z["y_test"]).tolist() == [1000] * 10
        assert [str(c) for c in z["class_names"]] == CLASSES
        buf, off = z["jpeg_train"], z["jpeg_train_offsets"]
        x = decode_jpeg_blobs(buf, off, limit=300)
        assert x.shape == (300, 3, 32, 32) and x.dtype == np.uint8
        assert np.array_equal(x[123], _pil_decode(buf, off, 123))
        assert 60 < x.mean() < 200  # real photographs, not blank
