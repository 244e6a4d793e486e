"""tfds builders over real datasets kept as local files: GLUE SST-2 and MNIST, no network.

Developer and CI machines hold copies of the original files (see `shared/data/*/SOURCE.md`);
a user's machine usually does not, and then `load` says in one line where it looked. Importing
this module registers the builders; the first `load` builds the tfds copy into `data_dir`, later
ones read that copy and no longer need the source files.

    sst2_local   sentence (tf.string), label 0 = negative, 1 = positive, idx
                 train 67,349 (train.tsv) / validation 872 (dev.tsv), as tfds' glue/sst2
    mnist_local  image uint8 [28, 28, 1], label 0..9
                 train 60,000 / test 10,000. The TRAIN IMAGES ARE AN APPROXIMATION: the file
                 `train-images-approx-idx3-ubyte.gz` was rebuilt from a PNG rendering of MNIST,
                 about 97% of its pixels are exact and none is off by more than 1 grey level of
                 255; the test images and all labels are the official bytes. Train on it, and
                 quote test accuracy as "MNIST test, trained on approximate train images".

Where the source files are looked for, in order:
    1. tfds' manual directory: `download_config.manual_dir`, by default
       `<data_dir>/downloads/manual/` (the files directly in it);
    2. `$ZOO_SHARED_DATA/<folder>` when that variable is set, else `<repository>/../shared/data/<folder>`
       (`<folder>` is `sst2` or `mnist`).
"""

import gzip
import os
import pathlib
import struct

import numpy as np
import tensorflow_datasets as tfds

from zoo.data import offline  # noqa: F401  (stands in for importlib_resources, which tfds builds need)
from zoo.errors import ConfigError

SHARED_DATA_VARIABLE = "ZOO_SHARED_DATA"
_REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def shared_data_dir() -> pathlib.Path:
    """`$ZOO_SHARED_DATA` if set, else `<repository>/../shared/data` (which may not exist)."""
    configured = os.environ.get(SHARED_DATA_VARIABLE)
    return pathlib.Path(configured) if configured else _REPOSITORY.parent / "shared" / "data"


def find_source_dir(folder, filenames, manual_dir=None) -> pathlib.Path:
    """The first directory holding all of `filenames`: `manual_dir`, then the shared data's `folder`.

    Raises:
        ConfigError: none does; the one-line message names every place looked at.
    """
    candidates = [pathlib.Path(manual_dir)] if manual_dir is not None else []
    candidates.append(shared_data_dir() / folder)
    for candidate in candidates:
        if all((candidate / name).is_file() for name in filenames):
            return candidate
    raise ConfigError(
        f"the source files of {folder!r} ({', '.join(filenames)}) are in none of "
        f"{', '.join(str(candidate) for candidate in candidates)}; set {SHARED_DATA_VARIABLE} to the "
        f"directory holding {folder}/, or use the offline datasets zoo_digits and zoo_sentiment"
    )


def _manual_dir(dl_manager):
    """tfds' manual directory (`download_config.manual_dir`, else `<data_dir>/downloads/manual`)."""
    try:
        return dl_manager.manual_dir
    except AssertionError:  # tfds' way of saying it does not exist or is empty.
        # Still named in the error message of `find_source_dir` as a place looked at.
        return getattr(dl_manager, "_manual_dir", None)


class Sst2Local(tfds.core.GeneratorBasedBuilder):
    """GLUE SST-2 (Socher et al. 2013; Wang et al. 2019) read from GLUE's `train.tsv` and `dev.tsv`.

    Features, as tfds' `glue/sst2`:
        sentence: tf.string, lower-cased PTB-tokenised text (GLUE keeps a trailing space).
        label: int64, 0 = negative, 1 = positive.
        idx: int32, the row's position in its file.

    Splits: train 67,349 (phrases and sentences of the treebank), validation 872 (GLUE's dev set:
    full sentences). GLUE's test labels are not public, so there is no test split.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put GLUE's SST-2 train.tsv and dev.tsv (glue_data/SST-2) in the manual directory, or set "
        f"{SHARED_DATA_VARIABLE} to a directory holding sst2/train.tsv and sst2/dev.tsv."
    )
    _FILES = {"train": "train.tsv", "validation": "dev.tsv"}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="GLUE SST-2 binary sentiment, built from local copies of GLUE's TSV files.",
            features=tfds.features.FeaturesDict(
                {
                    "sentence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                    "idx": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=("sentence", "label"),
            homepage="https://gluebenchmark.com/",
        )

    def _split_generators(self, dl_manager):
        source = find_source_dir("sst2", list(self._FILES.values()), _manual_dir(dl_manager))
        return {split: self._generate_examples(source / filename) for split, filename in self._FILES.items()}

    def _generate_examples(self, path):
        with open(path, encoding="utf-8") as file:
            header = file.readline().rstrip("\n").split("\t")
            if header != ["sentence", "label"]:
                raise ValueError(f"{path}: expected the header 'sentence<TAB>label', got {header}")
            # GLUE's TSVs have no quoting: a quote character is part of the sentence.
            for index, line in enumerate(file):
                sentence, label = line.rstrip("\n").split("\t")
                yield index, {"sentence": sentence, "label": int(label), "idx": index}


def read_idx(path) -> np.ndarray:
    """The uint8 array in a gzipped IDX file (LeCun's MNIST format: big-endian header, then bytes)."""
    with gzip.open(path, "rb") as file:
        content = file.read()
    zero, dtype_code, rank = struct.unpack(">HBB", content[:4])
    if zero != 0 or dtype_code != 0x08:  # 0x08: unsigned byte
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{rank}I", content[4 : 4 + 4 * rank])
    return np.frombuffer(content, np.uint8, offset=4 + 4 * rank).reshape(shape)


class MnistLocal(tfds.core.GeneratorBasedBuilder):
    """MNIST (LeCun et al. 1998) read from the IDX files, with approximate training images.

    Features, as tfds' `mnist`:
        image: uint8 [28, 28, 1], 0 = background, 255 = ink.
        label: int64, the digit 0..9.

    Splits: train 60,000 and test 10,000, in the original order. The test images and both label
    files are the official bytes; the train images come from `train-images-approx-idx3-ubyte.gz`,
    a rebuild from a PNG rendering with every pixel within 1 grey level of the original (about
    97% exact). Accuracy trained on it is close to, but not bit-for-bit, MNIST's.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: train images approximate (within 1 grey level)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, train-labels-idx1-ubyte.gz and "
        "train-images-approx-idx3-ubyte.gz (the official train images renamed, or the rebuild) in "
        f"the manual directory, or set {SHARED_DATA_VARIABLE} to a directory holding mnist/."
    )
    _FILES = {
        "train": ("train-images-approx-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "MNIST handwritten digits from local IDX files; the training images are a rebuild "
                "within 1 grey level of the originals (test images and all labels exact)."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="http://yann.lecun.com/exdb/mnist/",
        )

    def _split_generators(self, dl_manager):
        filenames = [name for pair in self._FILES.values() for name in pair]
        source = find_source_dir("mnist", filenames, _manual_dir(dl_manager))
        return {
            split: self._generate_examples(source / images, source / labels)
            for split, (images, labels) in self._FILES.items()
        }

    def _generate_examples(self, images_path, labels_path):
        images, labels = read_idx(images_path), read_idx(labels_path)
        if len(images) != len(labels):
            raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels")
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image[..., np.newaxis], "label": int(label)}
