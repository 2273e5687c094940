"""Offline datasets for the proxy accuracy signal.

* default: scikit-learn's bundled digits (1,797 8x8 grey images of 10 classes, no
  download), replicated to 3 channels;
* ``data_dir`` = an ImageFolder-style directory (one sub-folder of images per class, read
  with PIL) or a CIFAR-10 python-format directory (``data_batch_*`` + ``test_batch``).

Images are kept at their base size (digits 8x8; folders resized to ``image_size``, default
32; CIFAR 32x32) and normalised with the training split's mean and std;
:meth:`NasData.images` resizes a split to any resolution (bilinear, cached). Digits and image
folders are split per class with a fixed seed into train / val / test (default 60/20/20);
CIFAR's ``test_batch`` is the test split and its training batches are split into train / val.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from naas_tl.errors import NaasError

SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff",
                    ".webp")


@dataclass
class NasData:
    """Train / val / test images (float32 tensors (N, 3, H, W), normalised) and int64
    labels."""
    name: str
    num_classes: int
    train_x: object
    train_y: object
    val_x: object
    val_y: object
    test_x: object
    test_y: object
    _cache: dict = field(default_factory=dict, repr=False)

    def split(self, name: str):
        if name not in SPLITS:
            raise NaasError(f"expected one of {', '.join(SPLITS)}", field="split", value=name)
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def images(self, split: str, size: int | None = None):
        """The split's images resized to ``size x size`` (bilinear; cached)."""
        x, _ = self.split(split)
        if size is None or size == x.shape[-1]:
            return x
        key = (split, int(size))
        if key not in self._cache:
            import torch.nn.functional as F
            self._cache[key] = F.interpolate(x, size=(size, size), mode="bilinear",
                                             align_corners=False,
                                             antialias=size < x.shape[-1]).contiguous()
        return self._cache[key]

    def sizes(self) -> dict[str, int]:
        return {s: int(self.split(s)[0].shape[0]) for s in SPLITS}


def _stratified_split(labels: np.ndarray, fractions: tuple[float, float, float],
                      seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        n_train = int(round(fractions[0] * idx.size))
        n_val = int(round(fractions[1] * idx.size))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    return [np.sort(np.concatenate(p)) for p in parts]


def _finish(name: str, num_classes: int, xs: list[np.ndarray], ys: list[np.ndarray]
            ) -> NasData:
    import torch
    mean = float(xs[0].mean())
    std = float(xs[0].std()) or 1.0
    tx = [torch.from_numpy(np.ascontiguousarray((x - mean) / std, dtype=np.float32))
          for x in xs]
    ty = [torch.from_numpy(np.asarray(y, dtype=np.int64)) for y in ys]
    return NasData(name, num_classes, tx[0], ty[0], tx[1], ty[1], tx[2], ty[2])


def _check_fractions(fractions) -> tuple[float, float, float]:
    f = tuple(float(v) for v in fractions)
    if len(f) != 3 or any(v <= 0 for v in f) or abs(sum(f) - 1.0) > 1e-6:
        raise NaasError("expected three positive fractions (train, val, test) summing to 1",
                        field="split", value=fractions)
    return f


def load_digits_data(seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> NasData:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise NaasError("the default dataset needs scikit-learn (pip install "
                        "'scikit-learn>=1.3'), or pass --data DIR") from None
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None].repeat(3, axis=1)  # (N, 3, 8, 8)
    y = d.target.astype(np.int64)
    idx = _stratified_split(y, _check_fractions(fractions), seed)
    return _finish("digits", 10, [x[i] for i in idx], [y[i] for i in idx])


def _load_cifar(path: Path, seed: int, fractions, max_images: int | None) -> NasData:
    def read(f: Path):
        try:
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(d.get(b"labels", d.get(b"fine_labels")), dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - any unreadable batch is a user error
            raise NaasError(f"not a CIFAR python-format batch ({type(exc).__name__})",
                            file=str(f)) from None
        if labels.shape[0] != data.shape[0]:
            raise NaasError("labels and images differ in number", file=str(f))
        return data, labels

    batches = sorted(path.glob("data_batch_*"))
    if not (path / "test_batch").is_file():
        raise NaasError("CIFAR directory without test_batch", file=str(path))
    parts = [read(f) for f in batches]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    tx, ty = read(path / "test_batch")
    rng = np.random.default_rng(seed)
    if max_images is not None and x.shape[0] > max_images:
        keep = np.sort(rng.permutation(x.shape[0])[:max_images])
        x, y = x[keep], y[keep]
        keep_t = np.sort(rng.permutation(tx.shape[0])[:max(1, max_images // 4)])
        tx, ty = tx[keep_t], ty[keep_t]
    f = _check_fractions(fractions)
    a = f[0] / (f[0] + f[1])
    tr, va, rest = _stratified_split(y, (a, 1.0 - a, 0.0), seed)
    va = np.sort(np.concatenate([va, rest]))
    xs = [x[tr] / 255.0, x[va] / 255.0, tx / 255.0]
    ncls = int(max(y.max(), ty.max())) + 1
    return _finish(f"cifar:{path.name}", ncls, [a.astype(np.float32) for a in xs],
                   [y[tr], y[va], ty])


def _load_folder(path: Path, seed: int, fractions, image_size: int,
                 max_images: int | None) -> NasData:
    try:
        from PIL import Image
    except ImportError:
        raise NaasError("reading an image folder needs Pillow (pip install pillow)",
                        file=str(path)) from None
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not
                     p.name.startswith("."))
    files: list[tuple[Path, int]] = []
    for ci, c in enumerate(classes):
        for f in sorted((path / c).rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append((f, ci))
    used = sorted({ci for _, ci in files})
    if len(used) < 2:
        raise NaasError("expected an image folder with at least two class sub-folders of "
                        "images, or a CIFAR-10 python directory (data_batch_*, test_batch)",
                        file=str(path))
    if max_images is not None and len(files) > max_images:
        rng = np.random.default_rng(seed)
        files = [files[i] for i in np.sort(rng.permutation(len(files))[:max_images])]
    x = np.empty((len(files), 3, image_size, image_size), dtype=np.float32)
    y = np.empty(len(files), dtype=np.int64)
    for i, (f, ci) in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                x[i] = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
        except Exception as exc:  # noqa: BLE001 - PIL raises many types
            raise NaasError(f"cannot read image ({type(exc).__name__})", file=str(f)) from None
        y[i] = ci
    idx = _stratified_split(y, _check_fractions(fractions), seed)
    for name, i in zip(SPLITS, idx):
        if i.size == 0:
            raise NaasError(f"too few images for a {name} split ({len(files)} images)",
                            file=str(path))
    return _finish(f"folder:{path.name}", len(classes), [x[i] for i in idx],
                   [y[i] for i in idx])


def load_dataset(data_dir: str | Path | None = None, seed: int = 0, *,
                 fractions=(0.6, 0.2, 0.2), image_size: int = 32,
                 max_images: int | None = None) -> NasData:
    """Load the proxy dataset (module docstring). ``data_dir=None``: sklearn digits.
    ``max_images`` subsamples large directories (seeded). A bad directory raises NaasError
    (one line naming the path and what is wrong)."""
    if data_dir is None:
        return load_digits_data(seed, fractions)
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise NaasError("data directory does not exist", file=str(path))
    if not path.is_dir():
        raise NaasError("expected a directory (ImageFolder-style class sub-folders, or "
                        "CIFAR-10 python batches)", file=str(path))
    if any(path.glob("data_batch_*")) or (path / "test_batch").exists():
        return _load_cifar(path, seed, fractions, max_images)
    return _load_folder(path, seed, fractions, image_size, max_images)
