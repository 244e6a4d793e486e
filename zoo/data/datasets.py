"""The datasets a run can name, and loading them as `(raw_input, label)` pairs from tfds.

The project's own datasets (`zoo_digits`, `zoo_sentiment`, see `zoo.data.offline`) are built on
first use without a network. The others are read from `data_dir` once prepared there; when they
are not, they are downloaded only if their download host answers within seconds, and otherwise
the caller gets a one-line `DatasetUnavailableError` naming the offline alternative, instead of
tfds retrying for minutes.

    spec = get_dataset_spec("zoo_sentiment")
    dataset = load("zoo_sentiment", spec.train_split)    # ("I love this movie!", 1), ...
    dataset_info("zoo_digits").image_shape                # (8, 8, 1)
"""

import dataclasses
import socket
import threading
import time
import urllib.parse

import tensorflow_datasets as tfds

from zoo.data import local, offline
from zoo.data.pipeline import map_in_batches
from zoo.errors import ConfigError


class DatasetUnavailableError(ConfigError):
    """A dataset that is not prepared in `data_dir` and cannot be downloaded now."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a tfds dataset keeps what a classifier needs.

    Attributes:
        name: str. The tfds name, with its config if any (`glue/sst2`).
        modality: str. `"image"` (uint8 [height, width, channels]) or `"text"` (tf.string scalar).
        input_key: str. The feature holding the raw input.
        label_key: str. The feature holding the integer class label.
        train_split: str. The split to train on.
        eval_split: str. The labelled split to evaluate on (GLUE's test labels are hidden).
    """

    name: str
    modality: str
    input_key: str
    label_key: str
    train_split: str = "train"
    eval_split: str = "test"


_DATASETS = {
    spec.name: spec
    for spec in [
        DatasetSpec("zoo_digits", "image", "image", "label"),
        DatasetSpec("zoo_sentiment", "text", "text", "label"),
        DatasetSpec("zoo_reviews", "text", "text", "label"),
        DatasetSpec("mnist", "image", "image", "label"),
        DatasetSpec("imdb_reviews", "text", "text", "label"),
        DatasetSpec("glue/sst2", "text", "sentence", "label", eval_split="validation"),
        # Real data from local files (zoo.data.local): developer and CI machines only.
        DatasetSpec("mnist_local", "image", "image", "label"),
        DatasetSpec("sst2_local", "text", "sentence", "label", eval_split="validation"),
    ]
}
# Built by `zoo.data.offline` from installed packages, or by `zoo.data.local` from local files:
# never need a network.
_PROJECT_DATASETS = {
    offline.ZooDigits.name, offline.ZooSentiment.name, offline.ZooReviews.name, local.MnistLocal.name, local.Sst2Local.name
}
# The dataset of each modality that works without a network: what errors tell users to try.
OFFLINE_DEFAULTS = {"image": offline.ZooDigits.name, "text": offline.ZooSentiment.name}
# How long the check that a download host answers may take, in seconds.
_REACHABILITY_TIMEOUT = 3.0


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a trainer need to know about a dataset before reading it.

    Attributes:
        num_classes: int. Labels are 0 .. num_classes - 1.
        class_names: tuple of str. The label names (tfds names unnamed classes "0", "1", ...).
        num_examples: dict. Split name -> number of examples.
        image_shape: tuple of int `(height, width, channels)` for image datasets, else None.
    """

    num_classes: int
    class_names: tuple
    num_examples: dict
    image_shape: tuple | None


def list_datasets():
    """The names `load` accepts, sorted."""
    return sorted(_DATASETS)


def get_dataset_spec(name) -> DatasetSpec:
    """The table entry for `name`; an unknown name is a ConfigError listing the known ones."""
    if name not in _DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    return _DATASETS[name]


def _can_reach_any(hosts, timeout):
    """Whether a TCP connection to port 443 of any of `hosts` opens within `timeout` seconds.

    Each host is tried on a daemon thread, so a hanging DNS lookup (which socket timeouts do not
    bound) cannot hold the caller past `timeout`.
    """
    reached = threading.Event()

    def try_host(host):
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                reached.set()
        except OSError:
            pass

    threads = [threading.Thread(target=try_host, args=(host,), daemon=True) for host in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return reached.is_set()


def _unavailable(spec, data_dir, reason):
    return DatasetUnavailableError(
        f"dataset {spec.name!r} is not prepared in data_dir {data_dir or tfds.core.constants.DATA_DIR} "
        f"and cannot be downloaded ({reason}); use the offline dataset "
        f"{OFFLINE_DEFAULTS[spec.modality]!r} or point --data_dir at a prepared copy"
    )


def _prepared_builder(spec, data_dir):
    """The tfds builder of `spec`, its data prepared in `data_dir` (building or downloading it)."""
    builder = tfds.builder(spec.name, data_dir=data_dir)
    if spec.name in _PROJECT_DATASETS:
        try:
            builder.download_and_prepare()  # Seconds, offline; reuses a prepared copy.
        except FileExistsError:
            # Another process (a second worker) finished the same build first: read its copy.
            builder = tfds.builder(spec.name, data_dir=data_dir)
        return builder
    if builder.is_prepared():
        return builder
    hosts = {urllib.parse.urlparse(url).hostname for url in builder.url_infos or {}}
    if not _can_reach_any(hosts, _REACHABILITY_TIMEOUT):
        raise _unavailable(spec, data_dir, f"no answer from {', '.join(sorted(hosts)) or 'its download host'}")
    try:
        builder.download_and_prepare()
    except Exception as error:  # Any failure of a download leaves the same choice to the user.
        raise _unavailable(spec, data_dir, f"download failed: {type(error).__name__}") from error
    return builder


def load(name, split, data_dir=None):
    """Reads one split of a known dataset as `(raw_input, label)` pairs.

    Args:
        name: str. A name from `list_datasets()`.
        split: str. A tfds split, slices included (`"train[:10%]"`).
        data_dir: str or None. The tfds data directory; None means tfds' default
            (~/tensorflow_datasets).

    Returns:
        A finite, unbatched `tf.data.Dataset` of `(raw_input, label)`: raw_input is uint8
        [height, width, channels] for images or a tf.string scalar for text, label an int64
        scalar.

    Raises:
        ConfigError: `name` is not a known dataset.
        DatasetUnavailableError: the dataset is not in `data_dir` and cannot be downloaded.
    """
    spec = get_dataset_spec(name)
    dataset = _prepared_builder(spec, data_dir).as_dataset(split=split)
    return map_in_batches(dataset, lambda examples: (examples[spec.input_key], examples[spec.label_key]))


def dataset_info(name, data_dir=None) -> DatasetInfo:
    """Class count, split sizes and image shape of a known dataset (prepared as `load` does)."""
    spec = get_dataset_spec(name)
    info = _prepared_builder(spec, data_dir).info
    labels = info.features[spec.label_key]
    return DatasetInfo(
        num_classes=labels.num_classes,
        class_names=tuple(labels.names),
        num_examples={split: split_info.num_examples for split, split_info in info.splits.items()},
        image_shape=tuple(info.features[spec.input_key].shape) if spec.modality == "image" else None,
    )
