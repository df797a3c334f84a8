"""Shared fixtures: the genuine MNIST (where ../shared/data has it) and small generated datasets in the
datasets' own file formats, so that tests go through the real torchvision loading code; and `drawn`, what the
report's figures show."""
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from reporting import figures

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_root():
    """Root holding the genuine MNIST/raw (read-only); skipped where the shared folder is absent."""
    if not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"genuine MNIST not found in {SHARED_DATA / 'MNIST' / 'raw'} (the shared data folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fashion_root():
    """Root holding the genuine FashionMNIST/raw (read-only); skipped where the shared folder is absent."""
    if not (SHARED_DATA / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"genuine Fashion-MNIST not found in {SHARED_DATA / 'FashionMNIST' / 'raw'} (the shared data "
                    "folder)")
    return SHARED_DATA


def digit_like_images(labels: np.ndarray, size: int, channels: int, seed: int) -> np.ndarray:
    """Noisy images whose class is learnable: class c lights a bar at a class-specific place."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, size=(len(labels), channels, size, size))
    for i, c in enumerate(labels):
        r = 2 + (c * (size - 6)) // 10
        x[i, :, r:r + 4, 3:size - 3] = 255
    return x.astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (MNIST's format): magic 0x0000 08 <ndim>, big-endian dims, then uint8 data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_mnist_format(root: Path, name: str = "KMNIST", n_train: int = 600, n_test: int = 200) -> Path:
    """Small dataset in MNIST's IDX format under root/<name>/raw; returns root."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        y = np.arange(n) % 10
        np.random.default_rng(seed).shuffle(y)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", digit_like_images(y, 28, 1, seed)[:, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return root


def make_svhn_format(root: Path, n_train: int = 120, n_test: int = 60, monkeypatch=None) -> Path:
    """train_32x32.mat / test_32x32.mat as SVHN ships them: X (32, 32, 3, N) uint8, y (N, 1) with 10 for
    digit 0. torchvision checks the files' MD5 against the genuine ones, so the generated files' MD5 are
    registered in its table (through monkeypatch) for the test's duration."""
    from scipy.io import savemat
    root.mkdir(parents=True, exist_ok=True)
    table = {k: list(v) for k, v in torchvision.datasets.SVHN.split_list.items()}
    for split, n, seed in (("train", n_train, 2), ("test", n_test, 3)):
        y = np.arange(n) % 10
        x = digit_like_images(y, 32, 3, seed)                     # (N, 3, 32, 32)
        path = root / f"{split}_32x32.mat"
        savemat(path, {"X": x.transpose(2, 3, 1, 0), "y": np.where(y == 0, 10, y).reshape(-1, 1).astype(np.uint8)})
        table[split][2] = hashlib.md5(path.read_bytes()).hexdigest()
    if monkeypatch is not None:
        monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", table)
    return root


@pytest.fixture
def kmnist_root(tmp_path):
    return make_mnist_format(tmp_path / "data")


@pytest.fixture
def svhn_root(tmp_path, monkeypatch):
    return make_svhn_format(tmp_path / "data", monkeypatch=monkeypatch)


os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before any test starts CUDA: deterministic cuBLAS


@pytest.fixture(autouse=True)
def _few_threads():
    """Two threads, and the deterministic mode restored after each test (experiment.main sets it)."""
    torch.set_num_threads(2)
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(deterministic)


def _band(collection) -> tuple[list, list, list]:
    """(x, lower, upper) of a band drawn by fill_between: its polygon's lowest and highest y at each x."""
    xy = np.concatenate([p.vertices for p in collection.get_paths()])
    xs = sorted(set(xy[:, 0]))
    return xs, [xy[xy[:, 0] == x, 1].min() for x in xs], [xy[xy[:, 0] == x, 1].max() for x in xs]


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """{file name: [(line label, x, y) of every line of every axis]} of the figures a test writes: what they show;
    also {"<file name>: <axis title>": the same of that axis alone}, and {"<file name>: <axis title>: bands":
    [(x, lower, upper) of each filled band, in drawing order]}. A file written again replaces its entries."""
    shown, save = {}, figures._save

    def recording(fig, path):
        shown[Path(path).name] = []
        for ax in fig.axes:
            handles, labels = ax.get_legend_handles_labels()          # an error bar's data line is its first
            lines = [(label, h.lines[0] if hasattr(h, "lines") else h) for h, label in zip(handles, labels)]
            lines += [(l.get_label(), l) for l in ax.get_lines() if l.get_label().startswith("_")]  # unlabelled
            data = [(label, list(l.get_xdata()), list(l.get_ydata())) for label, l in lines]
            shown[f"{Path(path).name}: {ax.get_title()}"] = data
            shown[Path(path).name] += data
            shown[f"{Path(path).name}: {ax.get_title()}: bands"] = [_band(c) for c in ax.collections
                                                                    if c.get_paths() and c.get_label().startswith("_")]
        return save(fig, path)
    monkeypatch.setattr(figures, "_save", recording)
    return shown
