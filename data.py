"""Datasets as device tensors, the small-sample splits of Hofer et al., and their group batches.

Everything the training loop touches lives on the device: the few hundred training images are one
tensor, the test set another, and batches are index tensors drawn with a seeded `torch.Generator`
(no per-image `__getitem__`, no DataLoader workers).

Batches follow Hofer et al. (ICML 2020, Sec. 4): an epoch is one shuffled pass over the training
images used as *anchors*; each anchor becomes a group of `n` images of its class (the anchor plus
n − 1 same-class draws with replacement), and `G` groups make a batch. Rows g·n … g·n + n − 1 of a
batch are group g, so latent codes of shape (G·n, d) reshape to (G, n, d) with a `view`.
"""
import gzip
import hashlib
import json
import math
import os
import urllib.error
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torchvision
from scipy.io import loadmat
from scipy.io.matlab import MatReadError
from torchvision.datasets.mnist import read_image_file, read_label_file

from common.runs import run_seed

SPLITS_FILE = Path(str(resources.files("splits") / "stratified_splits.json"))  # Hofer et al.'s: splits/README.md

# MNIST's file format: every torchvision class that reads the four IDX files works the same way.
MNIST_FORMAT = {"MNIST": torchvision.datasets.MNIST, "FashionMNIST": torchvision.datasets.FashionMNIST,
                "KMNIST": torchvision.datasets.KMNIST}
DATASETS = sorted(MNIST_FORMAT) + ["SVHN"]
SIZES = {"MNIST": (60_000, 10_000), "FashionMNIST": (60_000, 10_000), "KMNIST": (60_000, 10_000),
         "SVHN": (73_257, 26_032)}  # (train, test) sizes of the genuine datasets


class DataError(RuntimeError):
    """Data missing, unreadable or inconsistent; the message says what and how to fix it."""


def resolve_data_root(constant: str = "", override: str = "") -> Path:
    """Where datasets live: command-line override, else $DATA_ROOT, else the script's constant, else data/ in the working
    directory."""
    for root in (override, os.environ.get("DATA_ROOT", ""), constant):
        if root:
            return Path(root).expanduser().resolve()
    return Path("data").resolve()


def _expected_files(name: str, root: Path) -> tuple[Path, list[str]]:
    if name == "SVHN":
        return root, ["train_32x32.mat", "test_32x32.mat"]
    return root / name / "raw", [Path(url).stem for url, _ in MNIST_FORMAT[name].resources]


# MD5 of the genuine files as this project reads them: the four uncompressed IDX files of MNIST and of Fashion-MNIST
# (Xiao, Rasul & Vollgraf 2017; torchvision knows only the digests of the .gz archives) and SVHN's two .mat files
# (torchvision's own table). KMNIST has none here: its raw files are verified through torchvision's archives beside
# them (`archive_digests`), else they train only with VERIFY_DATA=False, recorded as unverified.
KNOWN_MD5 = {"MNIST": {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                       "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                       "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                       "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
             "FashionMNIST": {"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                              "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
                              "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
                              "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"}}


def known_md5(name: str) -> dict:
    """{file: MD5} of the genuine files of dataset `name` (empty where this project knows none)."""
    if name == "SVHN":  # read at call time: a test registers its generated files' digests there
        return {f: md5 for _, f, md5 in (torchvision.datasets.SVHN.split_list[s] for s in ("train", "test"))}
    return KNOWN_MD5.get(name, {})


def verifiable(name: str) -> bool:
    """Whether this project knows the genuine MD5 of every file of dataset `name` it reads (so VERIFY_DATA checks
    them all); a run on a dataset that is not is recorded as unverified, whatever VERIFY_DATA says."""
    return set(_expected_files(name, Path("."))[1]) <= set(known_md5(name))


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(name: str, root: Path) -> dict:
    """{file: MD5} of the files of dataset `name` that this project reads (recorded in every run's config.json)."""
    folder, files = _expected_files(name, Path(root))
    return {f: md5(folder / f) for f in files if (folder / f).exists()}


def archive_digests(name: str, folder: Path, files: list[str]) -> dict | None:
    """{raw file: MD5} for a dataset of MNIST's format whose raw files this project has no digest of, from the .gz
    archives torchvision downloads beside them: each archive's MD5 must be the one torchvision lists, and the MD5 of
    its content is then the genuine raw file's. None where an archive is missing or not the listed one."""
    listed = {Path(url).name: digest for url, digest in getattr(MNIST_FORMAT.get(name), "resources", [])}
    found = {}
    for f in files:
        archive = folder / f"{f}.gz"
        if listed.get(archive.name) is None or not archive.is_file() or md5(archive) != listed[archive.name]:
            return None
        h = hashlib.md5()
        with gzip.open(archive, "rb") as g:
            for block in iter(lambda: g.read(1 << 22), b""):
                h.update(block)
        found[f] = h.hexdigest()
    return found


def check_digests(name: str, root: Path, split: str) -> None:
    """One DataError naming each file of `split` whose MD5 is not the genuine one, with its digest and the expected
    one; a dataset whose genuine digests this project does not know, nor can read from torchvision's archives beside
    the files (`archive_digests`), is one DataError too: it trains only with VERIFY_DATA=False."""
    folder, files = _expected_files(name, Path(root))
    files = [f for f in files if split_of(f) == split]
    known = known_md5(name) if verifiable(name) else archive_digests(name, folder, files)
    if known is None:
        raise DataError(f"{name} ({split} set) in {folder}: this project knows no MD5 of its files, so it cannot tell "
                        f"them from other data; keep torchvision's archives ({', '.join(f + '.gz' for f in files)}) "
                        "beside them to verify them, or set VERIFY_DATA=False to train on them unverified (the runs "
                        "record it, and their tables say so)")
    bad = [(f, got, known[f]) for f in files if split_of(f) == split and f in known
           and (got := md5(folder / f)) != known[f]]
    if bad:
        raise DataError(f"{name} ({split} set) in {folder} is not the genuine {name}: "
                        + "; ".join(f"{f} has MD5 {got}, expected {want}" for f, got, want in bad)
                        + ". Replace the file(s) with the genuine ones, or, to train on other data on purpose, set "
                          "VERIFY_DATA=False (recorded in every run's config.json).")


def _read(name: str, folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The raw files of one set, read directly: nothing else in the folder (e.g. torchvision's processed/*.pt,
    which its MNIST class would prefer) is ever read."""
    if name == "SVHN":
        mat = loadmat(folder / f"{split}_32x32.mat")
        x = torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)))        # (N, 3, 32, 32)
        y = torch.from_numpy(mat["y"].astype(np.int64).reshape(-1))
        return x, torch.where(y == 10, 0, y)  # SVHN labels digit 0 as 10
    prefix = "train" if split == "train" else "t10k"
    x = read_image_file(str(folder / f"{prefix}-images-idx3-ubyte")).unsqueeze(1)        # (N, 1, 28, 28)
    return x, read_label_file(str(folder / f"{prefix}-labels-idx1-ubyte"))


def _download(name: str, root: Path, split: str) -> None:
    """Fetch missing files through torchvision (which checks the archives' digests)."""
    if name == "SVHN":
        torchvision.datasets.SVHN(str(root), split=split, download=True)
    else:
        MNIST_FORMAT[name](str(root), train=split == "train", download=True)


def load_dataset(name: str, root: Path, train: bool, download: bool = True,
                 verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of the train or test set, read from the dataset's own files.

    Only the files the project documents are read (MNIST's four raw IDX files, SVHN's two .mat files), through
    torchvision's readers; missing files are downloaded through torchvision when `download`. With `verify`, files
    whose MD5 is not the genuine one are one `DataError` (see `check_digests`). Missing files with no way to download
    them, or a truncated / corrupted file, raise one `DataError` that names the dataset, the folder searched and the
    files expected there.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown DATASET {name!r}; supported: {', '.join(DATASETS)}")
    root = Path(root)
    folder, files = _expected_files(name, root)
    split = "train" if train else "test"
    made = next((p for p in [folder, *folder.parents] if p.parent.exists()), folder)  # first folder a download makes
    existed = made.exists()
    try:
        if download and not all((folder / f).exists() for f in files if split_of(f) == split):
            _download(name, root, split)
        x, y = _read(name, folder, split)
    except (RuntimeError, OSError, ValueError, EOFError, KeyError, IndexError, MatReadError,
            urllib.error.URLError) as e:
        if not existed:  # a failed download attempt leaves no empty folders behind
            _remove_empty(folder, made.parent)
        raise DataError(_unreadable(name, root, folder, files, split, download, e)) from None
    if verify:
        check_digests(name, root, split)
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{name} ({split}) in {folder}: {x.shape[0]} images but {y.shape[0]} labels; "
                        "a file is corrupted, download it again")
    return x, y.long()


def _remove_empty(folder: Path, stop: Path) -> None:
    for p in [folder, *folder.parents]:
        if p == stop:
            break
        if p.exists() and not any(p.iterdir()):
            p.rmdir()


def _unreadable(name: str, root: Path, folder: Path, files: list[str], split: str, download: bool, e) -> str:
    """The message of a dataset that could not be loaded: what is missing or damaged, and how to fix it."""
    present = [f for f in files if (folder / f).exists()]
    damaged = _damaged(folder, [f for f in files if split_of(f) == split]) if len(present) == len(files) else []
    legacy = [f"processed/{f}" for f in ("training.pt", "test.pt") if (folder.parent / "processed" / f).exists()]
    why = ("; DOWNLOAD is off" if not download else
           f"; torchvision did not download them because {' and '.join(legacy)} exist (its older format, which this "
           f"project never reads): move {folder.parent / 'processed'} away and run again to download the raw files"
           if len(legacy) == 2 and name != "SVHN" else "; the download failed (no internet?)")
    what = (f"{', '.join(damaged)}; delete it and download it again" if damaged else
            "the files are present but could not be read: one is probably truncated or corrupted; "
            "delete it and download it again" if len(present) == len(files) else
            f"missing: {', '.join(f for f in files if f not in present)}" + why)
    return (f"{name} ({split} set) could not be loaded from {folder}: {what}.\n"
            f"  Expected there: {', '.join(files)}.\n"
            f"  Put the files there (or point DATA_ROOT=/path/to/data at a folder holding "
            f"{(folder.relative_to(root) / 'FILE') if folder != root else 'FILE'}), or run with internet and "
            f"DOWNLOAD=True.\n  Cause: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


VALIDATION_SEED = 2020  # one validation set per dataset and size, whatever SEED, split or regulariser


def split_of(filename: str) -> str:
    """Which set a dataset file belongs to: 'train' or 'test' (MNIST's t10k-* files are the test set)."""
    return "test" if filename.startswith(("t10k", "test")) else "train"


def _damaged(folder: Path, files: list[str]) -> list[str]:
    """'<file> is truncated (N of M bytes)' for each IDX file shorter or longer than its header says; for other
    formats (SVHN's .mat), the files of the set being read, as the likely culprits."""
    found = []
    for f in files:
        path = folder / f
        head = path.read_bytes()[:4 + 4 * 4] if path.exists() else b""
        if f.endswith(".mat") or len(head) < 4:
            found.append(f"{f} could not be read (truncated or corrupted?)")
            continue
        ndim = head[3]
        dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        want = 4 + 4 * ndim + math.prod(dims)
        size = path.stat().st_size
        if size != want:
            found.append(f"{f} is {'truncated' if size < want else 'longer than its header says'} "
                         f"({size} of {want} bytes)")
    return found


def _stratified_split(labels: torch.Tensor, size: int, seed: int, exclude=()) -> list[int]:
    """A class-proportional sample of `size` indices (largest-remainder rounding), seeded, avoiding `exclude`."""
    g = torch.Generator().manual_seed(seed)
    C = int(labels.max()) + 1
    pool = torch.ones(labels.numel(), dtype=torch.bool)
    pool[torch.as_tensor(list(exclude), dtype=torch.long)] = False
    counts = torch.bincount(labels[pool], minlength=C).double()
    quota = counts / counts.sum() * size
    k = quota.floor().long()
    k[torch.argsort(quota - k, descending=True)[: size - int(k.sum())]] += 1
    idx = [torch.nonzero((labels == c) & pool).flatten()[torch.randperm(int(counts[c]), generator=g)[: int(k[c])]]
           for c in range(C)]
    return sorted(torch.cat(idx).tolist())


def _shipped(name: str, size: int, splits_file: Path):
    return json.loads(Path(splits_file).read_text()).get(name, {}).get(str(size))


def validation_indices(name: str, size: int, val_size: int, labels: torch.Tensor,
                       splits_file: Path = SPLITS_FILE) -> list[int]:
    """A fixed validation set of `val_size` training images (indices), never in any split of `size` images.

    With shipped splits: a seeded draw (VALIDATION_SEED) from the images outside the union of all of
    them, so that choosing a hyperparameter never looks at the reported test images nor at a training
    image. Without: a seeded draw from all images, made before the splits, which `get_split` then draws
    from the rest. Stratified like the splits; empty for `val_size` 0.
    """
    if val_size <= 0:
        return []
    shipped = _shipped(name, size, splits_file)
    used = sorted({i for split in shipped for i in split}) if shipped is not None else []
    free = labels.numel() - len(used) - (size if shipped is None else 0)
    if val_size > free:
        raise ValueError(f"VAL_SIZE={val_size} is more than the {free} training images left outside the splits of "
                         f"{name}-{size}; set a smaller VAL_SIZE (0: no validation set)")
    return _stratified_split(labels, val_size, VALIDATION_SEED, exclude=used)


def get_split(name: str, size: int, index: int, labels: torch.Tensor, seed: int = 0,
              splits_file: Path = SPLITS_FILE, exclude=()) -> tuple[list[int], str]:
    """Indices of split `index` of `size` training images, and where they came from.

    Hofer et al.'s shipped split when the file has `name`/`size`; otherwise a seeded stratified draw
    (seed = 1000·seed + index, so split i is the same set for every regulariser) from the images not in
    `exclude` (the validation set).
    """
    if size < 1 or size > labels.numel():
        raise ValueError(f"TRAIN_SIZE={size} must be between 1 and the training set's {labels.numel()} images")
    shipped = _shipped(name, size, splits_file)
    if shipped is not None:
        if not 0 <= index < len(shipped):
            raise ValueError(f"split index {index} out of range: {splits_file.name} holds splits 0-{len(shipped) - 1} "
                             f"for {name}-{size}; set SPLITS within that range")
        idx = shipped[index]
        if max(idx) >= labels.numel():
            raise DataError(f"shipped split {name}-{size}/{index} indexes image {max(idx)}, but the training set "
                            f"has {labels.numel()} images: is this the genuine {name}?")
        return idx, f"shipped split {index} of Hofer et al. ({splits_file.name})"
    if index < 0:
        raise ValueError(f"split index {index} must be >= 0")
    return (_stratified_split(labels, size, run_seed(seed, index), exclude),
            f"no shipped split for {name}-{size}: seeded stratified draw (seed {run_seed(seed, index)})")


def images_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A fingerprint of a run's training images (uint8, as the dataset's files hold them) and their labels: the
    same on every machine and thread count (recorded as `runs.SPLIT_DIGEST_V2`)."""
    h = hashlib.sha256(labels.cpu().to(torch.int64).numpy().tobytes())
    h.update(images.cpu().to(torch.uint8).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class TrainSubset:
    """The labelled training images as normalised device tensors, plus the class index table for sampling."""
    x: torch.Tensor        # (N, C, H, W) float, normalised by the subset's channel mean/std
    y: torch.Tensor        # (N,) int64
    mean: torch.Tensor     # (C,) channel mean of the subset, in [0, 1] units
    std: torch.Tensor      # (C,)
    members: torch.Tensor  # (num_classes, max_count) indices into x of each class, padded with 0
    counts: torch.Tensor   # (num_classes,) images per class
    class_sizes: list      # the same counts on the host, so that evaluation need not read them

    @classmethod
    def build(cls, images: torch.Tensor, labels: torch.Tensor, num_classes: int, device) -> "TrainSubset":
        x = images.to(device=device, dtype=torch.float32) / 255
        mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
        y = labels.to(device)
        counts = torch.bincount(labels.cpu(), minlength=num_classes).to(device)  # CUDA's has no deterministic mode
        if int(counts.min()) == 0:
            missing = torch.nonzero(counts == 0).flatten().tolist()
            raise ValueError(f"the training subset has no image of class(es) {missing}; use a larger TRAIN_SIZE")
        members = torch.zeros(num_classes, int(counts.max()), dtype=torch.long, device=device)
        for c in range(num_classes):
            i = torch.nonzero(y == c).flatten()
            members[c, : i.numel()] = i
        return cls(normalize(x, mean, std), y, mean, std, members, counts, counts.tolist())


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x − mean) / std per channel; x (N, C, H, W) in [0, 1]."""
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def group_batches(y: torch.Tensor, members: torch.Tensor, counts: torch.Tensor, groups_per_batch: int,
                  samples_per_group: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch of group batches as indices into the training subset, shape (num_batches, G·n).

    Anchors are a random permutation of the N training images; anchors that do not fill a last batch
    are dropped (N // G batches). Each anchor is followed by n − 1 draws with replacement from its
    class (the anchor may be drawn again), so each group of n rows is one class.
    """
    G, n, N = groups_per_batch, samples_per_group, y.numel()
    B = N // G
    anchors = torch.randperm(N, generator=generator, device=y.device)[: B * G]               # (B·G,)
    c = y[anchors]
    u = torch.rand(B * G, n - 1, generator=generator, device=y.device)
    draws = members[c.unsqueeze(1), (u * counts[c].unsqueeze(1)).long()]                    # (B·G, n−1)
    return torch.cat([anchors.unsqueeze(1), draws], dim=1).view(B, G * n)                   # group-major rows


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator, fill=None) -> torch.Tensor:
    """Translate each image by up to `padding` pixels (random crop of the padded image), batched on the device.

    `fill` (C,) is the padding value per channel: for normalised images, −mean/std pads with black, as a
    crop before normalisation would; None pads with 0.
    """
    B, C, H, W = x.shape
    f = torch.zeros(1, C, 1, 1, device=x.device, dtype=x.dtype) if fill is None else fill.view(1, C, 1, 1)
    xp = torch.nn.functional.pad(x - f, (padding,) * 4) + f
    off = torch.randint(0, 2 * padding + 1, (2, B), generator=generator, device=x.device)
    rows = (off[0].unsqueeze(1) + torch.arange(H, device=x.device)).view(B, 1, H, 1)
    cols = (off[1].unsqueeze(1) + torch.arange(W, device=x.device)).view(B, 1, 1, W)
    b = torch.arange(B, device=x.device).view(B, 1, 1, 1)
    ch = torch.arange(C, device=x.device).view(1, C, 1, 1)
    return xp[b, ch, rows, cols]                                                              # (B, C, H, W)


def device_subset(d: dict, dataset: str, size: int, split: int, seed: int, device) -> tuple[TrainSubset, dict, str]:
    """Split `split`'s training subset on `device`, and the test and validation sets (`held`) normalised by the
    subset's channel statistics; `d` is what the study loaded (x_train, y_train, x_test, y_test, x_val, y_val, val,
    num_classes). Also returns where the split came from."""
    idx, source = get_split(dataset, size, split, d["y_train"], seed=seed, exclude=d["val"])
    train = TrainSubset.build(d["x_train"][idx], d["y_train"][idx], d["num_classes"], device)
    held = dict(x_test=normalize(d["x_test"].float() / 255, train.mean, train.std), y_test=d["y_test"],
                x_val=normalize(d["x_val"].float() / 255, train.mean, train.std), y_val=d["y_val"])
    return train, held, source
