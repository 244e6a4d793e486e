"""sst2_local and mnist_local: built from local files, sizes as in shared/data's SOURCE.md files.

The real files exist on developer and CI machines only; the tests that need them skip elsewhere.
Small stand-in files in tfds' manual directory test the readers and the error everywhere.
"""

import collections
import gzip
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds

from zoo import data
from zoo.data import local
from zoo.errors import ConfigError


def _shared(folder, *filenames):
    directory = local.shared_data_dir() / folder
    missing = [name for name in filenames if not (directory / name).is_file()]
    if missing:
        pytest.skip(f"real {folder} data absent ({', '.join(missing)} not in {directory}; set ZOO_SHARED_DATA)")
    return directory


def _examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def _build(name, data_dir, manual_dir=None):
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


# ---------------------------------------------------------------- the real files (skip when absent)
def test_sst2_local_matches_source_md(tmp_path):
    _shared("sst2", "train.tsv", "dev.tsv")
    builder = _build("sst2_local", tmp_path)
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == {
        "train": 67349,
        "validation": 872,
    }
    assert builder.info.features["label"].names == ["negative", "positive"]
    validation = _examples(builder, "validation")
    assert collections.Counter(int(example["label"]) for example in validation) == {0: 428, 1: 444}
    first = min(validation, key=lambda example: example["idx"])
    assert first["sentence"].decode() == "it 's a charming and often affecting journey . "
    assert first["label"] == 1
    train_labels = collections.Counter(int(example["label"]) for example in _examples(builder, "train"))
    assert train_labels == {0: 29780, 1: 37569}


def test_mnist_local_matches_source_md(tmp_path):
    _shared("mnist", *local.MnistLocal._FILES["train"], *local.MnistLocal._FILES["test"])
    builder = _build("mnist_local", tmp_path)
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == {"train": 60000, "test": 10000}
    assert builder.info.features["image"].shape == (28, 28, 1)
    test = sorted(_examples(builder, "test"), key=lambda example: example["image"].tobytes())
    images = np.stack([example["image"] for example in test])
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
    # Pixel statistics of the exact test images, from SOURCE.md.
    assert images.mean() == pytest.approx(33.791, abs=1e-3) and images.std() == pytest.approx(79.172, abs=1e-3)
    counts = collections.Counter(int(example["label"]) for example in test)
    assert [counts[digit] for digit in range(10)] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # The first rows of the files (tfds shuffles the stored order, so read them from the files too).
    source = local.shared_data_dir() / "mnist"
    assert local.read_idx(source / "t10k-labels-idx1-ubyte.gz")[0] == 7
    assert local.read_idx(source / "train-labels-idx1-ubyte.gz")[0] == 5
    train_images = np.stack([example["image"] for example in _examples(builder, "train")])
    # The approximate train images: SOURCE.md's mean 33.331 and std 78.600.
    assert train_images.mean() == pytest.approx(33.331, abs=1e-3) and train_images.std() == pytest.approx(78.600, abs=1e-3)


def test_load_reads_the_real_splits(tmp_path):
    _shared("sst2", "train.tsv", "dev.tsv")
    assert data.dataset_info("sst2_local", str(tmp_path)).num_examples == {"train": 67349, "validation": 872}
    sentence, label = next(iter(data.load("sst2_local", "validation[:1]", str(tmp_path))))
    assert sentence.dtype == "string" and int(label) in (0, 1)


# ---------------------------------------------------------------- stand-in files (always run)
def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_mnist_local_reads_idx_files_from_the_manual_dir(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    rng = np.random.default_rng(0)
    for (images_name, labels_name), count in zip(local.MnistLocal._FILES.values(), [6, 4]):
        _write_idx(manual / images_name, rng.integers(0, 256, [count, 28, 28]))
        _write_idx(manual / labels_name, np.arange(count) % 10)
    builder = _build("mnist_local", tmp_path / "tfds", manual_dir=manual)
    test = _examples(builder, "test")
    assert sorted(int(example["label"]) for example in test) == [0, 1, 2, 3]
    assert test[0]["image"].shape == (28, 28, 1) and builder.info.splits["train"].num_examples == 6


def test_sst2_local_reads_tsv_files_from_the_manual_dir(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "train.tsv").write_text('sentence\tlabel\na "quoted" gem \t1\ndull \t0\n', encoding="utf-8")
    (manual / "dev.tsv").write_text("sentence\tlabel\nit 's fine . \t1\n", encoding="utf-8")
    builder = _build("sst2_local", tmp_path / "tfds", manual_dir=manual)
    train = sorted(_examples(builder, "train"), key=lambda example: example["idx"])
    assert [(example["sentence"].decode(), int(example["label"])) for example in train] == [
        ('a "quoted" gem ', 1),
        ("dull ", 0),
    ]


@pytest.mark.parametrize("name, folder", [("sst2_local", "sst2"), ("mnist_local", "mnist")])
def test_missing_files_are_one_line_naming_where_it_looked(name, folder, tmp_path, monkeypatch):
    monkeypatch.setenv(local.SHARED_DATA_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError) as raised:
        data.load(name, "train", str(tmp_path / "tfds"))
    message = str(raised.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / folder) in message
    assert str(tmp_path / "tfds" / "downloads" / "manual") in message
    assert not tfds.builder(name, data_dir=str(tmp_path / "tfds")).is_prepared()
