"""The dataset table, loading as (raw_input, label) pairs, and the fast offline failure."""

import contextlib
import dataclasses
import socket
import threading
import time

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo import data
from zoo.errors import ConfigError


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def network_reachable(monkeypatch):
    """Every download host answers (no connection is really opened)."""
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: contextlib.nullcontext())


@pytest.fixture
def network_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)


def test_spec_table():
    assert data.list_datasets() == [
        "glue/sst2", "imdb_reviews", "mnist", "mnist_local", "sst2_local", "zoo_digits", "zoo_reviews", "zoo_sentiment"
    ]
    sst2 = data.get_dataset_spec("glue/sst2")
    assert (sst2.modality, sst2.input_key) == ("text", "sentence")
    assert (sst2.train_split, sst2.eval_split) == ("train", "validation")
    assert data.get_dataset_spec("mnist").eval_split == "test"
    with pytest.raises(dataclasses.FrozenInstanceError):
        sst2.name = "other"


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar10'.*mnist.*zoo_digits.*zoo_sentiment"):
        data.get_dataset_spec("cifar10")
    with pytest.raises(ConfigError):
        data.load("cifar10", "train")


def test_load_zoo_digits(data_dir):
    dataset = data.load("zoo_digits", "test", data_dir)
    assert dataset.element_spec == (
        tf.TensorSpec([8, 8, 1], tf.uint8),
        tf.TensorSpec([], tf.int64),
    )
    labels = [int(label) for _, label in dataset]
    assert len(labels) == 360 and set(labels) == set(range(10))


def test_load_zoo_sentiment(data_dir):
    dataset = data.load("zoo_sentiment", "train[:10]", data_dir)
    assert dataset.element_spec == (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64))
    texts = [text.numpy().decode() for text, _ in dataset]
    assert len(texts) == 10 and all(texts)


def test_dataset_info_of_project_datasets(data_dir):
    digits = data.dataset_info("zoo_digits", data_dir)
    assert (digits.num_classes, digits.image_shape) == (10, (8, 8, 1))
    assert digits.num_examples == {"train": 1437, "test": 360}
    sentiment = data.dataset_info("zoo_sentiment", data_dir)
    assert sentiment.class_names == ("negative", "positive") and sentiment.image_shape is None
    assert sentiment.num_examples == {"train": 4000, "test": 1000}


def test_project_dataset_built_by_another_worker_meanwhile_is_read(tmp_path, monkeypatch):
    build = tfds.core.DatasetBuilder.download_and_prepare

    def lose_the_race(self, *args, **kwargs):
        build(self, *args, **kwargs)  # The other worker's build lands first...
        raise FileExistsError("Destination already exists.")  # ...so this one's rename fails.

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", lose_the_race)
    assert len(list(data.load("zoo_digits", "test", str(tmp_path)))) == 360


@pytest.mark.parametrize("name, offline_default", [("mnist", "zoo_digits"), ("imdb_reviews", "zoo_sentiment")])
def test_unprepared_dataset_fails_fast_offline(name, offline_default, tmp_path, network_down):
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.load(name, "train", str(tmp_path))
    assert time.monotonic() - start < 15
    message = str(error.value)
    assert "\n" not in message
    assert f"'{name}' is not prepared in data_dir {tmp_path}" in message
    assert f"'{offline_default}'" in message and "--data_dir" in message
    assert isinstance(error.value, ConfigError)


def test_hanging_network_check_gives_up_within_seconds(tmp_path, monkeypatch):
    released = threading.Event()

    def hang(*args, **kwargs):
        released.wait(60)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    try:
        with pytest.raises(data.DatasetUnavailableError):
            data.dataset_info("mnist", str(tmp_path))
        assert time.monotonic() - start < 15
    finally:
        released.set()


def test_failed_download_becomes_unavailable_error(tmp_path, network_reachable, monkeypatch):
    def fail_download(self, *args, **kwargs):
        raise ConnectionError("Max retries exceeded")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail_download)
    with pytest.raises(data.DatasetUnavailableError, match="download failed: ConnectionError.*zoo_digits"):
        data.load("mnist", "train", str(tmp_path))


@pytest.mark.parametrize(
    "name, split, input_spec",
    [
        ("mnist", "train", tf.TensorSpec([28, 28, 1], tf.uint8)),
        ("imdb_reviews", "test", tf.TensorSpec([], tf.string)),
        ("glue/sst2", "validation", tf.TensorSpec([], tf.string)),
    ],
)
def test_real_datasets_are_wired_to_their_fields(name, split, input_spec, network_reachable):
    with tfds.testing.mock_data(num_examples=8):
        dataset = data.load(name, split)
        assert dataset.element_spec == (input_spec, tf.TensorSpec([], tf.int64))
        assert len(list(dataset)) == 8
        info = data.dataset_info(name)
    assert info.num_classes == (10 if name == "mnist" else 2)
    assert info.image_shape == ((28, 28, 1) if name == "mnist" else None)
