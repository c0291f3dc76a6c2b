"""CIFAR-10/100 from the official python pickles, the lossy-JPEG CIFAR-10 npz, and CIFAR-LT.

Formats read:

* ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` and
  ``cifar-100-python/{train, test, meta}`` (fine labels), as published at
  https://www.cs.toronto.edu/~kriz/cifar.html (Krizhevsky 2009). Each batch is a pickled dict with
  ``b"data"`` uint8 (N, 3072) laid out as 3×32×32 (R, G, B planes) and ``b"labels"`` or
  ``b"fine_labels"``. Known files are checked against the published MD5s.
* the lossy-JPEG CIFAR-10 npz (``jpeg_train``, ``jpeg_train_offsets``, ``y_train``, ``jpeg_test``,
  ``jpeg_test_offsets``, ``y_test``, ``class_names``), decoded once with Pillow and cached as
  ``.npy`` under ``$AUTOBALANCE_CACHE`` (default ``~/.cache/autobalance``).

CIFAR-LT follows the LDAM-DRW construction (Cao et al., NeurIPS 2019, arXiv 1906.07413):
``n_i = int(n_max · ρ^(−i/(K−1)))`` training images of class ``i``; the test set stays balanced.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib
import io
import os
import pickle
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from autobalance.data.dataset import InMemoryDataset

CIFAR_NAMES: tuple[str, ...] = ("cifar10", "cifar100")

# Published MD5s (the ones torchvision's CIFAR10/CIFAR100 check).
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR_MD5: dict[str, dict[str, str]] = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    "cifar100": {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
}
CIFAR_ARCHIVES: dict[str, tuple[str, str, str]] = {
    # name: (url, archive file name, archive md5)
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
}
_LAYOUT = {
    "cifar10": (CIFAR10_DIR, [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    "cifar100": (CIFAR100_DIR, ["train"], ["test"]),
}
_META = {"cifar10": ("batches.meta", b"label_names"), "cifar100": ("meta", b"fine_label_names")}
_LABEL_KEYS = (b"labels", b"fine_labels")


def _check_name(name: str) -> str:
    if name not in CIFAR_NAMES:
        raise ValueError(f"Unknown CIFAR name '{name}', expected one of {CIFAR_NAMES}")
    return name


def file_md5(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _expected(name: str) -> str:
    folder, train, test = _LAYOUT[name]
    return f"{folder}/{{{', '.join([*train, *test, _META[name][0]])}}}"


def find_cifar_dir(root: str | os.PathLike[str], name: str = "cifar10") -> Path:
    """The batch folder: ``root`` itself or ``root/cifar-10-batches-py`` (``cifar-100-python``)."""
    folder, train, _ = _LAYOUT[_check_name(name)]
    root = Path(root).expanduser()
    for cand in (root / folder, root):
        if (cand / train[0]).is_file():
            return cand
    raise FileNotFoundError(
        f"{name}: no pickle batches under {root}; expected {_expected(name)} "
        f"(run download_cifar(root, '{name}') or unpack {CIFAR_ARCHIVES[name][1]} there)"
    )


def _np_private(module: str, name: str) -> object:
    """``numpy._core.<module>.<name>`` (numpy ≥ 2) or ``numpy.core.<module>.<name>`` (numpy 1)."""
    try:
        mod = importlib.import_module(f"numpy._core.{module}")
    except ImportError:  # pragma: no cover - numpy 1.x
        mod = importlib.import_module(f"numpy.core.{module}")
    return getattr(mod, name)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, bytes and builtins (no arbitrary code)."""

    _ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("numpy.core.multiarray", "_reconstruct"): _np_private("multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): _np_private("multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"): _np_private("numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): _np_private("numeric", "_frombuffer"),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load '{module}.{name}' from a CIFAR pickle "
                "(only numpy arrays are expected)"
            ) from None


def _load_pickle(path: Path) -> dict[bytes, object]:
    with open(path, "rb") as f:
        obj = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch as (uint8 images (N, 3, 32, 32), int64 labels (N,))."""
    path = Path(path)
    d = _load_pickle(path)
    if b"data" not in d:
        raise ValueError(f"{path}: no b'data' entry; not a CIFAR python batch")
    data = np.asarray(d[b"data"], dtype=np.uint8)
    key = next((k for k in _LABEL_KEYS if k in d), None)
    if key is None:
        raise ValueError(f"{path}: no b'labels' or b'fine_labels' entry")
    labels = np.asarray(d[key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _verify(path: Path, name: str) -> None:
    want = CIFAR_MD5[name].get(path.name)
    if want is not None and file_md5(path) != want:
        raise ValueError(
            f"{path}: MD5 mismatch (expected {want}); the file is corrupt or not the official "
            "release (pass verify=False to read it anyway)"
        )


def load_cifar(
    root: str | os.PathLike[str],
    name: str = "cifar10",
    train: bool = True,
    verify: bool = True,
) -> InMemoryDataset:
    """CIFAR-10/100 train or test split from the official python pickles.

    ``x`` is uint8 (N, 3, 32, 32), ``y`` the (fine) label. With ``verify`` each known file is
    checked against its published MD5 (Krizhevsky 2009, "Learning Multiple Layers of Features from
    Tiny Images").
    """
    folder = find_cifar_dir(root, name)
    _, train_files, test_files = _LAYOUT[name]
    xs, ys = [], []
    for fname in train_files if train else test_files:
        path = folder / fname
        if not path.is_file():
            raise FileNotFoundError(f"{name}: missing {path}; expected {_expected(name)}")
        if verify:
            _verify(path, name)
        x, y = read_cifar_batch(path)
        xs.append(x)
        ys.append(y)
    num_classes = 10 if name == "cifar10" else 100
    class_names = [str(i) for i in range(num_classes)]
    meta_file, meta_key = _META[name]
    if (folder / meta_file).is_file():
        if verify:
            _verify(folder / meta_file, name)
        names = _load_pickle(folder / meta_file).get(meta_key)
        if isinstance(names, list) and len(names) == num_classes:
            class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return InMemoryDataset(
        x=torch.from_numpy(np.ascontiguousarray(np.concatenate(xs))),
        y=torch.from_numpy(np.concatenate(ys)),
        num_classes=num_classes,
        class_names=class_names,
        name=f"{name}-{'train' if train else 'test'}",
    )


def download_cifar(
    root: str | os.PathLike[str],
    name: str = "cifar10",
    url: str | None = None,
    md5: str | None = None,
    timeout: float = 15.0,
) -> Path:
    """Download and unpack the official archive into ``root``; returns the batch folder.

    Nothing is fetched when the batch folder is already there. The archive is checked against its
    published MD5 (``md5`` overrides it, for mirrors). Network failures raise ``ConnectionError``
    naming the files to place by hand; ``timeout`` bounds every socket operation.
    """
    _check_name(name)
    root = Path(root).expanduser()
    try:
        return find_cifar_dir(root, name)
    except FileNotFoundError:
        pass
    default_url, archive_name, default_md5 = CIFAR_ARCHIVES[name]
    url = url or default_url
    md5 = md5 or default_md5
    root.mkdir(parents=True, exist_ok=True)
    archive = root / archive_name
    if not (archive.is_file() and file_md5(archive) == md5):
        part = archive.with_name(archive.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            part.unlink(missing_ok=True)
            raise ConnectionError(
                f"{name}: could not download {url} ({e}); place {archive_name} or the unpacked "
                f"{_expected(name)} under {root} by hand"
            ) from e
        if file_md5(part) != md5:
            part.unlink()
            raise ValueError(f"{name}: downloaded {url} has the wrong MD5 (expected {md5})")
        os.replace(part, archive)
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # pragma: no cover - Python without PEP 706 filters
            tar.extractall(root)
    return find_cifar_dir(root, name)


# ----------------------------------------------------------------------------- lossy JPEG npz


def default_cache_dir() -> Path:
    """``$AUTOBALANCE_CACHE``, else ``autobalance`` in the user's cache directory:
    ``$XDG_CACHE_HOME`` or ``~/.cache`` (Linux and others), ``~/Library/Caches`` (macOS),
    ``%LOCALAPPDATA%`` (Windows); the choice of ``platformdirs.user_cache_dir``."""
    env = os.environ.get("AUTOBALANCE_CACHE")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        root = Path(os.environ["LOCALAPPDATA"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return root / "autobalance"


def _decode_one(blob: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB") if im.mode != "RGB" else im)


def decode_jpeg_blobs(
    buf: np.ndarray, offsets: np.ndarray, limit: int | None = None, workers: int | None = None
) -> np.ndarray:
    """Decode concatenated JPEG files; image ``i`` is ``buf[offsets[i]:offsets[i+1]]``.

    Returns uint8 (N, 3, H, W). Pillow releases the GIL while decoding, so a thread pool helps.
    """
    from PIL import Image  # noqa: F401  (fail early with a clear ImportError)

    n = len(offsets) - 1 if limit is None else min(limit, len(offsets) - 1)
    raw = np.ascontiguousarray(buf).tobytes()
    blobs = [raw[offsets[i] : offsets[i + 1]] for i in range(n)]
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        images = list(pool.map(_decode_one, blobs, chunksize=512))
    if not images:
        return np.zeros((0, 3, 32, 32), dtype=np.uint8)
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_NPZ_KEYS = ("jpeg_train", "jpeg_train_offsets", "y_train", "jpeg_test", "jpeg_test_offsets")


def load_cifar10_jpeg(
    npz_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> tuple[InMemoryDataset, InMemoryDataset]:
    """(train, test) from the lossy-JPEG CIFAR-10 npz; decoded once, then read from the cache.

    The cache key is the npz's SHA-256 and size plus the Pillow version (decoders may differ by
    ±1 on some pixels). Files are written atomically, so an interrupted decode leaves no cache.
    These pixels are JPEG quality 75, not the original CIFAR-10 pixels.
    """
    import PIL

    npz_path = Path(npz_path).expanduser()
    if not npz_path.is_file():
        raise FileNotFoundError(
            f"no CIFAR-10 JPEG npz at {npz_path}; expected a .npz with keys {', '.join(_NPZ_KEYS)}"
        )
    key = f"{file_sha256(npz_path)[:16]}-{npz_path.stat().st_size}-pil{PIL.__version__}"
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    cache = cache / "cifar10_jpeg" / key
    with np.load(npz_path, allow_pickle=False) as z:
        missing = [k for k in (*_NPZ_KEYS, "y_test") if k not in z.files]
        if missing:
            raise ValueError(f"{npz_path}: missing keys {missing}; expected {_NPZ_KEYS}, y_test")
        names = [str(n) for n in z["class_names"]] if "class_names" in z.files else []
        out = []
        for split in ("train", "test"):
            y = torch.from_numpy(z[f"y_{split}"].astype(np.int64))
            file = cache / f"x_{split}.npy"
            if file.is_file():
                x = np.load(file, allow_pickle=False)
            else:
                x = decode_jpeg_blobs(z[f"jpeg_{split}"], z[f"jpeg_{split}_offsets"])
                cache.mkdir(parents=True, exist_ok=True)
                tmp = cache / f".x_{split}.{os.getpid()}.npy"
                np.save(tmp, x)
                os.replace(tmp, file)
            k = max(len(names), int(y.max()) + 1 if y.numel() else 0)
            out.append(
                InMemoryDataset(
                    x=torch.from_numpy(x),
                    y=y,
                    num_classes=k,
                    class_names=names or [str(i) for i in range(k)],
                    name=f"cifar10-jpeg-{split}",
                )
            )
    return out[0], out[1]


# ----------------------------------------------------------------------------- CIFAR-LT


def load_cifar_lt(
    root_or_npz: str | os.PathLike[str],
    name: str = "cifar10",
    imbalance_ratio: float = 100.0,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    verify: bool = True,
    n_max: int | None = None,
) -> tuple[InMemoryDataset, InMemoryDataset]:
    """(long-tailed train, balanced test) for CIFAR-10/100-LT.

    ``n_i = int(n_max · ρ^(−i/(K−1)))`` images of class ``i`` are kept, the first ``n_i`` of a
    seeded per-class shuffle (LDAM-DRW, Cao et al. 2019; CIFAR-10, ρ=100, seed 0 keeps 12,406).
    ``n_max`` defaults to the full class size (5000 / 500); a smaller one gives a smaller
    long-tailed set (B1-fit uses 500). ``root_or_npz`` is a pickle root or the lossy-JPEG
    CIFAR-10 ``.npz``.
    """
    from autobalance.data.longtail import make_long_tailed

    _check_name(name)
    path = Path(root_or_npz).expanduser()
    if path.suffix == ".npz":
        if name != "cifar10":
            raise ValueError(f"the JPEG .npz holds CIFAR-10 only, got name='{name}'")
        train, test = load_cifar10_jpeg(path, cache_dir=cache_dir)
    else:
        train = load_cifar(path, name, train=True, verify=verify)
        test = load_cifar(path, name, train=False, verify=verify)
    index = make_long_tailed(
        train.y.numpy(), imbalance_ratio, seed=seed, num_classes=train.num_classes, n_max=n_max
    )
    lt = train.subset(torch.as_tensor(np.asarray(index), dtype=torch.long))
    lt.name = f"{name}-lt-{imbalance_ratio:g}"
    return lt, test


__all__ = [
    "CIFAR_ARCHIVES",
    "CIFAR_MD5",
    "CIFAR_NAMES",
    "decode_jpeg_blobs",
    "default_cache_dir",
    "download_cifar",
    "file_md5",
    "file_sha256",
    "find_cifar_dir",
    "load_cifar",
    "load_cifar10_jpeg",
    "load_cifar_lt",
    "read_cifar_batch",
]
