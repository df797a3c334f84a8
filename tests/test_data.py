import json
import re
import shutil

import pytest
import torch

import data
from tests.conftest import make_mnist_format

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # shared/data/README.md
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_FORMAT_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def test_genuine_mnist_loads_with_known_sizes_and_class_counts(mnist_root):
    x, y = data.load_dataset("MNIST", mnist_root, train=True, download=True)  # files present: nothing downloaded
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert abs(x.float().mean().item() / 255 - 0.1307) < 1e-4
    x, y = data.load_dataset("MNIST", mnist_root, train=False, download=False)
    assert x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y).tolist() == MNIST_TEST_COUNTS


def _documented_md5(root, name: str) -> dict:
    """{file: MD5} from the table under the dataset's heading of the data folder's README (the test's oracle)."""
    section = (root / "README.md").read_text().split(f"## {name}/raw/")[1].split("\n## ")[0]
    return dict(re.findall(r"^\| ([a-z0-9-]+-ubyte) +\| ([0-9a-f]{32}) \|$", section, flags=re.M))


def test_genuine_fashion_mnist_loads_verified_with_its_documented_counts_labels_and_digests(fashion_root):
    assert data.known_md5("FashionMNIST") == _documented_md5(fashion_root, "FashionMNIST") \
        == data.file_digests("FashionMNIST", fashion_root)
    assert data.verifiable("FashionMNIST") and data.verifiable("MNIST") and not data.verifiable("KMNIST")
    x, y = data.load_dataset("FashionMNIST", fashion_root, train=True, download=False)
    assert x.shape == (60_000, 1, 28, 28) and torch.bincount(y).tolist() == [6000] * 10
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert abs(x.float().mean().item() / 255 - 0.2860) < 1e-4 and abs(x.float().std().item() / 255 - 0.3530) < 1e-4
    x, y = data.load_dataset("FashionMNIST", fashion_root, train=False, download=False)
    assert x.shape == (10_000, 1, 28, 28) and torch.bincount(y).tolist() == [1000] * 10
    assert y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def _copy_raw(src_root, src_name: str, dst_root, dst_name: str):
    (dst_root / dst_name / "raw").mkdir(parents=True)
    for f in MNIST_FORMAT_FILES:
        shutil.copyfile(src_root / src_name / "raw" / f, dst_root / dst_name / "raw" / f)
    return dst_root


@pytest.mark.parametrize("f", MNIST_FORMAT_FILES)
def test_fashion_mnist_with_one_byte_changed_is_refused_naming_the_file(fashion_root, tmp_path, f):
    root = _copy_raw(fashion_root, "FashionMNIST", tmp_path, "FashionMNIST")
    path = root / "FashionMNIST" / "raw" / f
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1                                                     # one pixel or one label
    path.write_bytes(bytes(raw))
    train = not f.startswith("t10k")
    with pytest.raises(data.DataError) as err:
        data.load_dataset("FashionMNIST", root, train=train, download=False)
    assert f"{f} has MD5 {data.md5(path)}, expected {data.KNOWN_MD5['FashionMNIST'][f]}" in str(err.value)
    assert "VERIFY_DATA=False" in str(err.value)
    data.load_dataset("FashionMNIST", root, train=not train, download=False)   # the other set is still genuine
    data.load_dataset("FashionMNIST", root, train=train, download=False, verify=False)  # other data, on purpose


def test_mnist_files_in_the_fashion_mnist_folder_are_refused(mnist_root, tmp_path):
    """MNIST's files have Fashion-MNIST's format, sizes and class count: only their digests tell them apart."""
    root = _copy_raw(mnist_root, "MNIST", tmp_path, "FashionMNIST")
    for train in (True, False):
        with pytest.raises(data.DataError, match="is not the genuine FashionMNIST") as err:
            data.load_dataset("FashionMNIST", root, train=train, download=False)
        assert len(re.findall("has MD5", str(err.value))) == 2                  # both files of the set named


def test_split_0_of_mnist_250_is_exactly_the_shipped_split(mnist_root):
    _, y = data.load_dataset("MNIST", mnist_root, train=True, download=False)
    shared = json.loads((mnist_root / "splits" / "stratified_splits.json").read_text())["MNIST"]["250"][0]
    idx, source = data.get_split("MNIST", 250, 0, y)
    assert idx == shared and "shipped" in source
    counts = torch.bincount(y[idx], minlength=10)
    assert counts.sum() == 250 and counts.min() >= 23 and counts.max() <= 28


def test_shipped_splits_are_a_copy_of_the_shared_file(mnist_root):
    assert data.SPLITS_FILE.read_bytes() == (mnist_root / "splits" / "stratified_splits.json").read_bytes()


def test_svhn_loads_from_files_in_its_own_mat_format(svhn_root):
    x, y = data.load_dataset("SVHN", svhn_root, train=True, download=False)
    assert x.shape == (120, 3, 32, 32) and x.dtype == torch.uint8
    assert set(y.tolist()) == set(range(10))  # label 10 of the file is digit 0
    # images come back as (N, C, H, W): class c lights rows 2 + 2.6c .. +4 in every channel
    c = int(y[0])
    r = 2 + (c * 26) // 10
    assert (x[0, :, r:r + 4, 3:29] == 255).all()
    xt, _ = data.load_dataset("SVHN", svhn_root, train=False, download=False)
    assert xt.shape == (60, 3, 32, 32)


def test_missing_data_is_one_clear_message(tmp_path):
    with pytest.raises(data.DataError) as e:
        data.load_dataset("MNIST", tmp_path, train=True, download=False)
    msg = str(e.value)
    assert "MNIST" in msg and str(tmp_path / "MNIST" / "raw") in msg and "train-images-idx3-ubyte" in msg
    assert "DATA_ROOT" in msg
    with pytest.raises(data.DataError, match="SVHN.*train_32x32.mat"):
        data.load_dataset("SVHN", tmp_path, train=True, download=False)


def test_a_truncated_file_is_named(tmp_path):
    root = make_mnist_format(tmp_path, "FashionMNIST")
    f = root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte is truncated \(5000 of 470416 bytes\)"):
        data.load_dataset("FashionMNIST", root, train=True, download=False)


def test_unknown_dataset_lists_the_supported_ones(tmp_path):
    with pytest.raises(ValueError, match="FashionMNIST.*KMNIST.*MNIST.*SVHN"):
        data.load_dataset("CIFAR10", tmp_path, train=True)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("DATA_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.resolve_data_root("") == tmp_path / "data"                      # data/ in the working directory
    assert data.resolve_data_root(str(tmp_path / "const")) == tmp_path / "const"
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "env"))
    assert data.resolve_data_root(str(tmp_path / "const")) == tmp_path / "env"
    assert data.resolve_data_root(str(tmp_path / "const"), override=str(tmp_path / "cli")) == tmp_path / "cli"


def test_sizes_without_a_shipped_split_get_a_seeded_stratified_draw():
    y = torch.arange(1000) % 10
    idx, source = data.get_split("KMNIST", 250, 3, y, seed=1)
    assert "seeded" in source and len(set(idx)) == 250
    assert torch.bincount(y[idx]).tolist() == [25] * 10
    assert data.get_split("KMNIST", 250, 3, y, seed=1)[0] == idx       # reproducible
    assert data.get_split("KMNIST", 250, 4, y, seed=1)[0] != idx       # another split differs


def test_split_index_out_of_range_is_a_clear_error():
    y = torch.arange(60_000) % 10
    with pytest.raises(ValueError, match="splits 0-19"):
        data.get_split("MNIST", 250, 20, y)


def _subset(n=250, num_classes=10):
    y = torch.arange(n) % num_classes
    x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    return data.TrainSubset.build(x, y, num_classes, "cpu")


def test_every_group_is_one_class_and_batches_have_the_configured_shape():
    s = _subset()
    b = data.group_batches(s.y, s.members, s.counts, 8, 16, torch.Generator().manual_seed(0))
    assert b.shape == (250 // 8, 8 * 16)
    labels = s.y[b].view(31, 8, 16)                                     # group-major rows
    assert (labels == labels[:, :, :1]).all()
    anchors = b.view(31, 8, 16)[:, :, 0].flatten()
    assert anchors.unique().numel() == 31 * 8                           # anchors: a pass without repeats


def test_same_seed_gives_the_same_batches():
    s = _subset()
    a = data.group_batches(s.y, s.members, s.counts, 8, 16, torch.Generator().manual_seed(5))
    b = data.group_batches(s.y, s.members, s.counts, 8, 16, torch.Generator().manual_seed(5))
    c = data.group_batches(s.y, s.members, s.counts, 8, 16, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_draws_cover_the_class_with_replacement():
    s = _subset(n=60, num_classes=3)  # 20 images per class
    g = torch.Generator().manual_seed(0)
    b = torch.cat([data.group_batches(s.y, s.members, s.counts, 4, 16, g) for _ in range(20)])
    for c in range(3):
        drawn = b.flatten()[s.y[b.flatten()] == c].unique()
        assert drawn.numel() == 20                                      # every image of the class is reachable


def test_subset_is_normalised_by_its_own_channel_statistics():
    s = _subset()
    assert abs(s.x.mean().item()) < 1e-5 and abs(s.x.std().item() - 1) < 1e-3


def test_random_crop_translates_within_the_padding():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3, 3] = 1
    y = data.random_crop(x, 2, torch.Generator().manual_seed(0))
    pos = torch.nonzero(y[:, 0] == 1)[:, 1:]
    assert y.shape == x.shape and pos.shape[0] == 64
    assert (pos >= 1).all() and (pos <= 5).all() and len({tuple(p) for p in pos.tolist()}) > 5
    fill = torch.tensor([-0.5])
    y = data.random_crop(x + 3, 2, torch.Generator().manual_seed(0), fill=fill)
    values = set(y.unique().tolist())
    assert values <= {3.0, 4.0, -0.5} and -0.5 in values                # the border is the fill value


def test_a_class_missing_from_the_subset_is_rejected():
    with pytest.raises(ValueError, match="no image of class"):
        data.TrainSubset.build(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), 3, "cpu")


def test_the_validation_set_is_disjoint_from_all_20_shipped_splits(mnist_root):
    _, y = data.load_dataset("MNIST", mnist_root, train=True, download=False)
    shipped = json.loads((mnist_root / "splits" / "stratified_splits.json").read_text())["MNIST"]["250"]
    val = data.validation_indices("MNIST", 250, 10_000, y)
    assert len(set(val)) == 10_000 and not set(val) & {i for split in shipped for i in split}
    assert data.validation_indices("MNIST", 250, 10_000, y) == val                # fixed: the same every time
    counts = torch.bincount(y[val], minlength=10)                                # stratified like the splits
    assert (counts.double() / 10_000 - torch.bincount(y).double() / y.numel()).abs().max() < 1e-3
    assert data.validation_indices("MNIST", 250, 0, y) == []


def test_without_shipped_splits_the_validation_set_is_drawn_first_and_the_splits_avoid_it():
    y = torch.arange(1000) % 10
    val = data.validation_indices("KMNIST", 250, 300, y)
    assert len(set(val)) == 300 and torch.bincount(y[val]).tolist() == [30] * 10
    for split in range(5):
        idx, _ = data.get_split("KMNIST", 250, split, y, seed=1, exclude=val)
        assert len(set(idx)) == 250 and not set(idx) & set(val)
    # without a validation set the draws are those of before (exclude nothing)
    assert data.get_split("KMNIST", 250, 3, y, seed=1, exclude=[])[0] == data._stratified_split(y, 250, 1003)


def test_a_validation_set_too_large_for_the_data_is_one_clear_error():
    y = torch.arange(1000) % 10
    with pytest.raises(ValueError, match="VAL_SIZE=800 is more than the 750 training images"):
        data.validation_indices("KMNIST", 250, 800, y)


def test_with_only_torchvisions_processed_files_the_message_says_why_nothing_was_downloaded(tmp_path, monkeypatch):
    root = make_mnist_format(tmp_path)
    x, y = data.load_dataset("KMNIST", root, train=True, download=False, verify=False)
    raw = root / "KMNIST" / "raw"
    (raw.parent / "processed").mkdir()
    for f in ("training.pt", "test.pt"):
        torch.save((x, y), raw.parent / "processed" / f)
    for f in raw.iterdir():
        f.unlink()

    def no_internet(*args, **kwargs):
        raise AssertionError("a download was tried")
    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", no_internet)
    with pytest.raises(data.DataError) as e:
        data.load_dataset("KMNIST", root, train=True, download=True, verify=False)
    assert "torchvision did not download them because processed/training.pt and processed/test.pt exist" in str(
        e.value) and "the download failed" not in str(e.value)
