"""Data for the zoo's models: tfds datasets (two built offline), preprocessing layers, tf.data input.

    datasets.py   the known datasets; `load(name, split)` -> (raw_input, label) pairs
    offline.py    the project's tfds builders, zoo_digits and zoo_sentiment (no network needed)
    text.py       WordPiece vocabulary and `TextPreprocessor` (strings -> token ids)
    images.py     `ImagePreprocessor` (pixels -> float32)
    pipeline.py   `make_input_fn` for `strategy.distribute_datasets_from_function`

The preprocessing layers go into the exported SavedModel too, so serving tokenizes exactly as
training did.
"""

from zoo.data.datasets import (
    DatasetInfo,
    DatasetSpec,
    DatasetUnavailableError,
    OFFLINE_DEFAULTS,
    dataset_info,
    get_dataset_spec,
    list_datasets,
    load,
)

__all__ = [
    "DatasetInfo",
    "DatasetSpec",
    "DatasetUnavailableError",
    "OFFLINE_DEFAULTS",
    "dataset_info",
    "get_dataset_spec",
    "list_datasets",
    "load",
]
